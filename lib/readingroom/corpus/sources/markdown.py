"""Markdown: headings become the section path, paragraphs, list items, code
blocks and table rows become blocks of plain text (emphasis and link syntax
removed, link text kept, raw HTML dropped).

Parsing is pyromark's (pulldown-cmark, CommonMark, in Rust): a '#' inside a
code block is not a heading, and at about 30 MB/s it is 30 times faster than
markdown-it-py, which decided ingestion speed.
"""
from __future__ import annotations

import re
from pathlib import Path

import pyromark

from readingroom.corpus.document import Block, Document
from readingroom.corpus.textio import SourceError, read_text
from readingroom.corpus.sources import Problem
from readingroom.corpus.sources.text import title_from_filename

# Where a block of text ends. A list item flushes only what is not already in
# a paragraph of its own (tight lists have no Paragraph events).
FLUSH_AT = {"Paragraph", "Item", "CodeBlock", "TableHead", "TableRow"}
OPTIONS = pyromark.Options.ENABLE_TABLES | pyromark.Options.ENABLE_FOOTNOTES | pyromark.Options.ENABLE_STRIKETHROUGH


def slug(heading: str) -> str:
    """GitHub-style heading anchor: lower case, punctuation dropped, spaces to '-'."""
    s = re.sub(r"[^\w\- ]", "", heading.lower()).strip()
    return re.sub(r"\s", "-", s)


def markdown_blocks(source: str, anchor_for=slug) -> tuple[list[Block], str | None]:
    """Blocks of a Markdown text, and its first level-1 heading (a title)."""
    blocks: list[Block] = []
    path: list[tuple[int, str]] = []  # (level, heading)
    anchor: str | None = None
    title = None
    parts: list[str] = []
    heading_level = 0
    # This loop sees every inline event of the corpus, so it is written for
    # speed: dict.get over pattern matching, no helper calls.
    for event in pyromark.events(source, options=OPTIONS):
        if event.__class__ is str:  # SoftBreak, HardBreak, Rule
            parts.append(" ")
            continue
        text = event.get("Text") or event.get("Code")
        if text is not None:
            parts.append(text)
            continue
        start = event.get("Start")
        if start is not None:
            if start.__class__ is dict and "Heading" in start:
                heading_level = int(start["Heading"]["level"][1])
                parts = []
            elif start == "TableCell" and parts:
                parts.append(" | ")
            continue
        end = event.get("End")
        if end is None:
            continue  # raw HTML, footnote references, math
        if end.__class__ is dict and "Heading" in end:
            heading = " ".join("".join(parts).split())
            path = [(lvl, h) for lvl, h in path if lvl < heading_level]
            if heading:
                path.append((heading_level, heading))
                anchor = anchor_for(heading)
                if heading_level == 1 and title is None:
                    title = heading
            parts = []
        elif end.__class__ is str and end in FLUSH_AT:
            text = " ".join("".join(parts).split())
            if text:
                blocks.append(Block(text, tuple(h for _, h in path), anchor))
            parts = []
    return blocks, title


def read(path: Path, key: str, options):
    text, warnings = read_text(path, options.max_mb)
    for w in warnings:
        yield Problem(str(path), w, "warning")
    blocks, title = markdown_blocks(text)
    if not blocks:
        raise SourceError(path, "has no paragraphs of text")
    yield Document(source="markdown", key=key, title=title or title_from_filename(path), blocks=blocks)
