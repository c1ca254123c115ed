"""The check: a model's answer against the passages it was given, as a
pipeline of steps. Each step takes the sentence records and returns new
ones (readingroom.answer.check.sentences.Sentence is immutable):

1. `read`: the sentences, their citations (valid, or invented: a number
   that points to no passage given) and their kind: a claim, a connective
   without content words ("In short:"), a pointer ("This is stated in
   [1].") or a statement that the sources do not answer.
2. Citations the model wrote in other ways, each still checked for support:
   - `lend_pointer_citations`: "This is stated in [1]." gives [1] to the
     sentence before it;
   - `cite_named_sources`: a sentence that names the author or title of
     given passages ("Engels writes ...") cites those passages (the one of
     them that supports it best counts);
   - `inherit_paragraph_citations`: a claim without a number in a paragraph
     whose other sentences cite takes the numbers of the next citing
     sentence (a citation at the end of a paragraph covers it), else of the
     one before;
   - `find_citations`: a claim that still cites nothing (small models often
     write a sound answer and cite nothing at all) gets the given passage
     that supports it best, if its support reaches FOUND_THRESHOLD (0.60,
     stricter than the 0.50 of support). The number found is written into
     the checked text, so every claim kept carries its [n].
3. `score`: each claim gets its support score (readingroom.answer.check.
   scoring) against every passage it validly cites, and keeps the best.
   Unsupported claims are left out; a sentence that cites nothing is
   unsupported, unless it is a connective or says that the sources do not
   answer (always safe to say).
4. `check_speakers`: a supported claim that names who says it ("Reagan
   argues that ...") is left out when no passage it cites is by that
   speaker or names them: the words may match, but they are put in
   another's mouth (attribution.misattributed).
   With a judge (`check_answer(..., judged=...)`: answer.entailment, on
   by default in answer.pipeline when the judge is calibrated), `judge_meaning`
   then asks of each claim still kept whether its best passage says it,
   and leaves out those it does not find there.
5. `drop_repeats`: a supported claim that says again what an earlier
   supported claim said (answer.repeats.same_text: nearly the same words,
   the same negations and numbers) is left out, so that a small model that
   copies its passage twice over does not print it twice.
6. `attribute`: each kept claim says whose claim it is
   (readingroom.answer.check.attribution).
7. `keep`: the kept sentences, when at least one claim is among them.

What the words alone cannot catch: a sentence that reuses a passage's
words to say something the passage does not (a dropped "not", swapped
subjects). The score measures overlap, not entailment; the judge reads
meaning, as well as a small model can, and the citations let the reader check.
"""
from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

from readingroom.answer.check.attribution import (misattributed, name_the_passage, names_author, speaker,
                                                  with_attribution, without_own_sources)
from readingroom.answer.check.citations import append_markers, cited_numbers, keep_citations, strip_citations
from readingroom.answer.check.scoring import FOUND_THRESHOLD, SupportChecker
from readingroom.answer.check.sentences import Sentence, join_sentences, split_sentences
from readingroom.answer.repeats import same_text
from readingroom.text import content_words

_NOT_ANSWERED = re.compile(
    r"\b(?:do(?:es)?\s+not|don't|doesn't|cannot|can't|can\s+not|no|neither|nor|none\s+of)\b[^.]{0,40}?"
    r"\b(?:answer|answers|mention|mentions|say|says|contain|contains|provide|provides|address|addresses|"
    r"discuss|discusses|cover|covers|information|relevant|anything)\b", re.IGNORECASE)
_POINTER = re.compile(
    r"^\(?\s*(?:this|that|these|it|see|as|cf\.?|sources?|passages?)\b.*\b(?:stated|said|mentioned|made|found|given|"
    r"described|explained|discussed|noted|written|cited|supported|see|seen|taken|quoted|comes?|shown|according)\b",
    re.IGNORECASE)

Sentences = tuple[Sentence, ...]
# The support scores of some sentences against every passage given: (lexical, cosine, combined).
Scorer = Callable[[list[str]], tuple[np.ndarray, np.ndarray, np.ndarray]]


@dataclass(frozen=True)
class Checked:
    """An answer after the check."""

    sentences: list[Sentence]
    text: str  # the kept sentences, with valid citations only
    cited: list[int]  # passage numbers the checked text cites, in order
    invented: list[int]  # citation numbers that pointed to no passage
    supported: bool  # at least one supported claim, and only supported claims kept
    not_answered: bool  # the model said the sources do not answer, and claimed nothing supported

    @property
    def kept(self) -> list[Sentence]:
        return [s for s in self.sentences if s.final]


