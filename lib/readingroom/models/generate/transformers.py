"""The transformers backend: the GGUF dequantised into torch (needed to train
LoRA adapters), read from a bf16 safetensors copy made at the first load;
a LoRA adapter merged into its weights."""
from __future__ import annotations

import os
import shutil
import sys
import threading
from pathlib import Path

from readingroom.models.generate.base import (Generator, GeneratorError, StopStringFilter, TokenUsage, check_gguf,
                                              check_settings, checked_messages)
from readingroom.models.quiet import quiet_transformers
from readingroom.paths import cache_dir


def transformers_copy_folder(model) -> Path:
    """Where the bf16 safetensors copy of `model` is kept: named by the GGUF's
    sha256, so a changed file never reads a stale copy."""
    model = getattr(model, "base", None) or model  # an adapter's base model: the copy is the base's
    return cache_dir() / "models" / (model.identity or model.name) / "transformers-bf16"


def save_bf16_copy(gguf: Path, folder: Path):
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
        with quiet_transformers():
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
                network, self.tokenizer = save_bf16_copy(gguf, self.copy_folder)
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
