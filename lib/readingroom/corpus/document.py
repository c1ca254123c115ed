"""The one shape every source produces: a Document made of Blocks.

A Block is a paragraph-sized piece of text with the place it sits in (its
section path, an anchor a reader can follow, a page number). A Document's text
is its blocks joined by blank lines, so every block, and every passage cut
from it, is a span of that text with exact character offsets.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from functools import cached_property

BLOCK_SEPARATOR = "\n\n"


def sha256_hex(*parts: str) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(part.encode("utf-8"))
        h.update(b"\x00")  # keeps ("ab", "c") and ("a", "bc") apart
    return h.hexdigest()


@dataclass(frozen=True)
class Block:
    text: str
    section: tuple[str, ...] = ()
    anchor: str | None = None
    page: int | None = None


@dataclass
class Document:
    """A text with its metadata, ready to be split and stored.

    `source` names the reader that made it (markdown, pdf, sotu ...) and `key`
    identifies it within that source independently of the machine: a path
    relative to what was ingested, a URL, a wiki page title. The document id is
    derived from the two, so re-reading the same input on any machine gives the
    same id, and a changed file keeps its id while its content hash changes.
    """

    source: str
    key: str
    title: str
    blocks: list[Block]
    authors: list[str] = field(default_factory=list)
    year: int | None = None
    date: str | None = None  # ISO 8601 (YYYY-MM-DD) when known
    language: str | None = None
    location: str | None = None  # path or URL, for people; not part of the id
    url: str | None = None
    metadata: dict = field(default_factory=dict)

    @cached_property
    def doc_id(self) -> str:
        return sha256_hex(self.source, self.key)[:16]

    @property
    def text(self) -> str:
        return BLOCK_SEPARATOR.join(b.text for b in self.blocks)

    def block_spans(self) -> list[tuple[int, int]]:
        """(start, end) of each block in `text`."""
        spans, pos = [], 0
        for b in self.blocks:
            spans.append((pos, pos + len(b.text)))
            pos += len(b.text) + len(BLOCK_SEPARATOR)
        return spans

    @property
    def content_sha256(self) -> str:
        return hashlib.sha256(self.text.encode("utf-8")).hexdigest()

    def fingerprint(self, splitter_signature: str) -> str:
        """Everything that decides what gets stored: text, structure, metadata
        and the splitter's settings. Equal fingerprints mean nothing to do."""
        structure = [(b.section, b.anchor, b.page, len(b.text)) for b in self.blocks]
        meta = dict(
            title=self.title, authors=self.authors, year=self.year, date=self.date,
            language=self.language, url=self.url, metadata=self.metadata,
        )
        return sha256_hex(
            self.content_sha256,
            json.dumps(structure, ensure_ascii=False),
            json.dumps(meta, sort_keys=True, ensure_ascii=False, default=str),
            splitter_signature,
        )

    @property
    def author_label(self) -> str:
        """How a citation names the authors: surnames, 'A and B', 'A et al.'"""
        return name_list([_surname(a) for a in self.authors])


# Several authors in one field: 'Marx; Engels' or 'Marx | Engels' (a comma
# is not one: 'Marx, Karl' is one author).
AUTHOR_SEPARATORS = (";", "|")


def split_authors(value) -> list[str]:
    """The authors of a field a source or manifest gives: a list as it is,
    a string split at the AUTHOR_SEPARATORS; blanks dropped."""
    if value is None:
        return []
    if isinstance(value, list):
        return [str(v).strip() for v in value if str(v).strip()]
    text = str(value)
    for sep in AUTHOR_SEPARATORS:
        text = text.replace(sep, "\x1f")
    return [a.strip() for a in text.split("\x1f") if a.strip()]


def name_list(names: list[str]) -> str:
    """'' for none, 'A', 'A and B', 'A et al.' for more."""
    if not names:
        return ""
    if len(names) == 1:
        return names[0]
    if len(names) == 2:
        return f"{names[0]} and {names[1]}"
    return f"{names[0]} et al."


def _surname(name: str) -> str:
    """'Marx' for 'Karl Marx' and 'Marx, Karl'; a body such as 'Anarchist FAQ
    Editorial Collective' (more than three words) keeps its whole name."""
    if "," in name:
        return name.split(",")[0].strip()
    words = name.split()
    return words[-1] if 1 < len(words) <= 3 else name
