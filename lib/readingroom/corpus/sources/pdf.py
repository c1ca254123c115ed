"""PDF files with a text layer: one block per paragraph per page.

PDFs keep no paragraphs, only lines placed on a page, so paragraphs are
recovered from the layout: a new one starts after a vertical gap wider than
the page's usual line spacing, or after a short line that ends a sentence
(the last line of a paragraph in a book set without gaps). Words hyphenated
across a line break are joined. Each block carries its 1-based page number
and the anchor 'page=N', so 'file.pdf#page=N' opens it in a browser.

Scanned PDFs have no text layer; they are refused with a pointer to OCR.
"""
from __future__ import annotations

import contextlib
import io
import logging
import re
import statistics
import warnings
from dataclasses import dataclass
from pathlib import Path

from pypdf import PdfReader
from pypdf.errors import DependencyError, FileNotDecryptedError

from readingroom.corpus.document import Block, Document
from readingroom.corpus.textio import SourceError, read_bytes
from readingroom.corpus.sources import Problem
from readingroom.corpus.sources.text import title_from_filename
from readingroom.text import ends_sentence

PARAGRAPH_GAP = 1.4  # times the usual line spacing
SHORT_LINE = 0.8  # of the page's longest line
HYPHENATED = re.compile(r"[^\W\d_]-$")  # 'revolu-' but not '1917-' or '--'
PAGE_NUMBER = re.compile(r"\d{1,4}")  # a printed page number standing alone


@dataclass
class Line:
    text: str
    y: float | None  # height on the page, growing upwards as in PDF space


@contextlib.contextmanager
def quiet_pypdf():
    """pypdf logs a warning for each flaw it works around in a damaged file;
    the reader reports what matters itself."""
    logger = logging.getLogger("pypdf")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)


def page_lines(page) -> list[Line]:
    """The page's text lines in content order, each with its height."""
    lines: list[Line] = [Line("", None)]

    def visit(text, cm, tm, _font, _size):
        parts = text.split("\n")
        for n, part in enumerate(parts):
            if n > 0:
                lines.append(Line("", None))
            if part and lines[-1].y is None and part.strip():
                # Where the text matrix puts the line, in page space.
                lines[-1].y = tm[4] * cm[1] + tm[5] * cm[3] + cm[5]
            lines[-1].text += part

    page.extract_text(visitor_text=visit)
    return [line for line in lines if line.text.strip()]


def paragraphs(lines: list[Line]) -> list[str]:
    """The lines grouped into paragraphs, hyphenated words joined."""
    if not lines:
        return []
    drops = [
        a.y - b.y for a, b in zip(lines, lines[1:]) if a.y is not None and b.y is not None and a.y > b.y
    ]
    spacing = statistics.median(drops) if drops else None
    longest = max(len(line.text.strip()) for line in lines)
    groups: list[list[str]] = [[lines[0].text.strip()]]
    for previous, line in zip(lines, lines[1:]):
        text = line.text.strip()
        gap = previous.y - line.y if spacing and previous.y is not None and line.y is not None else None
        wide_gap = gap is not None and (gap > PARAGRAPH_GAP * spacing or gap < -spacing)
        last_text = previous.text.strip()
        ends_paragraph = ends_sentence(last_text, colon=True) and len(last_text) < SHORT_LINE * longest
        if wide_gap or ends_paragraph:
            groups.append([text])
        else:
            groups[-1].append(text)
    return [_join_lines(group) for group in groups]


def _join_lines(lines: list[str]) -> str:
    text = ""
    for line in lines:
        if HYPHENATED.search(text) and line[:1].islower():
            text = text[:-1] + line  # 'revolu-' + 'tion'
        else:
            text = f"{text} {line}" if text else line
    return " ".join(text.split())


def _open(path: Path, data: bytes) -> PdfReader:
    try:
        reader = PdfReader(io.BytesIO(data), strict=False)
    except (DependencyError, FileNotDecryptedError) as e:
        raise SourceError(path, "is encrypted; decrypt it first") from e
    except Exception as e:  # pypdf's own errors, and the struct/zlib/value errors behind them
        raise SourceError(path, f"is not a readable PDF ({_reason(e)}): truncated or damaged?") from e
    if reader.is_encrypted:
        # Many PDFs are 'encrypted' with an empty password only to restrict printing.
        try:
            unlocked = reader.decrypt("")
        except Exception:  # e.g. AES without the cryptography package
            unlocked = 0
        if not unlocked:
            raise SourceError(path, "is encrypted; decrypt it first")
    return reader


def _reason(error: Exception) -> str:
    return str(error).strip() or type(error).__name__


def _metadata(reader: PdfReader) -> tuple[str | None, list[str], str | None]:
    """Title, authors and creation date (ISO), from the document info."""
    try:
        info = reader.metadata
    except Exception:  # a damaged info dictionary: the text may still be fine
        return None, [], None
    if not info:
        return None, [], None
    title = " ".join((info.title or "").split()) or None
    authors = [a.strip() for a in (info.author or "").split(";") if a.strip()]
    try:
        created = info.creation_date
    except ValueError:  # a date string that is not in PDF date format
        created = None
    return title, authors, created.date().isoformat() if created else None


def read(path: Path, key: str, options):
    data = read_bytes(path, options.max_mb)
    blocks: list[Block] = []
    unreadable_pages: list[str] = []
    blank_pages: list[int] = []
    with quiet_pypdf():
        reader = _open(path, data)
        try:
            pages = list(reader.pages)
        except Exception as e:
            raise SourceError(path, f"is not a readable PDF ({_reason(e)}): truncated or damaged?") from e
        for number, page in enumerate(pages, start=1):
            try:
                lines = page_lines(page)
            except Exception as e:  # one broken content stream should not lose the rest
                unreadable_pages.append(f"{number} ({_reason(e)})")
                continue
            found = [p for p in paragraphs(lines) if not PAGE_NUMBER.fullmatch(p)]
            if not found:
                blank_pages.append(number)
            blocks.extend(Block(text, anchor=f"page={number}", page=number) for text in found)
        title, authors, date = _metadata(reader)
    if not pages:
        raise SourceError(path, "has no pages")
    if not blocks:
        if unreadable_pages:
            pages_listed = ", ".join(unreadable_pages)
            raise SourceError(path, f"is not a readable PDF (pages {pages_listed}): truncated or damaged?")
        raise SourceError(
            path, "has no text layer (a scanned document?); run OCR on it first, e.g. with ocrmypdf"
        )
    if unreadable_pages:
        pages_listed = ", ".join(unreadable_pages)
        yield Problem(
            str(path), f"text of page(s) {pages_listed} could not be read; they were left out", "warning"
        )
    if len(blank_pages) > len(pages) / 4:
        # A few blank pages are normal in a book; many suggest a partly scanned one.
        listed = ", ".join(str(n) for n in blank_pages[:20]) + (" ..." if len(blank_pages) > 20 else "")
        yield Problem(str(path), f"page(s) {listed} have no text (blank, or scanned without OCR)", "warning")
    yield Document(
        source="pdf",
        key=key,
        title=title or title_from_filename(path),
        blocks=blocks,
        authors=authors,
        year=int(date[:4]) if date else None,
        date=date,
        metadata={"pages": len(pages)},
    )
