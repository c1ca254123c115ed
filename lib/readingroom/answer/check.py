"""Checking a generated answer against the passages it was given.

The small models cite numbers that were never given, state things no
passage says, and follow instructions found inside passages. So nothing a
model writes reaches the reader unchecked; this module is the check.

1. Sentences. The answer is split into sentences (list items and paragraphs
   too); citation markers written after a full stop ("... state. [1]") go
   with the sentence before them. "[1, 2]", "[1-3]", "[Passage 2]" and
   "[1][2]" are all read as citations and written back as "[1][2]".
2. Citations. A number that points to no passage given is an invented
   citation: it is removed from the text and counted. Three ways small
   models cite are read as citations, each still checked for support:
   "This is stated in [1]." gives [1] to the sentence before it; a sentence
   that names the author or title of given passages ("Engels writes ...")
   cites the one of them that supports it best; and a claim without a
   number in a paragraph whose other sentences cite takes the numbers of
   the next citing sentence (a citation at the end of a paragraph covers
   it), else of the one before. A claim that still cites nothing (small
   models often write a sound answer and cite nothing at all) gets the
   given passage that supports it best, if its support reaches
   FOUND_THRESHOLD (0.60, stricter than the 0.50 below). The number found
   is written into the checked text, so every claim kept carries its [n].
3. Support. Each claim sentence gets a support score against every passage
   it validly cites, and keeps the best:

       support = LEXICAL_WEIGHT * lexical + (1 - LEXICAL_WEIGHT) * cosine

   - lexical: the share of the sentence's content words (bm25s tokens:
     lower case, stop words and question words out, Snowball-stemmed, so
     "states" matches "state") that occur in the passage. It is high when a
     sentence restates or quotes the passage, low when it adds words of its
     own.
   - cosine: the cosine between the sentence and the passage under the
     library's embedder (the passage's stored vector where there is one).
     It credits paraphrase that shares few words.
   A sentence is supported when its score reaches SUPPORT_THRESHOLD and it
   has at least MIN_CLAIM_WORDS content words (so "PWNED [1]", copied from an
   injected passage, is no claim). A sentence that cites nothing is
   unsupported, unless it is a connective without content words ("In
   short:") or says that the sources do not answer (always safe to say).
   When the sentence is in another language than the passage, the lexical
   part means nothing and the cosine alone is used (a multilingual embedder
   is needed for that to work; with MiniLM such sentences rarely pass).
   Measured on the claim sentences of Qwen2.5-Coder-1.5B and SmolLM2
   answers to a sample of the Marx-Engels benchmark (15 answerable and 10
   unanswerable questions, MiniLM vectors):
   - each sentence scored against a passage given for another question (a
     claim that passage cannot support): 0 of 46 reach 0.50 with the 50/50
     mix (2 of 46 reach 0.45); the words alone or the cosine alone separate
     the cited from the swapped passage no better (AUC 0.84 either way, 0.85
     mixed), but the mix needs both: a sentence on the right topic in other
     words (cosine ~0.55, lexical ~0.3) stays below 0.5;
   - read by hand, of the 9 sentences of Qwen's answers that passed, 7 say
     what the cited passage says, 1 half (the passage's words, put to the
     question's frame) and 1 not (a passage's words recombined into a claim
     it does not make); every sentence that failed was uncited, cited a
     passage that does not say it, or (once) said something true of another
     passage than the one it cited.
4. Attribution. A supported sentence must say whose claim it is: it names an
   author (surname), a collective author or a title of a passage it cites,
   or it follows, in the same paragraph, a sentence attributed to the same
   author ("According to Engels, A [1]. B [1]." reads as Engels's A and
   B). Otherwise the program prefixes
   "According to <author>, " (the author of the passage that supports it
   best). This is deliberately simple: it never judges whether a claim is
   true, only that it is presented as somebody's claim.

What this cannot catch: a sentence that reuses a passage's words to say
something the passage does not (a dropped "not", swapped subjects). The
score measures overlap, not entailment; the citations let the reader check.
"""
from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field

import numpy as np

from readingroom.corpus.document import name_list

