"""Questions answered from passages in another language than theirs:
searched, answered and checked in the passages' language, then shown in
the reader's.

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

Which language, decided by the passages. A library may hold several
languages (the Anarchist FAQ beside German quotations). A question is
searched as asked when the library holds its language at all, and also,
translated, in each other language that holds a tenth of the passages
(`translation_targets`); the search whose passages give the stronger
evidence (search.relevance.retrieval_evidence, which reads each passage in
its own language) wins, and the answer is written and checked in that
language. So an English reader asking about Marx's German aphorisms gets
them, checked in German, with the English beside them.

The translation back is checked too (`back_check`). A small model now and
then turns a meaning round while translating (Qwen2.5-Coder-1.5B once made
"anarchists reject the idea" into "rechtfertigen die Idee", justify), and
the reader, who may not read the checked original, would never know. So
each translated sentence is translated back into the pivot by the same
translator, and the entailment judge (answer.entailment) is asked whether
the checked sentence supports the back-translation and, when it does,
whether the back-translation supports the checked sentence: the same
meaning both ways. Where either fails, the reader gets the checked sentence
alone, marked as a translation withheld. Its cost, per translated
sentence: one more generation (the translation back, about as long as the
sentence) and one or two judge calls (one read of a short prompt each, no
generation); `answer(..., verify_translation=False)` switches it off.
bench/crosslingual_answers.py measures what share passes and the time.

bench/crosslingual.py --models translate:GENERATOR measures what the
translated question does for search.
"""
from __future__ import annotations

import re
import time
from collections import Counter
from dataclasses import dataclass

from readingroom.answer.check.citations import cited_numbers, strip_citations
from readingroom.answer.check.sentences import join_sentences
from readingroom.messages import message
from readingroom.models.translate import Translation, translate

# Where the judge's probability counts as "the same meaning" for the back-check, each way.
# Lower than the claim judge's own threshold (0.81 for the 1.5B, set for precision 0.95 on
# claims against passages) because two translations in a row paraphrase: "mutual aid"
# comes back as "collective help" and the calibrated judge gives that 0.39. Measured by hand
# with Qwen2.5-Coder-1.5B as translator and judge (bench/crosslingual_answers.py measures
# the share passed on real answers): three faithful German translations scored 0.39, 0.99
# and 0.99 the first way (0.68 and 0.99 back); three hand-made inversions ("reject" as
# "rechtfertigen", "damp cellars" as "dry, bright houses", the bourgeoisie's grave-diggers
# made the proletariat's) 0.005, 0.004 and 0.05 the first way, 0.04, 0.003 and 0.19 back.
BACK_CHECK_THRESHOLD = 0.3
_END = re.compile(r"[.!?…。]+[\"'”»)]*$")


# A language holding less than this share of the library's passages is
# searched only when the question is asked in it: a German question to
# English essays that quote a few German lines is also searched in English,
# but an English question to them is not translated into German for those lines.
MIN_LANGUAGE_SHARE = 0.1


def library_languages(searcher) -> Counter:
    """How many passages the library holds in each language it knows: each
    passage's own, so that German theses quoted inside an English essay
    count as German."""
    return Counter(searcher.index.passage_languages.counts())


def translation_targets(language: str | None, held: Counter) -> list[str]:
    """The languages, besides the question's own, to translate a question in
    `language` into and search in: each that holds at least
    MIN_LANGUAGE_SHARE of the passages, most passages first; when the
    library holds none of the question's language, at least its most common
    one. Empty: the question's language cannot be told, or it is the only
    one that matters. The answer is then written and checked in whichever
    search found the stronger evidence (answer.pipeline)."""
    if not language or not held:
        return []
    total = sum(held.values())
    targets = [code for code, n in held.most_common() if code != language and n >= MIN_LANGUAGE_SHARE * total]
    if language not in held and not targets:
        targets = [held.most_common(1)[0][0]]
    return targets


@dataclass(frozen=True)
class TranslatedSentence:
    text: str          # what the reader reads: the translation, with the checked sentence's [n] markers;
                       # the checked sentence itself when the translation was refused or withheld
    checked: str       # the sentence as the program checked and kept it
    ok: bool           # False: the translation was refused, or withheld by the back-check; `text` is `checked`
    paragraph: int = 0     # the checked sentence's paragraph and list marker, so that
    list_marker: str = ""  # the translation is laid out as the checked answer is
    translation: str | None = None        # the translator's text with the markers, kept when it is withheld
    back_translation: str | None = None   # `translation` translated back into the pivot, markers taken out
    back_probability: float | None = None     # the judge: the checked sentence supports the back-translation
    reverse_probability: float | None = None  # the judge: the back-translation supports the checked sentence
                                              # (None: not asked, the first direction had failed or both_ways off)
    verified: bool | None = None  # the back-check passed (True) or failed (False); None: not checked
    note: str = ""     # when withheld: why, in the reader's language, shown after the sentence
    back_seconds: float = 0.0  # what the back-check took

    @property
    def withheld(self) -> bool:
        return self.verified is False

    @property
    def final(self) -> str:  # what check.sentences.join_sentences reads
        return f"{self.text} ({self.note})" if self.note else self.text

    def to_dict(self) -> dict:
        return {"text": self.text, "checked": self.checked, "ok": self.ok, "translation": self.translation,
                "back_translation": self.back_translation,
                "back_probability": _rounded(self.back_probability),
                "reverse_probability": _rounded(self.reverse_probability),
                "verified": self.verified, "withheld": self.withheld, "note": self.note,
                "back_seconds": round(self.back_seconds, 3)}