# Does a passage's text say a claim? (said, probability): the entailment
# judge, given by the caller (answer.pipeline), so that the check does not
# load a model of its own.
Judged = Callable[[str, str], tuple[bool, float]]


def check_answer(raw: str, passages, checker: SupportChecker, *, passage_vectors: np.ndarray | None = None,
                 answer_language: str | None = None, judged: Judged | None = None,
                 judged_sentences: int | None = None) -> Checked:
    """Check a model's answer against the passages it was given (search
    Hits, numbered from 1): remove invented citations, score each sentence,
    leave out unsupported claims, and attribute the rest. `judged`: the
    meaning check of each claim kept by its words (`judge_meaning`), of the
    first `judged_sentences` sentences only when given (the early check:
    the last one may be unfinished)."""
    given = len(passages)
    scorer = _scorer(passages, checker, passage_vectors, answer_language)
    sentences = read(raw, given, answer_language)
    sentences = lend_pointer_citations(sentences)
    sentences = cite_named_sources(sentences, passages)
    sentences = score(sentences, lambda s: s.kind == "claim" and bool(s.valid), scorer, checker)
    sentences = inherit_paragraph_citations(sentences)
    sentences = score(sentences, lambda s: s.kind == "claim" and s.inherited and s.best is None, scorer, checker)
    sentences = find_citations(sentences, scorer, checker)
    sentences = score(sentences, lambda s: s.found and s.best is None, scorer, checker)
    sentences = check_speakers(sentences, passages)
    if judged is not None:
        sentences = judge_meaning(sentences, passages, judged, judged_sentences)
    sentences = drop_repeats(sentences)
    sentences = attribute(sentences, passages)
    return keep(sentences)


def _scorer(passages, checker: SupportChecker, passage_vectors, answer_language) -> Scorer:
    """Scores sentences against all the passages given; a sentence in
    another language than a passage is scored there by the cosine alone."""
    cross = None
    if answer_language and passages:
        cross = np.array([(getattr(p, "language", None) or answer_language) != answer_language for p in passages])
    texts = [p.text for p in passages]
    languages = [getattr(p, "language", None) for p in passages]  # each passage's words read in its language

    def scores(sentences: list[str]):
        return checker.scores(sentences, texts, passage_vectors,
                              None if cross is None else np.tile(cross, (len(sentences), 1)), languages)

    return scores


def read(raw: str, given: int, language: str | None = None) -> Sentences:
    """The sentences of `raw` (written in `language`; None: English), with
    their citations and kinds."""
    out = []
    for s in split_sentences(raw):
        cited = tuple(cited_numbers(s.text))
        valid = tuple(n for n in cited if 1 <= n <= given)
        claim = strip_citations(s.text)
        words = len(set(content_words(claim, language)))
        if not valid and _NOT_ANSWERED.search(claim):
            kind = "not-answered"
        elif cited and _POINTER.match(claim) and len(claim.split()) <= 9:
            kind = "pointer"
        # A citation makes it a claim to check, however few its words: "He
        # [1]", a fragment left where a copied quotation ended, is not a
        # connective to keep as it stands.
        elif (words == 0 and not cited) or (not valid and claim.endswith(":") and len(claim.split()) <= 6 and words <= 2):
            kind = "connective"
        else:
            kind = "claim"
        out.append(replace(s, cited=cited, valid=valid, invalid=tuple(n for n in cited if n not in valid),
                           words=words, kind=kind))
    return tuple(out)


def invented(sentences: Sentences) -> list[int]:
    """The invented citation numbers, in order of first appearance."""
    return list(dict.fromkeys(n for s in sentences for n in s.invalid))


def _merged(numbers: tuple[int, ...], more: tuple[int, ...]) -> tuple[int, ...]:
    return numbers + tuple(n for n in more if n not in numbers)


def lend_pointer_citations(sentences: Sentences) -> Sentences:
    """"This is stated in [1]." gives its numbers to the claim before it."""
    out = list(sentences)
    for i in range(1, len(sentences)):
        pointer, before = sentences[i], sentences[i - 1]
        if pointer.kind == "pointer" and before.kind == "claim":
            written = cited_numbers(before.text)
            out[i - 1] = replace(before, valid=_merged(before.valid, pointer.valid),
                                 cited=_merged(before.cited, pointer.cited),
                                 inherited=before.inherited or not any(n in written for n in pointer.valid))
    return tuple(out)