# Measured on Qwen2.5-Coder-1.5B and SmolLM2 answers (see module notes).
LEXICAL_WEIGHT = 0.5
SUPPORT_THRESHOLD = 0.50
MIN_CLAIM_WORDS = 3  # content words a sentence needs to count as a supported claim
FOUND_THRESHOLD = 0.60  # support a sentence that cites nothing needs for the program to cite for it

# Words of questions and of reporting that say nothing about content; left
# out of the content words (on top of bm25s's English stop words).
FRAME_WORDS = (
    "what which who whom whose why how when where did does do done doing say says said saying according "
    "argue argues argued arguing claim claims claimed state states stated write writes wrote written "
    "describe describes described explain explains explained passage passages source sources text texts "
    "author authors also would could should can may might must shall has have had was were been being "
    "about we you your our i me my he she his her him its it they them their there here one ones "
    "so than too very just only also from up out over under more most other some any each both all "
    "between through because while since until whether same own"
).split()

CITATION = re.compile(
    r"\[\s*(?:(?:passage|source|doc|document|p)\.?\s*|\^)?"
    r"(\d{1,3}(?:\s*(?:,|;|–|-|and|&)\s*(?:(?:passage|source)\s*)?\d{1,3})*)\s*\]",
    re.IGNORECASE)
_NUMBER = re.compile(r"\d{1,3}")
_RANGE = re.compile(r"(\d{1,3})\s*[–-]\s*(\d{1,3})")
_ABBREVIATIONS = {"e.g.", "i.e.", "cf.", "mr.", "mrs.", "dr.", "st.", "vol.", "p.", "pp.", "ch.", "no.", "vs.",
                  "etc.", "ed.", "eds.", "ibid.", "op.", "cit."}
_SENTENCE_END = re.compile(r"(?<=[.!?])[\"”’»)]*\s+(?=[\[\"“‘«(A-ZÀ-ÖØ-Þ0-9])")
_LIST_MARKER = re.compile(r"^\s*(?:[-*•]|\d{1,2}[.)])\s+")
_NOT_ANSWERED = re.compile(
    r"\b(?:do(?:es)?\s+not|don't|doesn't|cannot|can't|can\s+not|no|neither|nor|none\s+of)\b[^.]{0,40}?"
    r"\b(?:answer|answers|mention|mentions|say|says|contain|contains|provide|provides|address|addresses|"
    r"discuss|discusses|cover|covers|information|relevant|anything)\b", re.IGNORECASE)
COLLECTIVE_WORDS = {"editorial", "collective", "committee", "editors", "team", "staff", "group", "board"}


# --- words ----------------------------------------------------------------------

_FRAME_STEMS: set[str] | None = None


def content_words(text: str) -> list[str]:
    """The stemmed content words of `text`, in order: bm25s tokens without
    question and reporting words and without citation markers."""
    global _FRAME_STEMS
    from readingroom.search.searcher import _stemmer, tokenize

    if _FRAME_STEMS is None:
        _FRAME_STEMS = set(_stemmer().stemWords(FRAME_WORDS)) | set(FRAME_WORDS)
    text = CITATION.sub(" ", text)
    words = []
    for t in tokenize([text])[0]:
        if t.isdigit():
            if len(t) >= 3:  # years and other long numbers are content; "1", "12" mostly not
                words.append(t)
        elif t and t not in _FRAME_STEMS:
            words.append(t)
    return words


def lexical_overlap(sentence_words: list[str], passage_words: set[str]) -> float:
    """The share of the sentence's distinct content words found in the passage."""
    words = set(sentence_words)
    if not words:
        return 0.0
    return len(words & passage_words) / len(words)


# --- citations and sentences ------------------------------------------------------

def citation_numbers(marker_body: str) -> list[int]:
    """'1, 2' -> [1, 2]; '2-4' -> [2, 3, 4] (short ranges only)."""
    numbers: list[int] = []
    body = marker_body
    for start, end in _RANGE.findall(body):
        a, b = int(start), int(end)
        if a <= b <= a + 10:
            numbers.extend(range(a, b + 1))
        else:
            numbers.extend([a, b])
    body = _RANGE.sub(" ", body)
    numbers.extend(int(n) for n in _NUMBER.findall(body))
    seen: list[int] = []
    for n in numbers:
        if n not in seen:
            seen.append(n)
    return seen


