"""Text from chat messages with a local open model: one small interface, two
backends.

    from readingroom.models.generate import load_generator
    generator = load_generator()                     # the default model, llama.cpp
    for piece in generator.stream([{"role": "user", "content": "Who wrote it?"}]):
        print(piece, end="", flush=True)
    generator.last_usage                             # TokenUsage(prompt_tokens=..., completion_tokens=...)

Backends, both reading the same GGUF file that `readingroom.models` resolves:

- "llama.cpp" (llama-cpp-python): the quantised model as it is, with the chat
  template stored in the GGUF; the fast one on a CPU.
- "transformers": the model dequantised into torch, needed to train LoRA
  adapters. Reading a GGUF this way is slow (it dequantises every tensor and
  parses the whole vocabulary several times), so the first load saves a bf16
  safetensors copy under cache_dir()/models/<sha256>/transformers-bf16/ and
  later loads read that. It runs on CUDA in bf16 when there is a GPU, on the
  CPU in float32 otherwise.

Settings mean the same on both: temperature 0 is greedy (deterministic); a
temperature above 0 samples, repeatably for one seed; generation ends at
max_tokens, at the model's end of turn, or at a stop string, which is left out
of the text.
"""
from __future__ import annotations

import contextlib
import functools
import os
import shutil
import sys
import threading
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from readingroom.models.catalogue import DEFAULT_GENERATOR, ModelError
from readingroom.models.resolve import resolve
from readingroom.paths import cache_dir

# libgomp's worker threads (llama.cpp and torch both use it here) wait for
# work by spinning, which fights any other busy process for a laptop's two
# cores: with another process busy, llama.cpp on 2 threads ran at half the
# speed of 1 thread, and this module's tests took 86 s instead of 44 s with
# passive waiting. On an idle machine passive waiting costs something
# instead (SmolLM2 decoding once measured 41 against 58 tokens/s), less for
# larger models, whose steps are longer. libgomp reads this once, when it is
# first loaded, so it counts only if readingroom.generate is imported before
# torch or llama_cpp; a value the user set is kept.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

ROLES = ("system", "user", "assistant")
Message = Mapping[str, str]


class GeneratorError(ModelError):
    pass


@dataclass(frozen=True)
class TokenUsage:
    """Tokens of one call: the prompt as the model saw it (chat template
    included) and the tokens it generated, an end-of-turn token included.
    None where a backend does not report them."""
    prompt_tokens: int | None
    completion_tokens: int | None


class Generator(ABC):
    """Chat messages in, text out, piece by piece."""

    name: str
    backend: str
    last_usage: TokenUsage | None = None  # of the last call that finished or was closed

    @abstractmethod
    def stream(self, messages: Sequence[Message], *, max_tokens: int = 256, temperature: float = 0.0,
               seed: int = 0, stop: Sequence[str] | None = None,
               json_schema: Mapping | None = None) -> Iterator[str]:
        """The reply to `messages`, as text pieces while they are produced."""

    def generate(self, messages: Sequence[Message], *, max_tokens: int = 256, temperature: float = 0.0,
                 seed: int = 0, stop: Sequence[str] | None = None, json_schema: Mapping | None = None) -> str:
        return "".join(self.stream(messages, max_tokens=max_tokens, temperature=temperature,
                                   seed=seed, stop=stop, json_schema=json_schema))

    # `json_schema`: the text must be JSON of that schema. llama.cpp enforces
    # it with a grammar while decoding; a backend that cannot says so in
    # `enforces_json_schema`, and the caller reads what it gets.
    enforces_json_schema = False

    def choice_probabilities(self, messages: Sequence[Message], options: Sequence[str]) -> dict[str, float]:
        """The probability that the reply to `messages` starts with each of
        `options` (one word each, any case, with or without a leading space),
        read from the model's next-token distribution: a judgement with a
        confidence, not a sampled word."""
        raise GeneratorError(f"the {self.backend} backend cannot score choices")

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name} ({self.backend})>"


def checked_messages(messages: Sequence[Message]) -> list[dict[str, str]]:
    if isinstance(messages, (str, bytes)) or not messages:
        raise ValueError("messages must be a non-empty list of {'role': ..., 'content': ...}")
    checked = []
    for message in messages:
        role, content = message.get("role"), message.get("content")
        if role not in ROLES or not isinstance(content, str):
            raise ValueError(f"a message needs a role in {ROLES} and text content, not {message!r}")
        checked.append({"role": role, "content": content})
    return checked


def check_settings(max_tokens: int, temperature: float) -> None:
    if max_tokens < 1:
        raise ValueError(f"max_tokens must be at least 1, not {max_tokens}")
    if temperature < 0:
        raise ValueError(f"temperature must be 0 (greedy) or more, not {temperature}")


