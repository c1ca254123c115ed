"""Which language a document is written in, as an ISO 639-1 code.

lingua-language-detector is used because it is accurate on short and mixed
texts and ships its models inside the wheel (no download, no pickles). A
sample from the middle of the text is enough and keeps detection at a few
milliseconds a document.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import replace
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


# --- each passage's language ----------------------------------------------------------
# Most documents are in one language; some mix (an English essay with German
# paragraphs, a bilingual edition). A passage's language decides its words'
# stemmer and stop words (text.word_language), so a German paragraph in an
# English book should be read as German. Reading every passage with lingua
# would cost more than the rest of ingestion (bench/passage_languages.py), so
# a document is screened first: a few passages spread through it are read
# with a small, fast detector (the languages that have their own stemmer,
# trigrams only); only when one of them is clearly in another language than
# the document is every passage read, with the document's own detector.
# A single-language document is left as it was: its passages take its
# language. What the screen can miss: a lone paragraph in another language
# between two sampled passages (sampling, not reading, is what keeps it cheap).
SCREEN_PASSAGES = 8
# A passage shorter than this is not read (a heading, a line of verse):
# too little to tell, it keeps the document's language.
MIN_PASSAGE_CHARS = 120
SCREEN_CHARS = 250  # of each sampled passage, from its middle (~40 words: enough for trigrams)


def _word_languages() -> list[str]:
    """The ISO codes lingua knows that have their own stemmer and stop words."""
    from lingua import Language

    from readingroom.text import word_language

    return sorted(c for c in (x.iso_code_639_1.name.lower() for x in Language.all()) if word_language(c) == c)


@lru_cache(maxsize=1)
def _screen_detector():
    from lingua import IsoCode639_1, LanguageDetectorBuilder

    codes = [getattr(IsoCode639_1, c.upper()) for c in _word_languages()]
    return (LanguageDetectorBuilder.from_iso_codes_639_1(*codes).with_low_accuracy_mode()
            .with_minimum_relative_distance(0.1).build())


def _code(language) -> str | None:
    return language.iso_code_639_1.name.lower() if language else None


def mixes_languages(texts: list[str], document_language: str | None) -> bool:
    """Whether any of up to SCREEN_PASSAGES passages spread evenly through
    `texts` is clearly in another language (one with its own stemmer)
    than `document_language`."""
    long = [i for i, t in enumerate(texts) if len(t) >= MIN_PASSAGE_CHARS]
    if not long:
        return False
    step = max(1, len(long) / SCREEN_PASSAGES)
    sampled = [texts[long[int(k * step)]] for k in range(min(SCREEN_PASSAGES, len(long)))]
    middles = [t[max(0, len(t) // 2 - SCREEN_CHARS // 2):][:SCREEN_CHARS] for t in sampled]
    found = {_code(x) for x in _screen_detector().detect_languages_in_parallel_of(middles)}
    return bool(found - {document_language, None})


def passage_languages(texts: list[str], document_language: str | None) -> list[str | None]:
    """Each passage's language: the document's, unless the document mixes
    languages (`mixes_languages`), when each passage long enough to tell is
    read by the document detector; a passage it cannot tell, or finds in
    a language without its own stemmer, keeps the document's language."""
    if not mixes_languages(texts, document_language):
        return [document_language] * len(texts)
    from readingroom.text import word_language

    readable = [i for i, t in enumerate(texts) if len(t) >= MIN_PASSAGE_CHARS]
    found = _detector().detect_languages_in_parallel_of([texts[i] for i in readable])
    languages = [document_language] * len(texts)
    for i, language in zip(readable, found):
        code = _code(language)
        if code and word_language(code) == code:
            languages[i] = code
    return languages


def with_passage_languages(passages: list, document_language: str | None) -> list:
    """`passages` (corpus.passages.Passage) with their languages: unchanged
    (language None: the document's), at the cost of the screen only, for a
    document in one language; each given its own for a document that mixes
    them (`passage_languages`)."""
    languages = passage_languages([p.text for p in passages], document_language)
    if all(language == document_language for language in languages):
        return passages
    return [replace(p, language=language) for p, language in zip(passages, languages)]


def main_language(passages: list, document_language: str | None) -> str | None:
    """The language most of a document's text is in, by its passages'
    (a mixed document's detected language comes from one sample of it)."""
    chars: Counter = Counter()
    for p in passages:
        chars[p.language or document_language] += len(p.text)
    return chars.most_common(1)[0][0] if chars else document_language




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
