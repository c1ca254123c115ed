"""Finding a claim's quote in its passage, to the character.

A model asked to quote a passage copies it imperfectly: other quote marks,
other dashes, a line-end hyphen joined, a word's case, an `_emphasis_` mark
dropped, white space changed. Those differences are ignored (the tolerance,
stated once here): the quote and the passage are compared in a normal form
in which

- letters are case-folded and NFKC-normalised (ligatures, full-width forms);
- every quote mark is ' or ", every dash or minus is -;
- a word broken by a hyphen at a line end is joined ("soci-\\nety" = "society");
- emphasis marks (_ and *) are dropped;
- every run of white space is one space.

A quote found in that form is *verified*: its span in the original passage
is kept, so a reader is shown the passage's own words. A quote not found is
*repaired* to the passage's closest span when that is unambiguous: at least
MIN_SIMILARITY similar (rapidfuzz's ratio against a span of whole words,
0-100) and no other place in the passage within AMBIGUITY points of it. Otherwise the quote is
not in the passage and the claim it carries is left out.
"""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from rapidfuzz import fuzz

MIN_SIMILARITY = 90.0
AMBIGUITY = 3.0
MIN_QUOTE_WORDS = 3  # "the state" is everywhere: a quote must say something

_QUOTES = {c: "'" for c in "\u2018\u2019\u201a\u201b\u2032\u0060\u00b4"}
_QUOTES.update({c: '"' for c in "\u201c\u201d\u201e\u201f\u00ab\u00bb\u2033\u301d\u301e"})
_DASHES = {c: "-" for c in "\u2010\u2011\u2012\u2013\u2014\u2015\u2212\ufe58\ufe63\uff0d"}
_DROPPED = set("_*\u00ad")  # emphasis marks and the soft hyphen
_LINE_END_HYPHEN = re.compile(r"(?<=\w)-[ \t]*\r?\n[ \t]*(?=\w)")


@dataclass(frozen=True)
class QuoteSpan:
    """Where a quote stands in its passage: `passage_text[start:end]`."""
    start: int
    end: int
    similarity: float  # 100.0 when found in the normal form, else the repair's ratio
    repaired: bool     # True when the model's words were replaced by the passage's


def normal_form(text: str) -> tuple[str, list[int]]:
    """`text` in the normal form above, and for each of its characters the
    offset of the original character it came from."""
    out: list[str] = []
    origin: list[int] = []
    joined = {m.start(): m.end() for m in _LINE_END_HYPHEN.finditer(text)}
    i, n = 0, len(text)
    while i < n:
        if i in joined:  # a hyphenated line break: skip the hyphen and the break
            i = joined[i]
            continue
        char = text[i]
        if char in _DROPPED:
            i += 1
            continue
        if char.isspace():
            if out and out[-1] != " ":
                out.append(" ")
                origin.append(i)
            i += 1
            continue
        char = _QUOTES.get(char) or _DASHES.get(char) or char
        for piece in unicodedata.normalize("NFKC", char).casefold():
            out.append(_QUOTES.get(piece) or _DASHES.get(piece) or piece)
            origin.append(i)
        i += 1
    while out and out[-1] == " ":
        out.pop()
        origin.pop()
    return "".join(out), origin


def _to_original(origin: list[int], start: int, end: int) -> tuple[int, int]:
    """A span of the normal form as a span of the original text."""
    return origin[start], origin[end - 1] + 1


def _windows(needle: str, hay: str):
    """Every span of whole words of `hay` whose length is within a quarter
    of the needle's, with its similarity to the needle (0-100)."""
    starts = [m.start() for m in re.finditer(r"\S+", hay)]
    ends = [m.end() for m in re.finditer(r"\S+", hay)]
    low, high = 0.75 * len(needle), 1.25 * len(needle)
    for start in starts:
        for end in ends:
            if end - start < low:
                continue
            if end - start > high:
                break
            yield fuzz.ratio(needle, hay[start:end]), start, end


def locate_quote(quote: str, passage: str) -> QuoteSpan | None:
    """The span of `passage` that `quote` quotes, or None when it quotes
    nothing there (or too little to tell, or two places equally well)."""
    needle, _ = normal_form(quote.strip().strip("\"'\u201c\u201d\u2018\u2019 "))
    if len(needle.split()) < MIN_QUOTE_WORDS:
        return None
    hay, origin = normal_form(passage)
    at = hay.find(needle)
    if at >= 0:
        start, end = _to_original(origin, at, at + len(needle))
        return QuoteSpan(start, end, 100.0, repaired=False)
    ranked = sorted(_windows(needle, hay), reverse=True)
    if not ranked or ranked[0][0] < MIN_SIMILARITY:
        return None
    score, start, end = ranked[0]
    # Unambiguous only if no place that does not overlap the best comes close.
    for other, other_start, other_end in ranked[1:]:
        if other < score - AMBIGUITY:
            break
        if other_end <= start or other_start >= end:
            return None
    start, end = _to_original(origin, start, end)
    return QuoteSpan(start, end, float(score), repaired=True)
