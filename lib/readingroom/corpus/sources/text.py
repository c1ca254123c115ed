"""Plain text: paragraphs separated by blank lines, hard-wrapped lines joined.

Plain text has no markup for headings, so a short line standing alone as a
paragraph is taken for one when it is set in capitals or in _underscores_
(the Project Gutenberg convention for italics), as in 'I. BOURGEOIS AND
PROLETARIANS' or '_A. Feudal Socialism_'. Its numbering gives its level:
roman numerals outrank arabic ones, which outrank letters.
"""
from __future__ import annotations

import re
from pathlib import Path

from readingroom.corpus.document import Block, Document
from readingroom.corpus.textio import SourceError, read_text
from readingroom.corpus.sources import Problem

PARAGRAPH_BREAK = re.compile(r"\n[ \t]*\n+")
ROMAN = re.compile(r"^(?:PART|BOOK|CHAPTER|SECTION)?\s*[IVXLC]+\.\s", re.I)
ARABIC = re.compile(r"^(?:CHAPTER|SECTION)?\s*\d+\.?\s")
LETTER = re.compile(r"^[A-Z]\.\s")


def title_from_filename(path: Path) -> str:
    stem = path.name.split(".")[0]
    words = re.sub(r"[-_]+", " ", stem).strip()
    return words[:1].upper() + words[1:] if words else path.name


def heading_level(paragraph: str) -> int | None:
    """1-3 if this paragraph looks like a heading, else None."""
    if "\n" in paragraph or len(paragraph) > 80:
        return None
    text = paragraph.strip()
    underscored = len(text) > 2 and text.startswith("_") and text.endswith("_")
    text = text.strip("_ ")
    letters = [c for c in text if c.isalpha()]
    if not letters:
        return None
    capitals = sum(c.isupper() for c in letters) / len(letters)
    if not underscored and (capitals < 0.8 or len(letters) < 3):
        return None
    if ROMAN.match(text):
        return 1
    if ARABIC.match(text):
        return 2
    if LETTER.match(text):
        return 3
    return 1


def clean_heading(paragraph: str) -> str:
    return " ".join(paragraph.strip().strip("_").split()).rstrip(".")


def paragraph_blocks(text: str, section: tuple[str, ...] = (), find_headings: bool = True) -> list[Block]:
    """Blocks from text whose paragraphs are separated by blank lines."""
    blocks: list[Block] = []
    path = list(section)
    base = len(section)
    for raw in PARAGRAPH_BREAK.split(text):
        if not raw.strip():
            continue
        level = heading_level(raw.strip()) if find_headings else None
        if level is not None:
            del path[base + level - 1:]
            path.append(clean_heading(raw))
            continue
        blocks.append(Block(" ".join(raw.split()), tuple(path)))
    return blocks


def read(path: Path, key: str, options):
    text, warnings = read_text(path, options.max_mb)
    for w in warnings:
        yield Problem(str(path), w, "warning")
    blocks = paragraph_blocks(text)
    if not blocks:
        raise SourceError(path, "has no paragraphs of text")
    yield Document(source="text", key=key, title=title_from_filename(path), blocks=blocks)
