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
from dataclasses import dataclass, field

from readingroom.corpus.document import Document, sha256_hex
from readingroom.text import sentence_spans

SPLITTER_VERSION = "1"

# Tokens are counted as words plus punctuation marks: about 0.8 of the
# WordPiece tokens a BERT-style embedder sees on English prose, so a 200-token
# passage stays inside MiniLM's 256 limit. Words are counted by their
# separators (readers collapse runs of whitespace), which runs several times
# faster than a regex tokenizer: ingestion speed is bound by this count.
PUNCTUATION = ".,;:!?\"'()[]-\u2013\u2014\u201c\u201d\u2018\u2019\u00ab\u00bb\u2026/"
PUNCTUATION_RE = re.compile("[" + re.escape(PUNCTUATION) + "]")  # what count_tokens counts, as a pattern
# The marks are counted without a regex: the ASCII ones are single bytes in
# UTF-8 (never part of another character's bytes), which bytes.translate
# deletes in one C loop; the others are counted one by one. Four times faster
# than PUNCTUATION_RE.findall, with the same counts.
_ASCII_PUNCTUATION = "".join(c for c in PUNCTUATION if c.isascii()).encode()
_OTHER_PUNCTUATION = tuple(c for c in PUNCTUATION if not c.isascii())
# Where a cut between words has to be made, it is made at these tokens.
TOKEN_RE = re.compile(r"\w+|[^\w\s]")


def count_tokens(text: str) -> int:
    if "  " in text or "\n" in text or "\t" in text or text[:1].isspace() or text[-1:].isspace():
        words = len(text.split())  # the slow, exact way, for text with runs of space
    else:
        words = text.count(" ") + 1 if text else 0
    data = text.encode("utf-8", "surrogatepass")  # a lone surrogate (from JSON) is counted as before
    marks = len(data) - len(data.translate(None, _ASCII_PUNCTUATION))
    if not text.isascii():
        marks += sum(map(text.count, _OTHER_PUNCTUATION))
    return words + marks


@dataclass(frozen=True)
class Citation:
    """Where a passage is: what a reader needs to find it in the original.
    `render_citation` writes it out, the same way for every surface."""

    author: str  # how the citation names the authors: 'Engels', 'Marx and Engels', 'Marx et al.'; '' unknown
    title: str
    year: int | None = None
    section: tuple[str, ...] = ()  # headings from the outermost in
    paragraphs: str | None = None  # '¶12', '¶3–5', '¶2, part 1 of 3', 'part 3 of 12'
    page: str | None = None  # 'p. 4', 'pp. 4–5' (a PDF's pages, in place of paragraphs)
    anchor: str | None = None  # the place in the original's page ('ch05', 'page=4')
    url: str | None = None

    @property
    def document(self) -> str:
        """'Engels, The Condition of the Working-Class in England (1845)'."""
        head = self.title + (f" ({self.year})" if self.year else "")
        return f"{self.author}, {head}" if self.author else head

    @property
    def place(self) -> str:
        """Where in the document: '“Results”, ¶12', 'p. 4'. A section is
        named unless the document's own title already names it."""
        parts = []
        if self.section and self.section[-1] not in self.document:
            parts.append(f"\u201c{self.section[-1]}\u201d")
        where = self.page or self.paragraphs
        if where:
            parts.append(where)
        return ", ".join(parts)


def render_citation(citation: Citation, *, document: bool = True) -> str:
    """A reference a person can follow to the original, e.g.
    'Engels, The Condition of the Working-Class in England (1845), “Results”, ¶12'
    or '..., p. 4' for a PDF, or '..., part 3 of 12' within a text that has
    no paragraphs (the State of the Union dataset keeps none). Without
    `document`, only the place in it (a reading list names each document once)."""
    parts = ([citation.document] if document else []) + ([citation.place] if citation.place else [])
    return ", ".join(parts)


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
    reference: Citation | None = field(default=None, compare=False)  # `citation`, as a structure
    language: str | None = None  # ISO 639-1, when not the document's (corpus.language.with_passage_languages)


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
        passages: list[Passage] = []
        seen: dict[str, int] = {}
        author = doc.author_label  # the same for every passage: worked out once
        for run in runs:
            first, last = run[0].block, run[-1].block
            part = None
            if first == last and pieces[first] > 1:
                done[first] += 1
                part = (done[first], pieces[first])
            paragraphs = (numbers[first], numbers[last], section_sizes[first] == 1)
            passages.append(_make_passage(doc, text, run, len(passages), paragraphs, part, seen, author))
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


def _make_passage(doc, text, run, ordinal, paragraphs, part, seen, author) -> Passage:
    start, end = run[0].start, run[-1].end
    passage_text = text[start:end]
    first, last = doc.blocks[run[0].block], doc.blocks[run[-1].block]
    # The same text twice in one document (a refrain, a repeated heading)
    # gets distinct ids by counting its occurrences.
    occurrence = seen.get(passage_text, 0)
    seen[passage_text] = occurrence + 1
    anchor = first.anchor or next((doc.blocks[u.block].anchor for u in run if doc.blocks[u.block].anchor), None)
    para_start, para_end, sole_paragraph = paragraphs
    page = numbers = None
    if first.page is not None:
        page = f"p. {first.page}" if last.page in (None, first.page) else f"pp. {first.page}\u2013{last.page}"
    elif part:
        piece = f"part {part[0]} of {part[1]}"
        numbers = piece if sole_paragraph else f"\u00b6{para_start}, {piece}"
    else:
        numbers = f"\u00b6{para_start}" if para_end == para_start else f"\u00b6{para_start}\u2013{para_end}"
    reference = Citation(author=author, title=doc.title, year=doc.year, section=tuple(first.section),
                         paragraphs=numbers, page=page, anchor=anchor, url=doc.url)
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
        citation=render_citation(reference),
        page_start=first.page,
        page_end=last.page,
        para_start=para_start,
        para_end=para_end,
        reference=reference,
    )
