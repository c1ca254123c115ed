"""The reading guide: what the text argues, section by section, each point
with its checked quote and [n]; it ends with the key passages to read aloud.

The key passages are not the model's choice but the guide's own evidence:
the passages its verified points quote most, each given as the whole
sentences around the quoted words, so they can be read aloud as they stand.
"""
from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, replace

from readingroom.study.core import BATCH, AidSpec, Item, Quote, lowest_probability, string, text_field

READ_ALOUD = 3
READ_ALOUD_CHARS = 700
READ_ALOUD_MIN = 250  # a passage to read aloud is a few sentences, not a line


@dataclass(frozen=True, kw_only=True)
class GuidePoint(Item):
    point: str

    def rows(self):
        return [("Point", self.point)]


class GuideSpec(AidSpec):
    kind = "guide"
    title = "Reading guide"
    instructions = ("List the main points the text argues in these passages, in the order it makes "
                    "them. \"point\" is one plain sentence saying what the text argues; name who says "
                    "it when it is someone's view.")
    properties = {"point": string(300)}
    max_items = 3

    def batches(self, material):
        """Section by section: a section's passages, BATCH at a time, under its heading."""
        out = []
        for section, passages in material.sections():
            for i in range(0, len(passages), BATCH):
                out.append((section.rsplit(" › ", 1)[-1], passages[i:i + BATCH]))
        return out

    def statements(self, draft):
        return [text_field(draft, "point")]

    def make_item(self, draft, quote, verdicts, wrong, also, group, material):
        return GuidePoint(quote=quote, group=group, probability=lowest_probability(verdicts),
                          point=text_field(draft, "point"))

    def finish(self, aid, lib):
        counts = Counter(item.quote.n for item in aid.items)
        firsts = {}
        for item in aid.items:
            firsts.setdefault(item.quote.n, item.quote)
        best = sorted(counts, key=lambda n: (-counts[n], n))[:READ_ALOUD]
        aid.read_aloud = [whole_sentences(aid.material.passage(n).text, firsts[n]) for n in sorted(best)]


_SENTENCE_END = re.compile(r"[.!?][\"'”’»)\]]*\s")


def whole_sentences(text: str, quote: Quote, limit: int = READ_ALOUD_CHARS) -> Quote:
    """The quote widened to the sentences it stands in, then by the
    sentences after it while it is shorter than READ_ALOUD_MIN (at most
    `limit` characters; the quote alone when its own sentences are longer)."""
    ends = [m.end() for m in _SENTENCE_END.finditer(text)] + [len(text)]
    start = max([0] + [e for e in ends if e <= quote.start])
    end = min(e for e in ends if e >= quote.end)
    if end - start > limit:
        return quote
    for later in (e for e in ends if e > end):
        if end - start >= READ_ALOUD_MIN or later - start > limit:
            break
        end = later
    chunk = text[start:end]
    start, end = start + len(chunk) - len(chunk.lstrip()), start + len(chunk.rstrip())
    return replace(quote, text=text[start:end], start=start, end=end)