def cited_numbers(text: str) -> list[int]:
    """Every citation number in `text`, in order of first appearance."""
    found: list[int] = []
    for m in CITATION.finditer(text):
        for n in citation_numbers(m.group(1)):
            if n not in found:
                found.append(n)
    return found


def all_citation_markers(text: str) -> list[int]:
    """Every cited number, repeats included (for counting citation validity)."""
    return [n for m in CITATION.finditer(text) for n in citation_numbers(m.group(1))]


def strip_citations(text: str) -> str:
    text = CITATION.sub("", text)
    text = re.sub(r"\s+([.,;:!?])", r"\1", text)
    return re.sub(r"[ \t]{2,}", " ", text).strip()


@dataclass
class Sentence:
    """One sentence of a model's answer and what the check found."""

    text: str  # as written (citations normalised to [n])
    paragraph: int  # sentences of one paragraph or list item are joined with spaces
    cited: list[int] = field(default_factory=list)  # every number it cites, as written
    valid: list[int] = field(default_factory=list)  # those that point to a passage given
    invalid: list[int] = field(default_factory=list)  # invented numbers, removed
    kind: str = "claim"  # "claim", "connective", "pointer" ("This is stated in [1].") or "not-answered"
    words: int = 0  # content words
    support: float = 0.0  # best score over the valid cited passages
    lexical: float = 0.0
    cosine: float = 0.0
    best: int | None = None  # the cited passage number that supports it best
    named: bool = False  # cited no number but named a passage's author or title; the best such passage counts
    inherited: bool = False  # cited no number; takes those of its paragraph (or of "This is stated in [n].")
    found: bool = False  # cited nothing at all; the program found the given passage that supports it
    supported: bool = False
    attributed: bool = False  # names whose claim it is (or the program added it)
    attribution_added: str | None = None  # the prefix the program added
    final: str = ""  # as it stands in the checked answer; "" when left out
    list_marker: str = ""

    def to_dict(self) -> dict:
        return asdict(self)


def split_sentences(raw: str) -> list[Sentence]:
    """The answer's sentences; each paragraph or list item starts a new
    paragraph number. Citation markers that open a sentence go to the one
    before it."""
    sentences: list[Sentence] = []
    paragraph = -1
    for line in raw.replace("\r\n", "\n").split("\n"):
        if not line.strip():
            continue
        paragraph += 1
        marker = _LIST_MARKER.match(line)
        list_marker = marker.group(0).strip() if marker else ""
        body = line[marker.end():] if marker else line
        body = re.sub(r"[*_]{2,}", "", body).strip()  # markdown bold/italics markers
        pieces = _pieces(body, join_quotes=True)
        if pieces and _open_quote(pieces[-1]):
            pieces = _pieces(body, join_quotes=False)  # a quotation never closed: no quotation at all
        for i, piece in enumerate(pieces):
            sentences.append(Sentence(text=normalise_citations(piece), paragraph=paragraph,
                                      list_marker=list_marker if i == 0 else ""))
    return sentences


def _pieces(body: str, join_quotes: bool) -> list[str]:
    pieces: list[str] = []
    for piece in _SENTENCE_END.split(body):
        piece = piece.strip()
        if not piece:
            continue
        if pieces and (_ends_with_abbreviation(pieces[-1]) or (join_quotes and _open_quote(pieces[-1]))):
            pieces[-1] = f"{pieces[-1]} {piece}"
            continue
        leading = re.match(r"^((?:\s*\[[^\]]{1,40}\])+)\s*", piece)
        if leading and pieces and CITATION.search(leading.group(1)):
            pieces[-1] = f"{pieces[-1]} {leading.group(1).strip()}"
            piece = piece[leading.end():].strip()
            if not piece:
                continue
        pieces.append(piece)
    return pieces