def _rounded(p: float | None) -> float | None:
    return None if p is None else round(p, 4)


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

    @property
    def back_checked(self) -> list[TranslatedSentence]:
        """The sentences the back-check judged (verified or withheld)."""
        return [s for s in self.sentences if s.verified is not None]

    @property
    def verified(self) -> list[TranslatedSentence]:
        return [s for s in self.sentences if s.verified]

    @property
    def withheld(self) -> list[TranslatedSentence]:
        return [s for s in self.sentences if s.withheld]

    def to_dict(self) -> dict:
        return {"language": self.language, "pivot": self.pivot, "question": self.question.to_dict(),
                "back_checked": len(self.back_checked), "verified": len(self.verified),
                "withheld": len(self.withheld),
                "sentences": [s.to_dict() for s in self.sentences]}


def with_markers(translated: str, markers: list[str]) -> str:
    """The markers put back where a sentence ends: before its full stop."""
    if not markers:
        return translated
    text = translated.rstrip()
    end = _END.search(text)
    cut = end.start() if end else len(text)
    return f"{text[:cut].rstrip()} {''.join(markers)}{text[cut:]}"


@dataclass(frozen=True)
class BackCheck:
    """A translation translated back into the pivot and judged against the
    sentence that was checked (see the module notes)."""
    back_translation: str | None  # None: the translator's output was refused (then not verified)
    probability: float | None     # the checked sentence supports the back-translation
    reverse_probability: float | None  # the back-translation supports the checked sentence
    verified: bool
    seconds: float


def back_check(original: str, translated: str, language: str, pivot: str, generator, judge,
               both_ways: bool = True, threshold: float = BACK_CHECK_THRESHOLD) -> BackCheck:
    """Whether `translated` (in `language`, markers taken out) says what
    `original` (in `pivot`, markers taken out) says: translated back by
    `generator`, then judged by `judge` (an answer.entailment
    EntailmentJudge, or anything with `probability(source, claim)`), each
    way at `threshold`. One generation and one judge call; a second judge call,
    the reverse direction, when `both_ways` and the first passed. A
    translation back that the translator refuses fails the check: what
    cannot be checked is not shown as checked."""
    started = time.perf_counter()
    back = translate(translated, pivot, generator, source=language)
    if not back.ok:
        return BackCheck(None, None, None, False, time.perf_counter() - started)
    forward = judge.probability(original, back.text)
    reverse = None
    passed = forward >= threshold
    if passed and both_ways:
        reverse = judge.probability(back.text, original)
        passed = reverse >= threshold
    return BackCheck(back.text, forward, reverse, passed, time.perf_counter() - started)


def translate_sentence(final: str, language: str, pivot: str, generator, paragraph: int = 0,
                       list_marker: str = "", judge=None, both_ways: bool = True) -> TranslatedSentence:
    """One kept sentence in the reader's language. Its citations are taken
    out before it is translated and put back after, so no model can drop,
    move or invent one. With a `judge`, the translation is checked by
    translating it back (`back_check`); one that fails is withheld: the
    reader gets the checked sentence, with a note saying so."""
    markers = [f"[{n}]" for n in cited_numbers(final)]
    original = strip_citations(final)
    result = translate(original, language, generator, source=pivot)
    if not result.ok:
        return TranslatedSentence(final, final, False, paragraph, list_marker)
    # Citations the model wrote itself, in any of the forms the checker reads, are dropped.
    clean = strip_citations(result.text)
    translation = with_markers(clean, markers)
    if judge is None:
        return TranslatedSentence(translation, final, True, paragraph, list_marker, translation=translation)
    check = back_check(original, clean, language, pivot, generator, judge, both_ways)
    recorded = dict(translation=translation, back_translation=check.back_translation,
                    back_probability=check.probability, reverse_probability=check.reverse_probability,
                    verified=check.verified, back_seconds=check.seconds)
    if check.verified:
        return TranslatedSentence(translation, final, True, paragraph, list_marker, **recorded)
    return TranslatedSentence(final, final, False, paragraph, list_marker,
                              note=message("translation-withheld", language), **recorded)


def translate_answer(kept, language: str, pivot: str, generator, question: Translation, judge=None,
                     both_ways: bool = True) -> CrossLingual:
    """The kept sentences of a checked answer (anything with `final`,
    `paragraph` and `list_marker`, as check.Sentence has), each translated
    into `language`, and with a `judge` each checked by its translation
    back (`back_check`)."""
    return CrossLingual(language, pivot, question,
                        [translate_sentence(s.final, language, pivot, generator, s.paragraph, s.list_marker,
                                            judge, both_ways)
                         for s in kept])


def pivot_name(crosslingual: CrossLingual) -> str:
    """The checked language's name in the reader's language ("Englisch")."""
    from babel import Locale, UnknownLocaleError

    try:
        return Locale(crosslingual.language).languages.get(crosslingual.pivot, crosslingual.pivot)
    except (UnknownLocaleError, ValueError):
        return crosslingual.pivot