def cite_named_sources(sentences: Sentences, passages) -> Sentences:
    """A claim that cites no number but names the author or title of given
    passages ("Engels writes in The Condition of ...") cites those passages."""
    def named(s: Sentence) -> Sentence:
        if s.kind != "claim" or s.valid or not passages:
            return s
        numbers = tuple(n for n in range(1, len(passages) + 1) if names_author(s.text, [passages[n - 1]]))
        return replace(s, valid=numbers, named=True) if numbers else s

    return tuple(named(s) for s in sentences)


def inherit_paragraph_citations(sentences: Sentences) -> Sentences:
    """A claim without a number in a paragraph whose other claims cite (or
    name their source): the citation at the end of the paragraph covers it,
    or failing that the one before it."""
    out = list(sentences)
    for i, s in enumerate(sentences):
        if s.kind != "claim" or s.valid:
            continue
        same = [j for j, t in enumerate(sentences)
                if t.paragraph == s.paragraph and t.kind == "claim" and t.valid and not t.inherited]
        after = [j for j in same if j > i]
        source = after[0] if after else (same[-1] if same and same[-1] < i else None)
        if source is not None:
            out[i] = replace(s, valid=sentences[source].valid, inherited=True)
    return tuple(out)


def _scores_of(sentences: Sentences, which: Callable[[Sentence], bool], scorer: Scorer):
    """(positions of the sentences `which` selects, their scores against
    every passage given); the scores are None when there is nothing to score."""
    chosen = [i for i, s in enumerate(sentences) if which(s)]
    if not chosen:
        return chosen, None
    scores = scorer([strip_citations(sentences[i].text) for i in chosen])
    return chosen, (scores if scores[2].shape[1] else None)


def find_citations(sentences: Sentences, scorer: Scorer, checker: SupportChecker) -> Sentences:
    """A claim still without a citation gets the given passage that supports
    it best, when that passage supports it clearly (FOUND_THRESHOLD,
    stricter than the support threshold because the model did not point to
    it)."""
    uncited, scores = _scores_of(sentences, lambda s: s.kind == "claim" and not s.valid
                                 and s.words >= checker.min_claim_words, scorer)
    if scores is None:
        return sentences
    combined = scores[2]
    out = list(sentences)
    for row, i in enumerate(uncited):
        best = int(np.argmax(combined[row]))
        if combined[row, best] >= max(checker.threshold, FOUND_THRESHOLD):
            out[i] = replace(sentences[i], valid=(best + 1,), found=True)
    return tuple(out)


def score(sentences: Sentences, which: Callable[[Sentence], bool], scorer: Scorer,
          checker: SupportChecker) -> Sentences:
    """The sentences `which` selects, scored against the passages they cite:
    the best passage, its support, and whether that makes a supported claim.
    A sentence that cites by name, inheritance or the program's finding is
    read as citing its best passage alone."""
    chosen, scores = _scores_of(sentences, which, scorer)
    if scores is None:
        return sentences
    lexical, cosine, combined = scores
    out = list(sentences)
    for row, i in enumerate(chosen):
        s = sentences[i]
        best = max((n - 1 for n in s.valid), key=lambda j: combined[row, j])
        support = round(float(combined[row, best]), 4)
        out[i] = replace(s, best=best + 1, support=support, lexical=round(float(lexical[row, best]), 4),
                         cosine=round(float(cosine[row, best]), 4),
                         supported=support >= checker.threshold and s.words >= checker.min_claim_words,
                         valid=(best + 1,) if (s.named or s.inherited or s.found) else s.valid)
    return tuple(out)


def check_speakers(sentences: Sentences, passages) -> Sentences:
    """Supported claims that name a speaker none of their passages is by or
    names, left out with that speaker's name."""
    out = list(sentences)
    for i, s in enumerate(sentences):
        if s.kind == "claim" and s.supported:
            who = misattributed(strip_citations(s.text), [passages[n - 1] for n in s.valid])
            if who:
                out[i] = replace(s, supported=False, misattributed=who)
    return tuple(out)


