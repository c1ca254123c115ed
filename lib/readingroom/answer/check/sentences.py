"""A model's answer as sentences: one immutable record per sentence.

The answer is split into sentences (list items and paragraphs too) by the
one splitter (readingroom.text), a quotation kept whole with the sentence
that quotes it; citation markers written after a full stop ("... state.
[1]") go with the sentence before them, unless the sentence goes on from
them ("[1] and [2] argue that ..."), and are normalised ("[1, 2]" ->
"[1][2]"). What the check finds is added by making new records
(`dataclasses.replace`), never by changing one.
"""
from __future__ import annotations

import re
from dataclasses import asdict, dataclass

from readingroom.answer.check.citations import CITATION, normalise_citations
from readingroom.text import opens_quote, sentence_spans

_LIST_MARKER = re.compile(r"^\s*(?:[-*•]|\d{1,2}[.)])\s+")
_LEADING_MARKERS = re.compile(r"^((?:\s*\[[^\]]{1,40}\])+)\s*")


@dataclass(frozen=True)
class Sentence:
    """One sentence of a model's answer and what the check found."""

    text: str  # as written (citations normalised to [n])
    paragraph: int  # sentences of one paragraph or list item are joined with spaces
    cited: tuple[int, ...] = ()  # every number it cites, as written
    valid: tuple[int, ...] = ()  # those that point to a passage given
    invalid: tuple[int, ...] = ()  # invented numbers, removed
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
    misattributed: str | None = None  # names this speaker, whom the passages it cites neither are by nor name; left out
    repeats: int | None = None  # says again what the answer's sentence number `repeats` (1-based) said; left out
    meaning: float | None = None  # the judge's probability that its best passage says it (None: not judged)
    meaning_doubted: bool = False  # the words matched but the judge did not find the claim in the passage; left out
    attributed: bool = False  # names whose claim it is (or the program added it)
    attribution_added: str | None = None  # the prefix the program added
    attributed_to: str | None = None  # whom the program's prefix names
    body: str = ""  # the kept sentence before any prefix the program added
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
        for i, piece in enumerate(_pieces(body)):
            sentences.append(Sentence(text=normalise_citations(piece), paragraph=paragraph,
                                      list_marker=list_marker if i == 0 else ""))
    return sentences


def _pieces(body: str) -> list[str]:
    pieces: list[str] = []
    for start, end in sentence_spans(body, join_quotes=True):
        piece = body[start:end].strip()
        leading = _LEADING_MARKERS.match(piece)
        rest = piece[leading.end():] if leading else ""
        # "... state. [1] Engels saw ..." : [1] closes the sentence before;
        # "... state. [1] and [2] argue ..." : the markers are this one's subject.
        subject = rest[:1].islower() or rest[:1] in ",;"
        if leading and pieces and CITATION.search(leading.group(1)) and not subject:
            pieces[-1] = f"{pieces[-1]} {leading.group(1).strip()}"
            piece = piece[leading.end():].strip()
        if piece:
            pieces.append(piece)
    return pieces


def join_sentences(sentences) -> str:
    """The kept sentences' final text, a paragraph a line, list markers kept."""
    lines: list[str] = []
    paragraph = None
    for s in sentences:
        if s.paragraph != paragraph:
            lines.append((s.list_marker + " " if s.list_marker else "") + s.final)
            paragraph = s.paragraph
        else:
            lines[-1] += " " + s.final
    return "\n".join(lines)


__all__ = ["Sentence", "split_sentences", "join_sentences", "opens_quote"]
