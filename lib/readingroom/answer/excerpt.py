"""What of a passage the answer model is given: the sentences that bear on
the question, with their neighbours, instead of the whole passage.

On 2 cores the default model reads its prompt at about 63 tokens a second,
and five whole passages are most of a 1,400-token prompt: the reader waits
~22 s before the first word. An excerpt keeps, within EXCERPT_CHARS
characters of each passage:

1. the passage's sentences (text.sentence_spans, the one splitter) that
   share the most content words with the question (text.content_words:
   stop words out, Snowball-stemmed in the passage's language, so a German
   passage is read with German stems), best first;
2. around each such sentence, its neighbour before and after (a claim's
   subject or its "because" is often next door), as long as they fit;
3. when no sentence shares a word with the question (the passage was found
   by meaning alone), the passage's first sentences.

Kept sentences are shown in passage order; runs that are not adjacent are
joined with " … ", and a cut start or end is marked with "…" too, so the
model knows it reads an extract. A passage of at most EXCERPT_CHARS stays
whole. Every kept piece is an exact span of the passage's text, so the
check (which reads the whole passage) and the anchored check's quote
locating (quotes.py) work on excerpts as on whole passages.

Why word overlap and not MiniLM: it costs well under a millisecond a
passage and needs no model in this layer; the neighbours recover much of
what a paraphrased question misses. Vectors per sentence were not measured.

Measured against whole passages (bench/answer_rates.py --context whole
excerpt, 20 questions, default model, load 5-10 on 2 cores): prompts 0.72
as long, the first word after 0.71 of the time, whole answers in 0.56;
answered, gold cited and abstention the same within noise, answers shorter.
"""
from __future__ import annotations

from dataclasses import dataclass

from readingroom.text import content_words, sentence_spans

EXCERPT_CHARS = 500   # per passage (about 125 tokens; the median passage has ~900 characters)
NEIGHBOURS = 1        # sentences kept on each side of a relevant one
GAP = " … "           # between runs of kept sentences that are not adjacent
CUT = "…"             # before a first run that does not start the passage, after a last that does not end it


@dataclass(frozen=True)
class Excerpt:
    """The part of a passage given to the model: `spans` are (start, end)
    character spans of `passage` (its sentences kept, adjacent ones merged
    into runs), in passage order."""
    passage: str
    spans: tuple[tuple[int, int], ...]
    whole: bool  # the passage was short enough to keep as it is

    @property
    def runs(self) -> list[str]:
        """The kept pieces of the passage, its own characters."""
        return [self.passage[start:end] for start, end in self.spans]

    @property
    def text(self) -> str:
        if self.whole:
            return self.passage
        text = GAP.join(self.runs)
        if self.spans and self.passage[:self.spans[0][0]].strip():
            text = CUT + " " + text
        if self.spans and self.passage[self.spans[-1][1]:].strip():
            text = text + " " + CUT
        return text


def excerpt(passage: str, question: str, language: str | None = "en", *,
            limit: int = EXCERPT_CHARS, neighbours: int = NEIGHBOURS) -> Excerpt:
    """The sentences of `passage` (in `language`) most about `question`, with
    their `neighbours`, within `limit` characters (see the module notes)."""
    text = passage.rstrip()
    if len(text) <= limit:
        return Excerpt(passage, ((0, len(text)),) if text else (), True)
    spans = sentence_spans(text)
    if len(spans) <= 1:
        return Excerpt(passage, ((0, len(text)),), True)
    asked = set(content_words(question, language))
    overlap = [len(asked & set(content_words(text[s:e], language))) for s, e in spans]
    # Best first; among equals, the earlier (a passage states its point before elaborating).
    order = sorted((i for i in range(len(spans)) if overlap[i]), key=lambda i: (-overlap[i], i))
    if not order:
        order = list(range(len(spans)))  # found by meaning alone: the start, as far as it fits
        neighbours = 0

    kept: set[int] = set()
    used = 0

    def keep(i: int) -> bool:
        nonlocal used
        if i in kept or not 0 <= i < len(spans):
            return True
        size = spans[i][1] - spans[i][0] + len(GAP)
        if kept and used + size > limit:
            return False
        kept.add(i)  # the first sentence is kept whatever its length: an excerpt is never empty
        used += size
        return True

    for i in order:
        if not keep(i):
            if used >= limit:
                break
            continue  # a shorter sentence further down may still fit
        for step in range(1, neighbours + 1):
            keep(i - step)
            keep(i + step)
    return Excerpt(passage, tuple(_runs(sorted(kept), spans)), False)


def _runs(indices: list[int], spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Adjacent sentences merged into one span (the space between them kept)."""
    runs: list[tuple[int, int]] = []
    last = None
    for i in indices:
        if last is not None and i == last + 1:
            runs[-1] = (runs[-1][0], spans[i][1])
        else:
            runs.append(spans[i])
        last = i
    return runs
