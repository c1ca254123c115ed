"""Cut a Document into passages: the units that are searched, cited and shown.

Passages follow the text's own structure. Consecutive paragraphs of one
section are packed together up to a token budget; a section boundary always
ends a passage (a question of the FAQ, a chapter of a book). A paragraph
longer than the budget is cut between sentences, and only a sentence longer
than the budget is cut between words. Each new passage within a section
starts with the last sentences of the previous one (the overlap), so an idea
that straddles the cut is whole in at least one passage.

Every passage is an exact span of the document's text: passage.text ==
document.text[char_start:char_end]. Its id is derived from the document id
and its own text, so unchanged passages keep their ids when a document is
edited elsewhere, and embeddings cached for them stay valid.
"""
from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

from readingroom.corpus.document import Document, sha256_hex

SPLITTER_VERSION = "1"

# Tokens are counted as words plus punctuation marks: about 0.8 of the
# WordPiece tokens a BERT-style embedder sees on English prose, so a 200-token
# passage stays inside MiniLM's 256 limit. Words are counted by their
# separators (readers collapse runs of whitespace), which runs several times
# faster than a regex tokenizer: ingestion speed is bound by this count.
PUNCTUATION_RE = re.compile(r"[.,;:!?\"'()\[\]\-\u2013\u2014\u201c\u201d\u2018\u2019\u00ab\u00bb\u2026/]")
# Where a cut between words has to be made, it is made at these tokens.
TOKEN_RE = re.compile(r"\w+|[^\w\s]")

# A sentence ends at . ! ? or … (with closing quotes or brackets after it),
# followed by space and something that can start a sentence.
SENTENCE_END_RE = re.compile(r"[.!?…]+[\"'”’»)\]]*\s+(?=[\"'“‘«(\[¿¡]*[^\W_a-z])")
# Words after which a period does not end a sentence.
ABBREVIATIONS = frozenset(
    """mr mrs ms dr prof st mt sr jr vol vols p pp ch chap cf e.g i.e etc
    no nos ed eds trans fig op cit ibid viz vs esp approx dept gen gov col capt
    lt rev hon jan feb mar apr jun jul aug sep sept oct nov dec""".split()
)


