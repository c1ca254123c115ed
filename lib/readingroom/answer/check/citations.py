"""Citation markers in a model's answer: read, normalised, counted, removed.

"[1, 2]", "[1-3]", "[Passage 2]", "[^2]" and "[1][2]" are all read as
citations and written back as "[1][2]". A number that points to no passage
given is an invented citation: `keep_citations` removes it.
"""
from __future__ import annotations

import re

from readingroom.text import REFERENCE_MARKER

CITATION = REFERENCE_MARKER
_NUMBER = re.compile(r"\d{1,3}")
_RANGE = re.compile(r"(\d{1,3})\s*[–-]\s*(\d{1,3})")


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
    return list(dict.fromkeys(numbers))


def cited_numbers(text: str) -> list[int]:
    """Every citation number in `text`, in order of first appearance."""
    return list(dict.fromkeys(all_citation_markers(text)))


def all_citation_markers(text: str) -> list[int]:
    """Every cited number, repeats included (for counting citation validity)."""
    return [n for m in CITATION.finditer(text) for n in citation_numbers(m.group(1))]


def count_markers(raw: str, given: int) -> tuple[int, int]:
    """(citation markers in raw, of which point to a passage given)."""
    markers = all_citation_markers(raw)
    return len(markers), sum(1 for n in markers if 1 <= n <= given)


def _tidy(text: str) -> str:
    """Space left before punctuation, and runs of spaces, by a removed marker."""
    text = re.sub(r"\s+([.,;:!?])", r"\1", text)
    return re.sub(r"[ \t]{2,}", " ", text).strip()


def strip_citations(text: str) -> str:
    return _tidy(CITATION.sub("", text))


def keep_citations(text: str, keep: set[int]) -> str:
    """`text` with citation markers not in `keep` removed."""
    def replace(m):
        return markers([n for n in citation_numbers(m.group(1)) if n in keep])

    return _tidy(CITATION.sub(replace, text))


def markers(numbers) -> str:
    """[1, 2] -> '[1][2]'."""
    return "".join(f"[{n}]" for n in numbers)


def normalise_citations(text: str) -> str:
    """'[1, 2]' -> '[1][2]'; a marker is moved before the full stop it follows."""
    text = CITATION.sub(lambda m: markers(citation_numbers(m.group(1))), text)
    text = re.sub(r"([.!?])\s*((?:\[\d{1,3}\])+)\s*$", r" \2\1", text)
    return re.sub(r"\s+(\[\d)", r" \1", text).strip()


def append_markers(text: str, numbers) -> str:
    """`text` with the markers of `numbers` written before its closing
    punctuation: 'The state falls.' -> 'The state falls [2].'"""
    written = markers(numbers)
    if not written:
        return text
    return re.sub(r"\s*([.!?]?[\"”’]?)$", lambda m: f" {written}{m.group(1)}", text, count=1)


def defuse_markers(text: str) -> str:
    """Passage text shown next to an answer, with "[9]" written "(9)", so
    that text quoted from a passage is never read as one of the answer's
    citation markers."""
    return re.sub(r"\[(\s*(?:\^|passage\s*|source\s*)?\d{1,3}(?:\s*[,;–-]\s*\d{1,3})*\s*)\]", r"(\1)", text,
                  flags=re.IGNORECASE)
