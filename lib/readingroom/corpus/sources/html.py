"""HTML pages: the text of a page without its navigation, in paragraphs.

Navigation and boilerplate (scripts, styles, nav bars, headers, footers,
forms, marxists.org-style bars of links such as 'Table of Contents | Next')
are dropped. Headings h1-h6 give each paragraph its section path. Paragraph
anchors are kept so a passage can link back into the page: marxists.org marks
paragraphs with `<a name="s1p05">` inside or just before a `<p>`, other sites
with `<p id="...">`; a block's anchor is the nearest anchor before its text,
which is the heading's own when the paragraph has none.

`html_blocks()` does the work on markup alone, so the EPUB reader uses it for
each chapter.
"""
from __future__ import annotations

import codecs
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from bs4 import (
    BeautifulSoup, MarkupResemblesLocatorWarning, NavigableString, Tag, XMLParsedAsHTMLWarning,
)
from bs4.element import PreformattedString, Script, Stylesheet, TemplateString

from readingroom.corpus.document import Block, Document
from readingroom.corpus.textio import SourceError, decode, looks_binary, read_bytes
from readingroom.dates import date_and_year
from readingroom.corpus.sources import Problem
from readingroom.corpus.sources.text import title_from_filename

# Removed with everything inside them: not part of the text.
BOILERPLATE_TAGS = [
    "script", "style", "noscript", "template", "nav", "header", "footer", "aside", "form",
    "button", "select", "textarea", "iframe", "object", "embed", "svg", "canvas", "map",
]
BOILERPLATE_ROLES = {"navigation", "banner", "contentinfo", "search", "complementary"}
HEADINGS = {"h1": 1, "h2": 2, "h3": 3, "h4": 4, "h5": 5, "h6": 6}
# Elements that end the paragraph before them and start a new one.
BLOCK_TAGS = {
    "address", "article", "blockquote", "body", "caption", "center", "dd", "details", "dialog",
    "div", "dl", "dt", "fieldset", "figcaption", "figure", "hr", "li", "main", "ol", "p", "pre",
    "section", "summary", "table", "tbody", "td", "tfoot", "th", "thead", "tr", "ul",
} | set(HEADINGS)
AUTHOR_META = ("author", "dc.creator", "citation_author", "dcterms.creator")
DATE_META = ("date", "dc.date", "citation_date", "dc.date.created", "dcterms.date",
             "citation_publication_date", "dcterms.created")
# What a bar of links is separated by: 'Contents | Next', '[Index] - [Next]'.
LINK_BAR_FILLER = re.compile(r"[\s|·•\-–—:/\[\]()<>«»,.]*")
DECLARED_CHARSET = re.compile(
    rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]+)"""
    rb"""|<\?xml[^>]+encoding\s*=\s*["']([A-Za-z0-9_.:-]+)""",
    re.I,
)


@dataclass
class PageInfo:
    """What a page says about itself, besides its text."""

    title: str | None = None
    authors: list[str] = field(default_factory=list)
    date: str | None = None
    year: int | None = None
    language: str | None = None
    warnings: list[str] = field(default_factory=list)


def language_code(value: str | None) -> str | None:
    """'en' from 'en-GB' or 'EN'; None for anything that is not a language tag."""
    code = (value or "").strip().split("-")[0].split("_")[0].lower()
    return code if len(code) in (2, 3) and code.isalpha() else None