def _open_quote(text: str) -> bool:
    """Whether `text` opens a quotation it does not close: the sentences of
    a quotation belong to the sentence that quotes (and cites) it."""
    return text.count("“") > text.count("”") or text.count('"') % 2 == 1 or text.count("«") > text.count("»")


def _ends_with_abbreviation(text: str) -> bool:
    last = text.split()[-1].lower() if text.split() else ""
    return last in _ABBREVIATIONS or bool(re.fullmatch(r"[A-Z]\.", text.split()[-1] if text.split() else ""))


def normalise_citations(text: str) -> str:
    """'[1, 2]' -> '[1][2]'; a marker is moved before the full stop it follows."""
    text = CITATION.sub(lambda m: "".join(f"[{n}]" for n in citation_numbers(m.group(1))), text)
    text = re.sub(r"([.!?])\s*((?:\[\d{1,3}\])+)\s*$", r" \2\1", text)
    return re.sub(r"\s+(\[\d)", r" \1", text).strip()


def keep_citations(text: str, keep: set[int]) -> str:
    """`text` with citation markers not in `keep` removed."""
    def replace(m):
        numbers = [n for n in citation_numbers(m.group(1)) if n in keep]
        return "".join(f"[{n}]" for n in numbers)

    text = CITATION.sub(replace, text)
    text = re.sub(r"\s+([.,;:!?])", r"\1", text)
    return re.sub(r"[ \t]{2,}", " ", text).strip()


# --- who says it -------------------------------------------------------------------

def speaker(hit) -> str:
    """How an answer names the author of a passage: a surname ("Engels"),
    two ("Marx and Engels"), a collective ("the Anarchist FAQ"), or the
    title when there is no author. A hit may name its speaker itself
    (`speaker_label`: a news item's outlet, "Reuters")."""
    if getattr(hit, "speaker_label", None):
        return hit.speaker_label
    names = [a for a in (getattr(hit, "authors", None) or []) if a and a.strip()]
    if not names and getattr(hit, "author", ""):
        names = [a.strip() for a in hit.author.split(";") if a.strip()]
    if not names:
        title = (getattr(hit, "title", "") or "the source").split(":")[0].strip()
        return f"“{title}”"
    return name_list([_name_label(n) for n in names])


def _name_label(name: str) -> str:
    words = name.split()
    if any(w.lower() in COLLECTIVE_WORDS for w in words) or len(words) > 4:
        kept = [w for w in words if w.lower() not in COLLECTIVE_WORDS]
        return "the " + " ".join(kept or words)
    return words[-1]


def name_keys(hit) -> set[str]:
    """Lower-case strings whose presence in a sentence names this passage's
    author or work: surnames, full names, a collective's distinctive words,
    the title (before any colon)."""
    keys: set[str] = set()
    if getattr(hit, "speaker_label", None):
        label = hit.speaker_label.lower()
        keys |= {label, label.removeprefix("the ")}
    names = [a for a in (getattr(hit, "authors", None) or []) if a and a.strip()]
    if not names and getattr(hit, "author", ""):
        names = [a.strip() for a in hit.author.split(";") if a.strip()]
    for name in names:
        words = name.split()
        keys.add(name.lower())
        if any(w.lower() in COLLECTIVE_WORDS for w in words) or len(words) > 4:
            keys |= {w.lower() for w in words if w.lower() not in COLLECTIVE_WORDS and len(w) >= 3}
        else:
            keys.add(words[-1].lower())
    title = (getattr(hit, "title", "") or "").strip()
    if title:
        keys.add(title.lower())
        main = title.split(":")[0].strip().lower()
        if len(main) >= 6:
            keys.add(main)
    return {k for k in keys if k}


def names_author(sentence: str, hits) -> bool:
    low = sentence.lower()
    for hit in hits:
        for key in name_keys(hit):
            if re.search(r"(?<!\w)" + re.escape(key) + r"(?!\w)", low):
                return True
    return False


