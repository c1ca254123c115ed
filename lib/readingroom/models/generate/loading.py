"""A generator by name: a backend chosen by its name, each model (with its
options) loaded once per process."""
from __future__ import annotations

import threading

from readingroom.models.catalogue import DEFAULT_GENERATOR
from readingroom.models.generate.base import Generator
from readingroom.models.generate.llama_cpp import LlamaCppGenerator
from readingroom.models.generate.transformers import TransformersGenerator
from readingroom.models.resolve import resolve

BACKENDS = {"llama.cpp": LlamaCppGenerator, "transformers": TransformersGenerator}
_loaded: dict[tuple, Generator] = {}
_loading = threading.Lock()


def load_generator(spec=DEFAULT_GENERATOR, backend: str = "llama.cpp", *, own: bool = False,
                   **options) -> Generator:
    """The generator for `spec` (a catalogue name, a .gguf path, or a model
    resolve() returned) on `backend`, loaded once per process for each model
    and set of options. `own=True`: a new instance with a context of its
    own, never shared (a judge that reads while an answer is being written
    needs one: a context holds one sequence, and its lock one caller)."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    model = spec if hasattr(spec, "identity") else resolve(str(spec), role="generator")
    if getattr(model, "adapter", None) is not None and backend == "llama.cpp":
        # A LoRA adapter runs merged into the dequantised model in
        # transformers (see readingroom.tune.adapters for why not llama.cpp).
        backend = "transformers"
        options = {k: v for k, v in options.items() if k in ("device", "dtype", "warm_up")}
    if own:
        return BACKENDS[backend](model, **options)
    key = (backend, model.identity, model.path, tuple(sorted(options.items())))
    with _loading:
        if key not in _loaded:
            _loaded[key] = BACKENDS[backend](model, **options)
        return _loaded[key]