def decode_markup(data: bytes, location: str | Path) -> tuple[str, list[str]]:
    """Text of an HTML file: a byte-order mark wins, then the charset the page
    declares, then textio's decoding (UTF-8, or a reported guess)."""
    if data.startswith((b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff")):
        return decode(data, Path(location))
    m = DECLARED_CHARSET.search(data[:4096])
    if m:
        charset = (m.group(1) or m.group(2)).decode("ascii")
        try:
            if codecs.lookup(charset).name in ("latin-1", "iso8859-1", "ascii"):
                charset = "cp1252"  # what browsers read for these, as the WHATWG spec says
            if looks_binary(data):
                raise SourceError(location, "looks like a binary file, not text")
            text = data.decode(charset)
            return text.replace("\r\n", "\n").replace("\r", "\n").replace("\x00", ""), []
        except (LookupError, UnicodeDecodeError):
            pass  # a wrong or unknown declaration: fall back to looking at the bytes
    return decode(data, Path(location))


def _is_boilerplate(tag: Tag) -> bool:
    role = (tag.get("role") or "").strip().lower()
    return tag.name in BOILERPLATE_TAGS or role in BOILERPLATE_ROLES


def _anchor_of(tag: Tag) -> str | None:
    if tag.name in ("html", "body"):
        return None  # an id on the whole page points nowhere in particular
    value = tag.get("id") or (tag.get("name") if tag.name == "a" else None)
    return value.strip() if isinstance(value, str) and value.strip() else None


def _page_info(soup: BeautifulSoup) -> PageInfo:
    info = PageInfo()
    title = soup.find("title")
    if title and title.get_text(strip=True):
        info.title = " ".join(title.get_text().split())
    else:
        h1 = soup.find("h1")
        if h1 and h1.get_text(strip=True):
            info.title = " ".join(h1.get_text().split())
    dates = []
    for meta in soup.find_all("meta"):
        name = (meta.get("name") or meta.get("property") or "").strip().lower()
        content = " ".join((meta.get("content") or "").split())
        if not content:
            continue
        if name in AUTHOR_META and content not in info.authors:
            info.authors.append(content)
        elif name in DATE_META:
            dates.append((DATE_META.index(name), content))
    if dates:
        info.date, info.year = date_and_year(min(dates)[1])
    html = soup.find("html")
    if html:
        info.language = language_code(html.get("lang") or html.get("xml:lang"))
    return info


class _BlockCollector:
    """Walks the page in document order, gathering inline text into
    paragraphs and keeping track of the section and the latest anchor."""

    def __init__(self):
        self.blocks: list[Block] = []
        self.sections: list[tuple[int, str]] = []  # (level, heading text)
        self.last_anchor: str | None = None
        self.pieces: list[tuple[str, bool]] = []  # (text, inside a link)
        self.anchor: str | None = None  # the anchor of the paragraph being gathered
        self.heading_level: int | None = None  # set while inside a heading

    def add_text(self, text: str, in_link: bool):
        if not self.pieces and not text.strip():
            return
        if not self.pieces:
            self.anchor = self.last_anchor
        self.pieces.append((text, in_link))

    def end_paragraph(self):
        text = " ".join("".join(t for t, _ in self.pieces).split())
        link_text = "".join(t for t, in_link in self.pieces if in_link).strip()
        plain_text = "".join(t for t, in_link in self.pieces if not in_link)
        self.pieces = []
        if not text:
            return
        if self.heading_level is not None:
            # A heading closes the sections at its level and below.
            self.sections = [(level, t) for level, t in self.sections if level < self.heading_level]
            self.sections.append((self.heading_level, text))
            return
        if link_text and LINK_BAR_FILLER.fullmatch(plain_text):
            return  # only links and separators: a navigation bar
        section = tuple(title for _, title in self.sections)
        self.blocks.append(Block(text, section, self.anchor))


def _walk(root: Tag) -> list[Block]:
    collector = _BlockCollector()
    # An explicit stack, not recursion: a deeply nested page must not overflow.
    stack: list[tuple[object, bool]] = [(root, False)]
    link_depth = 0
    while stack:
        node, leaving = stack.pop()
        if isinstance(node, NavigableString):
            if not isinstance(node, (PreformattedString, Script, Stylesheet, TemplateString)):
                collector.add_text(str(node), link_depth > 0)
            continue
        if not isinstance(node, Tag):
            continue
        is_link = node.name == "a" and node.get("href") is not None
        if leaving:
            if node.name in BLOCK_TAGS:
                collector.end_paragraph()
            if node.name in HEADINGS:
                collector.heading_level = None
            if is_link:
                link_depth -= 1
            continue
        if node.name == "br":
            collector.add_text(" ", link_depth > 0)
            continue
        if node.name in BLOCK_TAGS:
            collector.end_paragraph()
        if node.name in HEADINGS:
            collector.heading_level = HEADINGS[node.name]
        anchor = _anchor_of(node)
        if anchor:
            collector.last_anchor = anchor
            if collector.pieces and collector.heading_level is None and collector.anchor is None:
                collector.anchor = anchor
        if is_link:
            link_depth += 1
        stack.append((node, True))
        stack.extend((child, False) for child in reversed(node.contents))
    collector.end_paragraph()
    return collector.blocks


def html_blocks(markup: str | bytes, location: str | Path = "<html>") -> tuple[list[Block], PageInfo]:
    """Blocks of the text of an HTML or XHTML page, and what the page says
    about itself. Bytes are decoded by the page's declared charset."""
    decoding_warnings: list[str] = []
    if isinstance(markup, bytes):
        markup, decoding_warnings = decode_markup(markup, location)
    with warnings.catch_warnings():
        # XHTML is HTML here (EPUB chapters, .xhtml files), and a short page may
        # look like a file name to BeautifulSoup: neither is worth a warning.
        warnings.simplefilter("ignore", XMLParsedAsHTMLWarning)
        warnings.simplefilter("ignore", MarkupResemblesLocatorWarning)
        soup = BeautifulSoup(markup, "lxml")
    info = _page_info(soup)
    info.warnings = decoding_warnings
    for tag in soup.find_all(_is_boilerplate):
        if not tag.decomposed:  # already gone with a removed parent
            tag.decompose()
    root = soup.find("body") or soup
    return _walk(root), info


def read(path: Path, key: str, options):
    blocks, info = html_blocks(read_bytes(path, options.max_mb), path)
    for w in info.warnings:
        yield Problem(str(path), w, "warning")
    if not blocks:
        raise SourceError(path, "has no paragraphs of text")
    yield Document(
        source="html",
        key=key,
        title=info.title or title_from_filename(path),
        blocks=blocks,
        authors=info.authors,
        year=info.year,
        date=info.date,
        language=info.language,
    )
