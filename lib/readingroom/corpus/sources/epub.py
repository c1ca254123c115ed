"""EPUB 2 and 3 books: the chapters in reading order, read as HTML.

The spine gives the reading order; each XHTML chapter goes through the HTML
reader's `html_blocks()`, so a chapter's own headings start its section path.
A block's anchor is '<chapter file>#<paragraph anchor>' (or just the chapter
file when the paragraph has no anchor), the form an EPUB's own links take.
Title, authors, date and language come from the OPF's Dublin Core metadata.
"""
from __future__ import annotations

import io
import warnings
from pathlib import Path

import ebooklib
from ebooklib import epub

from readingroom.corpus.document import Block, Document
from readingroom.corpus.textio import SourceError, read_bytes
from readingroom.corpus.sources import Problem
from readingroom.corpus.sources.html import html_blocks, language_code
from readingroom.dates import date_and_year
from readingroom.corpus.sources.text import title_from_filename


def _load_book(path: Path, max_mb: float) -> epub.EpubBook:
    data = read_bytes(path, max_mb)  # also undoes .gz and refuses empty files
    # ebooklib warns about its own future defaults on every call; not our reader's business.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return epub.read_epub(io.BytesIO(data), {"ignore_ncx": True})
        except Exception as e:  # zipfile, lxml and ebooklib each raise their own kinds
            # EpubException keeps its words in .msg and quotes them in str().
            reason = str(getattr(e, "msg", "") or e).strip() or type(e).__name__
            raise SourceError(path, f"is not a readable EPUB ({reason}): truncated or damaged?") from e


def _metadata(book: epub.EpubBook, name: str) -> list[str]:
    values = []
    for value, _attributes in book.get_metadata("DC", name):
        value = " ".join((value or "").split())
        if value and value not in values:
            values.append(value)
    return values


def _toc_titles(toc) -> dict[str, str]:
    """Chapter file -> its title in the table of contents, for chapters
    that have no heading of their own."""
    titles: dict[str, str] = {}
    stack = list(toc)
    while stack:
        entry = stack.pop(0)
        if isinstance(entry, tuple):  # (Section, [children])
            section, children = entry
            stack = [section, *children, *stack]
            continue
        href = (getattr(entry, "href", "") or "").split("#")[0]
        title = " ".join((getattr(entry, "title", "") or "").split())
        if href and title:
            titles.setdefault(href, title)
    return titles


def _chapters(book: epub.EpubBook):
    """XHTML documents in spine order, without the EPUB 3 navigation page."""
    for idref, _linear in book.spine:
        item = book.get_item_with_id(idref)
        if item is None or item.get_type() != ebooklib.ITEM_DOCUMENT:
            continue  # the nav page (ITEM_NAVIGATION), or a spine entry the manifest lacks
        yield item


def read(path: Path, key: str, options):
    book = _load_book(path, options.max_mb)
    toc_titles = _toc_titles(book.toc)
    blocks: list[Block] = []
    for item in _chapters(book):
        name = item.get_name()
        try:
            content = item.get_content()
        except Exception as e:  # an entry the zip could not give back
            yield Problem(f"{path}: {name}", f"could not be read ({e}); skipped", "warning")
            continue
        try:
            chapter_blocks, info = html_blocks(content, f"{path}: {name}")
        except SourceError as e:
            yield Problem(e.location, f"{e.problem}; skipped", "warning")
            continue
        for w in info.warnings:
            yield Problem(f"{path}: {name}", w, "warning")
        toc_title = toc_titles.get(name)
        for b in chapter_blocks:
            section = b.section or ((toc_title,) if toc_title else ())
            anchor = f"{name}#{b.anchor}" if b.anchor else name
            blocks.append(Block(b.text, section, anchor))
    if not blocks:
        raise SourceError(path, "has no paragraphs of text")
    titles = _metadata(book, "title")
    dates = _metadata(book, "date")
    date, year = date_and_year(dates[0]) if dates else (None, None)
    languages = _metadata(book, "language")
    identifiers = _metadata(book, "identifier")
    yield Document(
        source="epub",
        key=key,
        title=titles[0] if titles else title_from_filename(path),
        blocks=blocks,
        authors=_metadata(book, "creator"),
        year=year,
        date=date,
        language=language_code(languages[0]) if languages else None,
        metadata={"identifier": identifiers[0]} if identifiers else {},
    )
