"""The llama.cpp backend (llama-cpp-python): the quantised GGUF as it is, with
the chat template stored in it; the fast one on a CPU."""
from __future__ import annotations

import contextlib
import functools
import os
import threading

from readingroom.models.generate.base import (Generator, GeneratorError, TokenUsage, check_gguf, check_settings,
                                              checked_messages)


def llama_cpp_uses_amx() -> bool:
    """Whether this llama.cpp build multiplies with Intel AMX tiles (built
    with -march=native on a CPU that has them)."""
    from llama_cpp import llama_cpp as capi
    return b"AMX_INT8 = 1" in capi.llama_print_system_info()


_patching_params = threading.Lock()


@contextlib.contextmanager
def llama_model_params(**fields):
    """Set llama_model_params fields that llama_cpp.Llama() does not take as
    arguments, for the Llamas constructed inside this block.

    Llama.__init__ starts from llama_model_default_params() and loads the model
    before returning, so the defaults are swapped for that moment, under a lock."""
    from llama_cpp import llama_cpp as capi
    with _patching_params:
        defaults = capi.llama_model_default_params

        def with_fields():
            params = defaults()
            for name, value in fields.items():
                setattr(params, name, value)
            return params

        capi.llama_model_default_params = with_fields
        try:
            yield
        finally:
            capi.llama_model_default_params = defaults


@functools.cache
def _counting_llama_class():
    """llama_cpp.Llama that counts the tokens of each completion.

    In streaming mode llama-cpp-python reports no usage, and its chunks are not
    tokens (it joins pieces it holds back for stop strings or unfinished UTF-8).
    Every completion goes through Llama.generate with the full prompt's tokens
    and yields each sampled token, so that is where the counting is exact."""
    from llama_cpp import Llama

    class CountingLlama(Llama):
        prompt_tokens: int | None = None
        completion_tokens = 0
        cached_tokens = 0

        def generate(self, tokens, *args, **kwargs):
            self.prompt_tokens, self.completion_tokens = len(tokens), 0
            # What Llama.generate keeps of its context: the start this prompt
            # shares with the tokens it holds (never the last token, whose
            # logits are wanted).
            self.cached_tokens = 0
            for held, new in zip(self._input_ids, tokens[:-1]):
                if held != new:
                    break
                self.cached_tokens += 1
            for token in super().generate(tokens, *args, **kwargs):
                self.completion_tokens += 1
                yield token

    return CountingLlama


class LlamaCppGenerator(Generator):
    backend = "llama.cpp"

    def __init__(self, model, *, n_ctx: int = 4096, n_threads: int | None = None, seed: int = 0,
                 extra_buffers: bool | None = None, **llama_options):
        """`model`: a resolved model (readingroom.models.resolve). Other
        keyword options go to llama_cpp.Llama (n_gpu_layers, n_batch, ...).

        `extra_buffers`: let llama.cpp repack weights into its faster CPU
        layouts (AMX, AVX512 repacking). By default off where the build uses
        AMX: ggml's AMX matrix multiply kills the process with a general
        protection fault at its first use (ldtilecfg, llama.cpp issue #20824;
        seen here with llama-cpp-python 0.3.36 built with -march=native).
        A build without AMX keeps them on."""
        try:
            import llama_cpp  # noqa: F401
        except ImportError:
            raise GeneratorError("the llama.cpp backend needs llama-cpp-python "
                                 "(pip install llama-cpp-python); or use backend='transformers'") from None
        self.name, self.model = model.name, model
        path = check_gguf(model.path)
        threads = n_threads or os.cpu_count()
        self.extra_buffers = not llama_cpp_uses_amx() if extra_buffers is None else extra_buffers
        try:
            with llama_model_params(use_extra_bufts=self.extra_buffers):
                self.llama = _counting_llama_class()(
                    model_path=str(path), n_ctx=n_ctx, n_threads=threads, n_threads_batch=threads,
                    seed=seed, verbose=False, **llama_options)
        except (ValueError, RuntimeError, OSError) as e:
            raise GeneratorError(f"llama.cpp could not load the model file {path}: {e}") from e
        self._lock = threading.Lock()  # one completion at a time: a Llama holds one context

    enforces_json_schema = True

    def stream(self, messages, *, max_tokens=256, temperature=0.0, seed=0, stop=None, json_schema=None):
        messages = checked_messages(messages)
        check_settings(max_tokens, temperature)
        response_format = {"type": "json_object", "schema": dict(json_schema)} if json_schema else None
        with self._lock:
            self.last_usage = None
            self.llama.prompt_tokens = None  # stays None if the call fails before generating
            chunks = self.llama.create_chat_completion(
                messages=messages, max_tokens=max_tokens, temperature=temperature, seed=seed,
                stop=list(stop) if stop else None, stream=True, response_format=response_format)
            try:
                for chunk in chunks:
                    piece = chunk["choices"][0]["delta"].get("content")
                    if piece:
                        yield piece
            finally:
                chunks.close()
                if self.llama.prompt_tokens is not None:
                    self.last_usage = TokenUsage(self.llama.prompt_tokens, self.llama.completion_tokens,
                                                 self.llama.cached_tokens)

    def batched(self, slots: int):
        """A BatchedLlama: up to `slots` completions decoded together on this
        model (a second context; the weights are shared)."""
        from readingroom.models.generate.batched import BatchedLlama

        return BatchedLlama(self, slots)


    def _chat_formatter(self):
        """The GGUF's own chat template, as llama-cpp-python builds it for
        create_chat_completion, so a prompt scored here is the prompt the
        model answers."""
        from llama_cpp import llama_chat_format

        if getattr(self, "_formatter", None) is None:
            template = self.llama.metadata.get("tokenizer.chat_template")
            if not template:
                raise GeneratorError(f"{self.name} has no chat template in its GGUF")
            eos, bos = self.llama.token_eos(), self.llama.token_bos()
            text = self.llama._model.token_get_text
            self._formatter = llama_chat_format.Jinja2ChatFormatter(
                template=template, eos_token=text(eos) if eos != -1 else "",
                bos_token=text(bos) if bos != -1 else "", stop_token_ids=[eos])
        return self._formatter

    def _option_tokens(self, option: str) -> set[int]:
        """The first tokens of `option` as the model may start its reply with it."""
        tokens = set()
        for form in {option, option.lower(), option.capitalize(), " " + option.lower(), " " + option.capitalize()}:
            ids = self.llama.tokenize(form.encode("utf-8"), add_bos=False, special=False)
            if ids:
                tokens.add(ids[0])
        return tokens

    def choice_probabilities(self, messages, options):
        import numpy as np

        formatted = self._chat_formatter()(messages=checked_messages(messages))
        tokens = self.llama.tokenize(formatted.prompt.encode("utf-8"), add_bos=not formatted.added_special,
                                     special=True)
        with self._lock:
            llama = self.llama
            # Keep what the context already holds of this prompt (the system
            # prompt, a passage judged a moment ago): only the rest is read.
            held = llama.input_ids[:llama.n_tokens]
            same = 0
            for a, b in zip(held, tokens[:-1]):
                if a != b:
                    break
                same += 1
            llama.n_tokens = same
            llama.eval(tokens[same:])
            # The last position's logits, straight from the context: the
            # Llama object copies them only when built with logits_all.
            logits = np.ctypeslib.as_array(llama._ctx.get_logits(), shape=(llama.n_vocab(),)).astype(np.float64)
        probabilities = np.exp(logits - logits.max())
        probabilities /= probabilities.sum()
        return {option: float(sum(probabilities[t] for t in self._option_tokens(option))) for option in options}
