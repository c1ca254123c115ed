"""Questions in a language the library does not hold: searched, answered and
checked in the library's language, then shown in the reader's.

Why this way round. The check compares each sentence with the passage it
cites (content words, cosines). With the default embedder (MiniLM, English)
a German sentence and an English passage share nothing it can see, so a
German answer to English texts could only be checked more weakly, or not
at all. Here the question is translated into the library's language
(models.translate) and searched there, the model answers in the passages'
language, the program checks that answer exactly as it checks any other,
and only then is each kept sentence translated for the reader, shown with
the checked original beside it: the check is never weaker for a German
reader than for an English one, and the reader sees what was checked.

bench/crosslingual.py --models translate:GENERATOR measures what the
translated question does for search.
"""
from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

from readingroom.answer.check.citations import cited_numbers, strip_citations
from readingroom.answer.check.sentences import join_sentences
from readingroom.models.translate import Translation, translate

_END = re.compile(r"[.!?…。]+[\"'”»)]*$")


def library_languages(searcher) -> Counter:
    """How many documents the library holds in each language it knows."""
    return Counter(code for code in searcher.index.docs.languages.tolist() if code)


def pivot_language(language: str | None, held: Counter) -> str | None:
    """The language to search, answer and check in when it is not the
    question's: the library's most common one, if the library does not
    hold the question's language at all. None: work in the question's."""
    if not language or not held or language in held:
        return None
    return held.most_common(1)[0][0]


@dataclass(frozen=True)
class TranslatedSentence:
    text: str          # in the reader's language, with the checked sentence's [n] markers
    checked: str       # the sentence as the program checked and kept it
    ok: bool           # False: the translation was refused and `text` is the checked sentence
    paragraph: int = 0     # the checked sentence's paragraph and list marker, so that
    list_marker: str = ""  # the translation is laid out as the checked answer is

    @property
    def final(self) -> str:  # what check.sentences.join_sentences reads
        return self.text


@dataclass
class CrossLingual:
    """What was translated for one answer."""
    language: str                  # the reader's
    pivot: str                     # the language searched, answered and checked in
    question: Translation          # the question into `pivot`
    sentences: list[TranslatedSentence]

    @property
    def body(self) -> str:
        """The translated answer, laid out as the checked answer is."""
        return join_sentences(self.sentences)

    def to_dict(self) -> dict:
        return {"language": self.language, "pivot": self.pivot, "question": self.question.to_dict(),
                "sentences": [{"text": s.text, "checked": s.checked, "ok": s.ok} for s in self.sentences]}


def with_markers(translated: str, markers: list[str]) -> str:
    """The markers put back where a sentence ends: before its full stop."""
    if not markers:
        return translated
    text = translated.rstrip()
    end = _END.search(text)
    cut = end.start() if end else len(text)
    return f"{text[:cut].rstrip()} {''.join(markers)}{text[cut:]}"


def translate_sentence(final: str, language: str, pivot: str, generator, paragraph: int = 0,
                       list_marker: str = "") -> TranslatedSentence:
    """One kept sentence in the reader's language. Its citations are taken
    out before it is translated and put back after, so no model can drop,
    move or invent one."""
    markers = [f"[{n}]" for n in cited_numbers(final)]
    result = translate(strip_citations(final), language, generator, source=pivot)
    if not result.ok:
        return TranslatedSentence(final, final, False, paragraph, list_marker)
    # Citations the model wrote itself, in any of the forms the checker reads, are dropped.
    return TranslatedSentence(with_markers(strip_citations(result.text), markers), final, True,
                              paragraph, list_marker)


def translate_answer(kept, language: str, pivot: str, generator, question: Translation) -> CrossLingual:
    """The kept sentences of a checked answer (anything with `final`,
    `paragraph` and `list_marker`, as check.Sentence has), each translated
    into `language`."""
    return CrossLingual(language, pivot, question,
                        [translate_sentence(s.final, language, pivot, generator, s.paragraph, s.list_marker)
                         for s in kept])


def pivot_name(crosslingual: CrossLingual) -> str:
    """The checked language's name in the reader's language ("Englisch")."""
    from babel import Locale, UnknownLocaleError

    try:
        return Locale(crosslingual.language).languages.get(crosslingual.pivot, crosslingual.pivot)
    except (UnknownLocaleError, ValueError):
        return crosslingual.pivot
