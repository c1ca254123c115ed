"""Telling a claim that repeats an earlier claim of the same answer.

A small writer repeats itself: Qwen2.5-Coder-0.5B wrote "Trotskyism saw the
party as having the real power in society." five times over one quote. A
repeat tells the reader nothing new and costs a judge's call, so it is left
out before the judge, with the number of the claim it repeats.

A claim repeats claim k when claim k was kept and their texts say nearly
the same (below), whatever passages they cite: the reader has that claim
already. Qwen2.5-Coder-1.5B wrote one sentence four times over four
passages, each with another quote, and the judge kept two of them.

It also repeats claim k, kept or not, when both hold:

- **the same words of the same passage**: its quote's span and claim k's lie
  in the same passage and overlap by at least MIN_SPAN_OVERLAP of the
  shorter span (one quote stands almost wholly inside the other);
- **nearly the same text**: rapidfuzz's ratio of the two claims' texts
  (lower-cased, punctuation dropped) is at least MIN_TEXT_SIMILARITY, and
  they hold the same negations and the same numbers.

Why ratio ≥ 90 and not token_set_ratio: token_set_ratio scores 100 whenever
one claim's words are a subset of the other's, so "The Commune lasted
seventy-two days and abolished night work" would count as a repeat of "The
Commune lasted seventy-two days" and its news be lost; it also scores 89 for
"wanted Article 45 abolished" against "wanted to keep Article 45". The
plain ratio at 90 lets through about one changed word in ten (an article,
"Paris Commune" for "Commune": 92) and nothing that adds a clause (65). A
changed "not" or number can stay above 90 in a long sentence, hence the
two exact conditions: those change what a claim says.

Claim k is an earlier claim that reached the judge (kept, or judged not
supported): a repeat of a rejected claim, over the same words, would get the
same verdict, and judging it again is the time this saves. A claim whose
quote was not found, or that was itself a repeat, is never claim k.
"""
from __future__ import annotations

import re
from collections.abc import Sequence

from rapidfuzz import fuzz, utils

MIN_SPAN_OVERLAP = 0.8
MIN_TEXT_SIMILARITY = 90.0

_NEGATIONS = {"not", "no", "never", "nor", "neither", "none", "nothing", "nobody", "without", "cannot"}
_NUMBER = re.compile(r"\d[\d,.]*")


def span_overlap(a, b) -> float:
    """How much of the shorter of two spans (start, end attributes) lies in both, 0-1."""
    shorter = min(a.end - a.start, b.end - b.start)
    if shorter <= 0:
        return 0.0
    return max(0, min(a.end, b.end) - max(a.start, b.start)) / shorter


def _what_changes_meaning(text: str) -> tuple[frozenset, tuple]:
    words = re.findall(r"[a-z']+", text.lower())
    negations = frozenset(w for w in words if w in _NEGATIONS or w.endswith("n't"))
    return negations, tuple(n.rstrip(".,") for n in _NUMBER.findall(text))


def same_text(a: str, b: str) -> bool:
    """Whether two claims' texts say nearly the same (see the module notes)."""
    if fuzz.ratio(a, b, processor=utils.default_process) < MIN_TEXT_SIMILARITY:
        return False
    return _what_changes_meaning(a) == _what_changes_meaning(b)


def repeated_claim(passage: int, span, text: str, earlier: Sequence) -> int | None:
    """The 1-based number among `earlier` (CheckedClaims, in order) of the
    claim that a claim on `passage`, quoting `span`, saying `text`, repeats;
    None when it repeats none."""
    for k, claim in enumerate(earlier, start=1):
        if claim.kept and same_text(text, claim.draft.text):
            return k
        judged = claim.kept or claim.support is not None
        if not judged or claim.span is None or claim.passage != passage:
            continue
        if span_overlap(span, claim.span) >= MIN_SPAN_OVERLAP and same_text(text, claim.draft.text):
            return k
    return None