def with_attribution(sentence: str, who: str, context: str = "") -> str:
    """'The state is ... [1].' -> 'According to Engels, the state is ... [1].'
    The first word keeps its capital only when `context` (the cited
    passages) writes it with one in the middle of a sentence, as names are."""
    first, _, rest = sentence.partition(" ")
    word = re.sub(r"\W+$", "", first)
    lowered = first
    if word[:1].isupper() and word[1:].islower() and word != "I":
        # A name is written with its capital in the middle of sentences too;
        # a common word ("Historically") only at their start.
        is_name = re.search(r"[a-z,;]\s+" + re.escape(word) + r"\b", context) and word.lower() not in _LOWERABLE
        if not is_name:
            lowered = first[:1].lower() + first[1:]
    return f"According to {who}, {lowered}{(' ' + rest) if rest else ''}"


_LOWERABLE = set("the a an this that these those it its there in on at for with by from as all some most many "
                 "each every no not one two three when while if after before during since because although "
                 "though however thus therefore so".split())


# --- scoring ------------------------------------------------------------------------

class SupportChecker:
    """Scores sentences against passages; see the module notes.

    `embedder`: the library's embedder (search.Searcher.index.embedder);
    None scores by words alone (then the lexical share is the score)."""

    def __init__(self, embedder=None, *, threshold: float = SUPPORT_THRESHOLD,
                 lexical_weight: float = LEXICAL_WEIGHT, min_claim_words: int = MIN_CLAIM_WORDS):
        self.embedder = embedder
        self.threshold = threshold
        self.lexical_weight = lexical_weight
        self.min_claim_words = min_claim_words

    def scores(self, sentences: list[str], passages: list[str], passage_vectors: np.ndarray | None = None,
               cross_language: np.ndarray | None = None):
        """(lexical, cosine, combined) matrices, sentences x passages.
        `cross_language[i, j]`: sentence i is in another language than
        passage j (the cosine alone counts there)."""
        n, m = len(sentences), len(passages)
        lexical = np.zeros((n, m))
        passage_words = [set(content_words(p)) for p in passages]
        for i, s in enumerate(sentences):
            words = content_words(s)
            for j in range(m):
                lexical[i, j] = lexical_overlap(words, passage_words[j])
        if self.embedder is None or n == 0 or m == 0:
            cosine = np.zeros((n, m))
            combined = lexical.copy()
        else:
            sv = self.embedder.encode_documents([strip_citations(s) for s in sentences])
            pv = passage_vectors if passage_vectors is not None else self.embedder.encode_documents(passages)
            cosine = np.clip(sv @ np.asarray(pv, dtype=np.float32).T, 0.0, 1.0)
            combined = self.lexical_weight * lexical + (1 - self.lexical_weight) * cosine
        if cross_language is not None and self.embedder is not None:
            combined = np.where(cross_language, cosine, combined)
        return lexical, cosine, combined

    def score(self, sentence: str, passage: str) -> float:
        """The support score of one sentence by one passage."""
        return float(self.scores([sentence], [passage])[2][0, 0])


@dataclass
class Checked:
    """An answer after the check."""

    sentences: list[Sentence]
    text: str  # the kept sentences, with valid citations only
    cited: list[int]  # passage numbers the checked text cites, in order
    invented: list[int]  # citation numbers that pointed to no passage
    supported: bool  # at least one supported claim, and only supported claims kept
    not_answered: bool  # the model said the sources do not answer, and claimed nothing supported


