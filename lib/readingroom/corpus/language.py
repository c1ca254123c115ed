"""Which language a document is written in, as an ISO 639-1 code.

lingua-language-detector is used because it is accurate on short and mixed
texts and ships its models inside the wheel (no download, no pickles). A
sample from the middle of the text is enough and keeps detection at a few
milliseconds a document.
"""
from __future__ import annotations

from functools import lru_cache

SAMPLE_CHARS = 1500

# The languages the prompts and the message catalogue name, in English (the
# prompts' language).
LANGUAGE_NAMES = {"en": "English", "de": "German", "fr": "French", "es": "Spanish", "it": "Italian",
                  "pt": "Portuguese", "nl": "Dutch", "ru": "Russian"}


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




# Questions are short, and a wrong guess hides good matches (search.py keeps
# BM25 to the query's language), so a query's language is named only when
# lingua prefers it clearly: "Engels Manchester cellars" is left unnamed
# instead of being called Norwegian, as the document setting would.
QUERY_MINIMUM_RELATIVE_DISTANCE = 0.25
# A query is told apart from these and the library's own languages only:
# lingua loads a model per language (~0.25 s each), and 75 of them would
# make the first search of a session wait 14 s.
QUERY_LANGUAGES = ("en", "de", "fr", "es", "it", "pt", "nl", "ru")


@lru_cache(maxsize=4)
def _query_detector(codes: frozenset[str]):
    from lingua import IsoCode639_1, LanguageDetectorBuilder

    known = [getattr(IsoCode639_1, c.upper()) for c in sorted(codes) if hasattr(IsoCode639_1, c.upper())]
    return (LanguageDetectorBuilder.from_iso_codes_639_1(*known)
            .with_minimum_relative_distance(QUERY_MINIMUM_RELATIVE_DISTANCE).build())


def detect_query_language(text: str, library_languages=()) -> str | None:
    """The language of a question, or None unless lingua is clear about it;
    chosen among QUERY_LANGUAGES and the languages the library holds."""
    if len(text.split()) < 3:
        return None
    codes = frozenset(QUERY_LANGUAGES) | {c for c in library_languages if c}
    language = _query_detector(codes).detect_language_of(text)
    return language.iso_code_639_1.name.lower() if language else None
