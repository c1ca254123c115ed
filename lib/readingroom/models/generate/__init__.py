"""Text from chat messages with a local open model: one small interface, two
backends.

The package: base (the Generator interface, messages, settings checks, the
stop-string filter), llama_cpp and transformers (the backends), loading
(a backend by name, each model loaded once per process), batched (several
completions decoded together on a llama.cpp model, for the app's
generation service).

    from readingroom.models.generate import load_generator
    generator = load_generator()                     # the default model, llama.cpp
    for piece in generator.stream([{"role": "user", "content": "Who wrote it?"}]):
        print(piece, end="", flush=True)
    generator.last_usage                             # TokenUsage(prompt_tokens=..., completion_tokens=...)

Backends, both reading the same GGUF file that `readingroom.models.resolve` resolves:

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
import os

# libgomp's worker threads (llama.cpp and torch both use it here) wait for
# work by spinning, which fights any other busy process for a laptop's two
# cores: with another process busy, llama.cpp on 2 threads ran at half the
# speed of 1 thread, and this module's tests took 86 s instead of 44 s with
# passive waiting. On an idle machine passive waiting costs something
# instead (SmolLM2 decoding once measured 41 against 58 tokens/s), less for
# larger models, whose steps are longer. libgomp reads this once, when it is
# first loaded, so it counts only if this package is imported before torch or
# llama_cpp (every backend module is inside it, so importing one runs this
# first); a value the user set is kept.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from readingroom.models.generate.base import (  # noqa: E402
    ROLES, Generator, GeneratorError, Message, StopStringFilter, TokenUsage, check_gguf, check_settings,
    checked_messages,
)
from readingroom.models.generate.llama_cpp import LlamaCppGenerator, llama_cpp_uses_amx  # noqa: E402
from readingroom.models.generate.loading import BACKENDS, load_generator  # noqa: E402
from readingroom.models.generate.transformers import (  # noqa: E402
    TransformersGenerator, save_bf16_copy, transformers_copy_folder, with_adapter,
)

__all__ = ["BACKENDS", "ROLES", "Generator", "GeneratorError", "LlamaCppGenerator", "Message", "StopStringFilter",
           "TokenUsage", "TransformersGenerator", "check_gguf", "check_settings", "checked_messages",
           "llama_cpp_uses_amx", "load_generator", "save_bf16_copy", "transformers_copy_folder", "with_adapter"]
