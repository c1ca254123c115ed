"""Model loading without transformers' progress bars (one per tensor pass),
for every place that loads a transformers or sentence-transformers model
(the generator's transformers backend, the chat's embedder, tuning)."""
from __future__ import annotations

import contextlib


@contextlib.contextmanager
def quiet_transformers():
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