def check_answer(raw: str, passages, checker: SupportChecker, *, passage_vectors: np.ndarray | None = None,
                 answer_language: str | None = None) -> Checked:
    """Check a model's answer against the passages it was given (search
    Hits, numbered from 1): remove invented citations, score each sentence,
    leave out unsupported claims, and attribute the rest."""
    given = set(range(1, len(passages) + 1))
    sentences = split_sentences(raw)
    invented: list[int] = []
    for s in sentences:
        s.cited = cited_numbers(s.text)
        s.valid = [n for n in s.cited if n in given]
        s.invalid = [n for n in s.cited if n not in given]
        invented += [n for n in s.invalid if n not in invented]
        claim = strip_citations(s.text)
        s.words = len(set(content_words(claim)))
        if not s.valid and _NOT_ANSWERED.search(claim):
            s.kind = "not-answered"
        elif s.cited and _POINTER.match(claim) and len(claim.split()) <= 9:
            s.kind = "pointer"
        elif s.words == 0 or (not s.valid and claim.endswith(":") and len(claim.split()) <= 6
                              and s.words <= 2):
            s.kind = "connective"

    # "This is stated in [1]." gives its numbers to the sentence before it.
    for i, s in enumerate(sentences):
        if s.kind == "pointer" and i > 0 and sentences[i - 1].kind == "claim":
            before = sentences[i - 1]
            before.valid += [n for n in s.valid if n not in before.valid]
            before.cited += [n for n in s.cited if n not in before.cited]
            before.inherited = before.inherited or not any(n in cited_numbers(before.text) for n in s.valid)

    # A sentence that cites no number but names the author or title of given
    # passages ("Engels writes in The Condition of ...") cites those passages.
    for s in sentences:
        if s.kind == "claim" and not s.valid and passages:
            named = [n for n in given if names_author(s.text, [passages[n - 1]])]
            if named:
                s.valid, s.named = named, True

    cross = None
    if answer_language and passages:
        langs = [(getattr(p, "language", None) or answer_language) for p in passages]
        cross = np.array([lang != answer_language for lang in langs])

    def score(claims: list[Sentence]) -> None:
        if not claims or not passages:
            return
        lexical, cosine, combined = checker.scores(
            [strip_citations(s.text) for s in claims], [p.text for p in passages], passage_vectors,
            None if cross is None else np.tile(cross, (len(claims), 1)))
        for i, s in enumerate(claims):
            columns = [n - 1 for n in s.valid]
            best = max(columns, key=lambda j: combined[i, j])
            s.best = best + 1
            s.support = round(float(combined[i, best]), 4)
            s.lexical = round(float(lexical[i, best]), 4)
            s.cosine = round(float(cosine[i, best]), 4)
            s.supported = s.support >= checker.threshold and s.words >= checker.min_claim_words
            if s.named or s.inherited or s.found:
                s.valid = [s.best]  # the passage it is read as citing; written in below

    score([s for s in sentences if s.kind == "claim" and s.valid])

    # A claim without a number in a paragraph whose other claims cite (or
    # name their source): the citation at the end of the paragraph covers
    # it, or failing that the one before it.
    for i, s in enumerate(sentences):
        if s.kind == "claim" and not s.valid:
            same = [t for t in sentences if t.paragraph == s.paragraph and t.kind == "claim" and t.valid
                    and not t.inherited]
            after = [t for t in same if sentences.index(t) > i]
            source = after[0] if after else (same[-1] if same and sentences.index(same[-1]) < i else None)
            if source is not None:
                s.valid, s.inherited = list(source.valid), True
    score([s for s in sentences if s.kind == "claim" and s.inherited and s.best is None])

    # A claim still without a citation (small models often write a good
    # answer and cite nothing) gets the given passage that supports it best,
    # when that passage supports it clearly (FOUND_THRESHOLD, stricter than
    # the support threshold because the model did not point to it).
    uncited = [s for s in sentences if s.kind == "claim" and not s.valid and s.words >= checker.min_claim_words]
    if uncited and passages:
        _, _, combined = checker.scores([strip_citations(s.text) for s in uncited], [p.text for p in passages],
                                        passage_vectors,
                                        None if cross is None else np.tile(cross, (len(uncited), 1)))
        for i, s in enumerate(uncited):
            best = int(np.argmax(combined[i]))
            if combined[i, best] >= max(checker.threshold, FOUND_THRESHOLD):
                s.valid, s.found = [best + 1], True
        score([s for s in uncited if s.found])

    # Attribution, and the text that is kept.
    previous_speakers: set[str] | None = None
    previous_paragraph = None
    for s in sentences:
        if s.paragraph != previous_paragraph:
            previous_speakers, previous_paragraph = None, s.paragraph
        if s.kind in ("not-answered", "pointer") or (s.kind == "claim" and not s.supported):
            continue  # "not answered" is said separately below, if nothing else is kept
        text = keep_citations(s.text, given)
        if s.kind == "claim":
            written = cited_numbers(text)
            missing = [n for n in s.valid if n not in written]
            if missing:
                markers = "".join(f"[{n}]" for n in missing)
                text = re.sub(r"\s*([.!?]?[\"”’]?)$", lambda m: f" {markers}{m.group(1)}", text, count=1)
            cited_hits = [passages[n - 1] for n in s.valid]
            text = name_the_passage(text, passages)
            speakers = {speaker(h) for h in cited_hits}
            if names_author(text, cited_hits):
                s.attributed = True
            elif previous_speakers and speakers <= previous_speakers:
                # It goes on citing the speaker the sentence before it in
                # this paragraph named: "According to Engels, A [1]. B [1]."
                # reads as Engels's A and B; a prefix on each would not.
                s.attributed = True
            else:
                who = speaker(passages[s.best - 1])
                s.attribution_added = f"According to {who}, "
                text = with_attribution(text, who, " ".join(" ".join(h.text.split()) for h in cited_hits))
                s.attributed = True
            previous_speakers = speakers
        s.final = text
    kept = [s for s in sentences if s.final]
    has_claim = any(s.kind == "claim" for s in kept)
    if not has_claim:
        for s in kept:
            s.final = ""
        kept = []
    cited: list[int] = []
    for s in kept:
        for n in cited_numbers(s.final):
            if n not in cited:
                cited.append(n)
    return Checked(sentences=sentences, text=join_sentences(kept), cited=cited, invented=invented,
                   supported=has_claim,
                   not_answered=not has_claim and any(s.kind == "not-answered" for s in sentences))