def judge_meaning(sentences: Sentences, passages, judged: Judged, first: int | None = None) -> Sentences:
    """Claims kept by their words (of the `first` sentences, when given),
    put to the judge against their best passage: those it does not find
    there are left out, with its probability (a sentence can reuse a
    passage's words and reverse them)."""
    out = list(sentences)
    for i, s in enumerate(sentences[:first]):
        if s.kind == "claim" and s.supported and s.best:
            said, probability = judged(passages[s.best - 1].text, judged_claim(s.text))
            out[i] = replace(s, supported=said, meaning=round(float(probability), 4), meaning_doubted=not said)
    return tuple(out)


def judged_claim(sentence: str) -> str:
    """What the judge is asked about a sentence: its claim without citations
    and without its opening "According to X," (whose X the attribution
    steps check), capitalised. The judge was calibrated on bare claims (one
    of the 265 in data/benchmarks/claims.jsonl has such an opening), and it
    reads a speaker its passage does not name as a claim the passage does
    not make: "According to Engels, in countries with English law, ..."
    scored 0.67 against Engels's own words, 0.96 without its first three
    words. bench/judge_kept.py asks the judge the same."""
    claim = without_own_sources(strip_citations(sentence).strip())
    return claim[:1].upper() + claim[1:]


def drop_repeats(sentences: Sentences) -> Sentences:
    """Supported claims that say again what an earlier supported claim said,
    whichever passage they cite, left out with the number of that claim."""
    out = list(sentences)
    earlier: list[tuple[int, str]] = []  # (position, text without citations) of the claims kept so far
    for i, s in enumerate(sentences):
        if s.kind != "claim" or not s.supported:
            continue
        text = strip_citations(s.text)
        first = next((j for j, said in earlier if same_text(text, said)), None)
        if first is None:
            earlier.append((i, text))
        else:
            out[i] = replace(s, supported=False, repeats=first + 1)
    return tuple(out)


def attribute(sentences: Sentences, passages) -> Sentences:
    """The text each kept sentence will read: valid citations only, the
    numbers it was read as citing written in, and whose claim it is. Claims
    left out, pointers and statements that the sources do not answer get no
    text ("not answered" is said by the answer itself, if nothing is kept)."""
    given = set(range(1, len(passages) + 1))
    out = []
    previous_speakers: set[str] | None = None
    previous_paragraph = None
    for s in sentences:
        if s.paragraph != previous_paragraph:
            previous_speakers, previous_paragraph = None, s.paragraph
        if s.kind in ("not-answered", "pointer") or (s.kind == "claim" and not s.supported):
            out.append(s)
            continue
        text = keep_citations(s.text, given)
        if s.kind != "claim":
            out.append(replace(s, body=text, final=text))
            continue
        text = append_markers(text, [n for n in s.valid if n not in cited_numbers(text)])
        cited_hits = [passages[n - 1] for n in s.valid]
        text = name_the_passage(text, passages)
        speakers = {speaker(h) for h in cited_hits}
        # A sentence that goes on citing the speaker the sentence before it
        # in this paragraph named reads as theirs: "According to Engels, A
        # [1]. B [1]." is Engels's A and B; a prefix on each would not be.
        if names_author(text, cited_hits) or (previous_speakers and speakers <= previous_speakers):
            out.append(replace(s, attributed=True, body=text, final=text))
        else:
            who = speaker(passages[s.best - 1])
            final = with_attribution(text, who, " ".join(" ".join(h.text.split()) for h in cited_hits))
            out.append(replace(s, attributed=True, attribution_added=f"According to {who}, ", attributed_to=who,
                               body=text, final=final))
        previous_speakers = speakers
    return tuple(out)


def keep(sentences: Sentences) -> Checked:
    """The checked answer: the sentences with text, provided a claim is among
    them (connectives alone say nothing)."""
    has_claim = any(s.final and s.kind == "claim" for s in sentences)
    if not has_claim:
        sentences = tuple(replace(s, body="", final="") if s.final else s for s in sentences)
    kept = [s for s in sentences if s.final]
    cited = list(dict.fromkeys(n for s in kept for n in cited_numbers(s.final)))
    return Checked(sentences=list(sentences), text=join_sentences(kept), cited=cited, invented=invented(sentences),
                   supported=has_claim,
                   not_answered=not has_claim and any(s.kind == "not-answered" for s in sentences))