def count_tokens(text: str) -> int:
    if "  " in text or "\n" in text or "\t" in text or text[:1].isspace() or text[-1:].isspace():
        words = len(text.split())  # the slow, exact way, for text with runs of space
    else:
        words = text.count(" ") + 1 if text else 0
    return words + len(PUNCTUATION_RE.findall(text))


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of each sentence of `text`, trailing space excluded."""
    spans, start = [], 0
    for m in SENTENCE_END_RE.finditer(text):
        # The word before the period: an abbreviation or an initial ("J. S.
        # Mill") does not end the sentence.
        word = text[max(start, m.start() - 12): m.start()].rsplit(None, 1)[-1:] or [""]
        word = word[0].lstrip("([\"'“‘").lower()
        if text[m.start()] == "." and (word in ABBREVIATIONS or (len(word) == 1 and word.isalpha())):
            continue
        end = m.end() - (len(m.group()) - len(m.group().rstrip()))
        spans.append((start, end))
        start = m.end()
    if start < len(text):
        end = len(text.rstrip())
        if end > start:
            spans.append((start, end))
    return spans


@dataclass(frozen=True)
class Passage:
    passage_id: str
    doc_id: str
    ordinal: int
    section: tuple[str, ...]
    anchor: str | None
    char_start: int
    char_end: int
    text: str
    n_tokens: int
    citation: str
    page_start: int | None = None
    page_end: int | None = None
    para_start: int | None = None
    para_end: int | None = None


@dataclass(frozen=True)
class _Unit:
    """A piece that is never cut: a paragraph, a sentence, or a word run."""

    start: int
    end: int
    n_tokens: int
    block: int


@dataclass(frozen=True)
class Splitter:
    budget: int = 200  # tokens per passage, at most
    overlap: int = 40  # tokens carried over from the previous passage, at most

    def __post_init__(self):
        if self.budget < 16:
            raise ValueError(f"passage budget must be at least 16 tokens, got {self.budget}")
        if not 0 <= self.overlap < self.budget // 2:
            raise ValueError(f"overlap must be between 0 and half the budget, got {self.overlap}")

    @property
    def signature(self) -> str:
        return f"splitter={SPLITTER_VERSION};budget={self.budget};overlap={self.overlap}"

    def split(self, doc: Document) -> list[Passage]:
        text, spans = doc.text, doc.block_spans()
        units = [u for i, span in enumerate(spans) for u in self._units(text, span, i)]
        groups: list[list[_Unit]] = []
        for u in units:
            if groups and doc.blocks[groups[-1][-1].block].section == doc.blocks[u.block].section:
                groups[-1].append(u)
            else:
                groups.append([u])
        runs = [run for group in groups for run in self._pack(group)]
        numbers, section_sizes = _paragraph_numbers(doc)
        # A paragraph cut into several passages: each piece says which part it is.
        pieces = Counter(run[0].block for run in runs if run[0].block == run[-1].block)
        done: Counter = Counter()
        head = citation_head(doc)
        passages: list[Passage] = []
        seen: dict[str, int] = {}
        for run in runs:
            first, last = run[0].block, run[-1].block
            part = None
            if first == last and pieces[first] > 1:
                done[first] += 1
                part = (done[first], pieces[first])
            paragraphs = (numbers[first], numbers[last], section_sizes[first] == 1)
            passages.append(_make_passage(doc, head, text, run, len(passages), paragraphs, part, seen))
        return passages

    def _units(self, text: str, span: tuple[int, int], block: int) -> list[_Unit]:
        start, end = span
        n = count_tokens(text[start:end])
        if n <= self.budget:
            return [_Unit(start, end, n, block)] if n else []
        units = []
        for s, e in sentence_spans(text[start:end]):
            s, e = start + s, start + e
            n = count_tokens(text[s:e])
            if n <= self.budget:
                units.append(_Unit(s, e, n, block))
            else:
                units.extend(self._word_runs(text, s, e, block))
        return units

    def _word_runs(self, text: str, start: int, end: int, block: int) -> list[_Unit]:
        """The last resort for a sentence longer than the budget: cut it into
        runs of `budget` tokens, at token boundaries."""
        tokens = [(m.start(), m.end()) for m in TOKEN_RE.finditer(text, start, end)]
        units, i = [], 0
        while i < len(tokens):
            step = self.budget
            while True:  # the two counts differ a little ('. . .'): shrink until it fits
                s, e = tokens[i][0], tokens[min(i + step, len(tokens)) - 1][1]
                n = count_tokens(text[s:e])
                if n <= self.budget or step == 1:
                    break
                step = max(1, step * 4 // 5)
            units.append(_Unit(s, e, n, block))
            i += step
        return units

    def _pack(self, group: list[_Unit]) -> list[list[_Unit]]:
        runs, current, tokens = [], [], 0
        for u in group:
            if current and tokens + u.n_tokens > self.budget:
                runs.append(current)
                tail, tail_tokens = [], 0
                for v in reversed(current):
                    if tail_tokens + v.n_tokens > self.overlap:
                        break
                    tail.insert(0, v)
                    tail_tokens += v.n_tokens
                if tail_tokens + u.n_tokens > self.budget:
                    tail, tail_tokens = [], 0
                current, tokens = tail, tail_tokens
            current.append(u)
            tokens += u.n_tokens
        if current:
            runs.append(current)
        return runs


def _paragraph_numbers(doc: Document) -> tuple[list[int], list[int]]:
    """For each block, its ¶ number (1-based place within its section) and
    the number of paragraphs in that section."""
    numbers, previous, n = [], None, 0
    for b in doc.blocks:
        n = n + 1 if b.section == previous else 1
        previous = b.section
        numbers.append(n)
    sizes, size = [0] * len(numbers), 0
    for i in range(len(numbers) - 1, -1, -1):  # walk back: a section's size is its last number
        size = numbers[i] if i == len(numbers) - 1 or numbers[i + 1] == 1 else size
        sizes[i] = size
    return numbers, sizes


def _make_passage(doc, head, text, run, ordinal, paragraphs, part, seen) -> Passage:
    start, end = run[0].start, run[-1].end
    passage_text = text[start:end]
    first, last = doc.blocks[run[0].block], doc.blocks[run[-1].block]
    # The same text twice in one document (a refrain, a repeated heading)
    # gets distinct ids by counting its occurrences.
    occurrence = seen.get(passage_text, 0)
    seen[passage_text] = occurrence + 1
    anchor = next((doc.blocks[u.block].anchor for u in run if doc.blocks[u.block].anchor), None)
    para_start, para_end, sole_paragraph = paragraphs
    if first.page is not None:
        where = f"p. {first.page}" if last.page in (None, first.page) else f"pp. {first.page}\u2013{last.page}"
    elif part:
        piece = f"part {part[0]} of {part[1]}"
        where = piece if sole_paragraph else f"\u00b6{para_start}, {piece}"
    else:
        where = f"\u00b6{para_start}" if para_end == para_start else f"\u00b6{para_start}\u2013{para_end}"
    return Passage(
        passage_id=sha256_hex(doc.doc_id, passage_text, str(occurrence))[:20],
        doc_id=doc.doc_id,
        ordinal=ordinal,
        section=first.section,
        anchor=anchor,
        char_start=start,
        char_end=end,
        text=passage_text,
        n_tokens=sum(u.n_tokens for u in run),
        citation=format_citation(head, first.section, where),
        page_start=first.page,
        page_end=last.page,
        para_start=para_start,
        para_end=para_end,
    )


def citation_head(doc: Document) -> str:
    """'Engels, The Condition of the Working-Class in England (1845)'."""
    head = doc.title + (f" ({doc.year})" if doc.year else "")
    return f"{doc.author_label}, {head}" if doc.author_label else head


def format_citation(head: str, section: tuple[str, ...], where: str) -> str:
    """A reference a person can follow to the original, e.g.
    'Engels, The Condition of the Working-Class in England (1845), "Results", ¶12'
    or '..., p. 4' for a PDF, or '..., part 3 of 12' within a text that has
    no paragraphs (the State of the Union dataset keeps none)."""
    parts = [head]
    if section and section[-1] not in head:  # a title that already names its section
        parts.append(f"\u201c{section[-1]}\u201d")
    parts.append(where)
    return ", ".join(parts)