_POINTER = re.compile(
    r"^\(?\s*(?:this|that|these|it|see|as|cf\.?|sources?|passages?)\b.*\b(?:stated|said|mentioned|made|found|given|"
    r"described|explained|discussed|noted|written|cited|supported|see|seen|taken|quoted|comes?|shown|according)\b",
    re.IGNORECASE)
_PASSAGE_SUBJECT = re.compile(
    r"^(?:the\s+)?(?:passage|source|text)\s*((?:\[\d{1,3}\])+)\s*(?:also\s+|further\s+)?"
    r"(states|says|notes|argues|explains|claims|mentions|describes|adds|suggests|emphasi[sz]es|provides|"
    r"elaborates|shows|writes|points\s+out|highlights)\b", re.IGNORECASE)


def name_the_passage(text: str, passages) -> str:
    """'The passage [2] states that ...' -> 'Engels states that ... [2]'."""
    m = _PASSAGE_SUBJECT.match(text)
    if not m:
        return text
    numbers = cited_numbers(m.group(1))
    if not numbers or not all(1 <= n <= len(passages) for n in numbers):
        return text
    who = speaker(passages[numbers[0] - 1])
    rest = text[m.end():]
    markers = "".join(f"[{n}]" for n in numbers if f"[{n}]" not in rest)
    text = f"{who} {m.group(2).lower()}{rest}"
    if markers:
        text = re.sub(r"\s*([.!?]?[\"”’]?)$", lambda mm: f" {markers}{mm.group(1)}", text, count=1)
    return text


def join_sentences(sentences: list[Sentence]) -> str:
    lines: list[str] = []
    paragraph = None
    for s in sentences:
        if s.paragraph != paragraph:
            lines.append((s.list_marker + " " if s.list_marker else "") + s.final)
            paragraph = s.paragraph
        else:
            lines[-1] += " " + s.final
    return "\n".join(lines)


def best_quote(passage_text: str, sentences: list[str], limit: int = 300) -> str:
    """The sentence of the passage that shares most content words with the
    sentences citing it (the passage's opening when none do), cut to `limit`."""
    parts = [p.strip() for p in re.split(r"(?<=[.!?;])\s+", " ".join(passage_text.split())) if p.strip()]
    if not parts:
        return ""
    wanted = set()
    for s in sentences:
        wanted |= set(content_words(s))
    best = max(parts, key=lambda p: (len(set(content_words(p)) & wanted), -parts.index(p))) if wanted else parts[0]
    return best if len(best) <= limit else best[:limit].rsplit(" ", 1)[0] + " …"
