"""Which language a document is written in, as an ISO 639-1 code.

lingua-language-detector is used because it is accurate on short and mixed
texts and ships its models inside the wheel (no download, no pickles). A
sample from the middle of the text is enough and keeps detection at a few
milliseconds a document.
"""
from __future__ import annotations

from functools import lru_cache

SAMPLE_CHARS = 1500


@lru_cache(maxsize=1)
def _detector():
    from lingua import LanguageDetectorBuilder

    return LanguageDetectorBuilder.from_all_languages().with_minimum_relative_distance(0.1).build()


def detect_language(text: str) -> str | None:
    """'en', 'de', ... or None when the text is too short or too mixed to tell."""
    middle = max(0, len(text) // 2 - SAMPLE_CHARS // 2)
    sample = text[middle: middle + SAMPLE_CHARS]
    if len(sample.split()) < 3:
        return None
    language = _detector().detect_language_of(sample)
    return language.iso_code_639_1.name.lower() if language else None