class StopStringFilter:
    """Passes text through until a stop string appears, and never the stop
    string itself. A stop string can arrive split over pieces, so the end of
    the text that could be the start of one is held back until it is decided."""

    def __init__(self, stop: Sequence[str] | None):
        self.stop = [s for s in stop or () if s]
        self.held = ""
        self.stopped = False

    def feed(self, text: str) -> str:
        if self.stopped:
            return ""
        if not self.stop:
            return text
        self.held += text
        found = [i for s in self.stop if (i := self.held.find(s)) >= 0]
        if found:
            passed, self.held, self.stopped = self.held[:min(found)], "", True
            return passed
        keep = self._possible_stop_start()
        passed, self.held = self.held[:len(self.held) - keep], self.held[len(self.held) - keep:]
        return passed

    def finish(self) -> str:
        """What was held back, once the text has ended without a stop string."""
        rest, self.held = ("" if self.stopped else self.held), ""
        return rest

    def _possible_stop_start(self) -> int:
        longest = 0
        for s in self.stop:
            for n in range(min(len(s) - 1, len(self.held)), longest, -1):
                if self.held.endswith(s[:n]):
                    longest = n
                    break
        return longest


def check_gguf(path: Path) -> Path:
    """`path` if it is a readable GGUF file; a GeneratorError naming it if not."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            magic = f.read(4)
    except OSError as e:
        raise GeneratorError(f"cannot read the model file {path}: {e.strerror or e}") from e
    if magic != b"GGUF":
        raise GeneratorError(f"{path} is not a GGUF model file (it does not start with 'GGUF')")
    return path


# --- llama.cpp ------------------------------------------------------------------

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

        def generate(self, tokens, *args, **kwargs):
            self.prompt_tokens, self.completion_tokens = len(tokens), 0
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
                    self.last_usage = TokenUsage(self.llama.prompt_tokens, self.llama.completion_tokens)


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


# --- transformers -----------------------------------------------------------------

def transformers_copy_folder(model) -> Path:
    """Where the bf16 safetensors copy of `model` is kept: named by the GGUF's
    sha256, so a changed file never reads a stale copy."""
    model = getattr(model, "base", None) or model  # an adapter's base model: the copy is the base's
    return cache_dir() / "models" / (model.identity or model.name) / "transformers-bf16"


def _save_bf16_copy(gguf: Path, folder: Path):
    """Dequantise `gguf` with transformers and save it as bf16 safetensors in
    `folder`, with its tokenizer; the bf16 model and the tokenizer."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from_gguf = dict(gguf_file=gguf.name, local_files_only=True)
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, **from_gguf)
    dequantised = AutoModelForCausalLM.from_pretrained(gguf.parent, **from_gguf)
    # save_pretrained refuses a model loaded from GGUF; a plain model of the
    # same configuration, holding the same tensors, saves normally.
    config = dequantised.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    plain = AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16)
    plain.load_state_dict(dequantised.state_dict())
    plain.generation_config = dequantised.generation_config
    del dequantised

    # Written aside and renamed into place, so a folder that exists is complete.
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = folder.with_name(f".{folder.name}.staging-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    try:
        plain.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        try:
            staging.rename(folder)
        except OSError:
            if not folder.is_dir():  # not another process that finished first
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return plain, tokenizer


@contextlib.contextmanager
def _quiet_transformers():
    """No progress bars from transformers while a model loads (one per
    tensor pass), and the setting as it was afterwards."""
    from transformers.utils import logging as transformers_logging
    shown = transformers_logging.is_progress_bar_enabled()
    transformers_logging.disable_progress_bar()
    try:
        yield
    finally:
        if shown:
            transformers_logging.enable_progress_bar()


class _Cancelled:
    """A stopping criterion: ends generation once the reader has gone away."""

    def __init__(self, event: threading.Event):
        self.event = event

    def __call__(self, input_ids, scores, **kwargs):
        import torch
        return torch.full((input_ids.shape[0],), self.event.is_set(), dtype=torch.bool,
                          device=input_ids.device)


class TransformersGenerator(Generator):
    backend = "transformers"

    def __init__(self, model, *, device: str | None = None, dtype=None, warm_up: bool = True):
        """`model`: a resolved model. `device` defaults to CUDA where there is
        one, else the CPU; `dtype` to bf16 on CUDA and float32 on the CPU."""
        import torch

        self.name, self.model = model.name, model
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.dtype = dtype or (torch.bfloat16 if self.device.startswith("cuda") else torch.float32)
        gguf = check_gguf(model.path)
        self.copy_folder = transformers_copy_folder(model)
        with _quiet_transformers():
            network = self._load(gguf)
            if getattr(model, "adapter", None) is not None:
                network = with_adapter(network, model.adapter)
        self.network = network.to(self.device).eval()
        pad = self.tokenizer.pad_token_id
        self._pad_token_id = self.tokenizer.eos_token_id if pad is None else pad
        self._lock = threading.Lock()
        if warm_up:
            # The first generate() after loading once ran at a tenth of the
            # usual speed; two tokens pay that cost here instead of in a reply.
            self.generate([{"role": "user", "content": "Hello"}], max_tokens=2)
            self.last_usage = None

    def _load(self, gguf: Path):
        """The network (on the CPU), from the safetensors copy, made first if
        there is none; sets the tokenizer and where the weights came from."""
        from transformers import AutoModelForCausalLM, AutoTokenizer

        if self.copy_folder.is_dir():
            try:
                network = AutoModelForCausalLM.from_pretrained(
                    self.copy_folder, dtype=self.dtype, use_safetensors=True, local_files_only=True)
                self.tokenizer = AutoTokenizer.from_pretrained(self.copy_folder, local_files_only=True)
            except (OSError, ValueError) as e:
                raise GeneratorError(f"the cached transformers copy of {gguf} in {self.copy_folder} "
                                     f"cannot be read ({e}); delete that folder to rebuild it") from e
            self.loaded_from = self.copy_folder
        else:
            print(f"{self.name}: converting {gguf.name} for transformers and saving a bf16 copy in "
                  f"{self.copy_folder} (once; about a minute for a small model)", file=sys.stderr, flush=True)
            try:
                network, self.tokenizer = _save_bf16_copy(gguf, self.copy_folder)
            except Exception as e:  # the GGUF reader and converters raise many kinds on a damaged file
                raise GeneratorError(f"transformers could not load the model file {gguf}: "
                                     f"{type(e).__name__}: {e}") from e
            # From the bf16 tensors just saved, so the first run computes with
            # exactly the weights every later load reads.
            network = network.to(self.dtype)
            self.loaded_from = gguf
        return network

    def stream(self, messages, *, max_tokens=256, temperature=0.0, seed=0, stop=None, json_schema=None):
        import torch
        from transformers import StoppingCriteriaList, TextIteratorStreamer

        messages = checked_messages(messages)
        check_settings(max_tokens, temperature)
        with self._lock:
            self.last_usage = None
            prompt = self.tokenizer.apply_chat_template(
                messages, add_generation_prompt=True, return_tensors="pt", return_dict=True).to(self.device)
            prompt_tokens = prompt["input_ids"].shape[1]
            streamer = TextIteratorStreamer(self.tokenizer, skip_prompt=True, skip_special_tokens=True)
            reader_gone = threading.Event()
            settings = dict(max_new_tokens=max_tokens, streamer=streamer, do_sample=temperature > 0,
                            stopping_criteria=StoppingCriteriaList([_Cancelled(reader_gone)]),
                            pad_token_id=self._pad_token_id)
            if temperature > 0:
                settings["temperature"] = temperature
            if stop:
                settings.update(stop_strings=list(stop), tokenizer=self.tokenizer)
            outcome = {}

            def run():
                try:
                    torch.manual_seed(seed)  # here: the sampling draws from this thread
                    with torch.inference_mode():
                        outcome["ids"] = self.network.generate(**prompt, **settings)
                except BaseException as e:  # handed to the reader, which would otherwise wait forever
                    outcome["error"] = e
                    streamer.end()

            worker = threading.Thread(target=run, name="readingroom-generate", daemon=True)
            worker.start()
            # generate() stops at a stop string but keeps it in the text; the
            # filter cuts it off, and holds back what might begin one.
            stop_filter = StopStringFilter(stop)
            try:
                for text in streamer:
                    if piece := stop_filter.feed(text):
                        yield piece
                    if stop_filter.stopped:
                        break
                if "error" in outcome:
                    raise GeneratorError(f"generation with {self.name} failed: {outcome['error']}") \
                        from outcome["error"]
                if rest := stop_filter.finish():
                    yield rest
            finally:
                reader_gone.set()
                worker.join()
                if "ids" in outcome:
                    self.last_usage = TokenUsage(prompt_tokens, outcome["ids"].shape[1] - prompt_tokens)


def with_adapter(network, folder: Path):
    """`network` with the peft LoRA adapter in `folder` merged into its
    weights (as fast as the base from then on). peft reads the adapter's
    safetensors; readingroom.tune.registry has checked its sha256."""
    try:
        from peft import PeftModel
    except ImportError:
        raise GeneratorError("an adapter needs peft (pip install 'readingroom[tune]')") from None
    import warnings

    with warnings.catch_warnings():  # peft calls a transformers method that warns of its own rename
        warnings.simplefilter("ignore", FutureWarning)
        return PeftModel.from_pretrained(network, str(folder), is_trainable=False).merge_and_unload()


# --- loading ----------------------------------------------------------------------

BACKENDS = {"llama.cpp": LlamaCppGenerator, "transformers": TransformersGenerator}
_loaded: dict[tuple, Generator] = {}
_loading = threading.Lock()


def load_generator(spec=DEFAULT_GENERATOR, backend: str = "llama.cpp", **options) -> Generator:
    """The generator for `spec` (a catalogue name, a .gguf path, or a model
    resolve() returned) on `backend`, loaded once per process for each model
    and set of options."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    model = spec if hasattr(spec, "identity") else resolve(str(spec), role="generator")
    if getattr(model, "adapter", None) is not None and backend == "llama.cpp":
        # A LoRA adapter runs merged into the dequantised model in
        # transformers (see readingroom.tune.adapters for why not llama.cpp).
        backend = "transformers"
        options = {k: v for k, v in options.items() if k in ("device", "dtype", "warm_up")}
    key = (backend, model.identity, model.path, tuple(sorted(options.items())))
    with _loading:
        if key not in _loaded:
            _loaded[key] = BACKENDS[backend](model, **options)
        return _loaded[key]
