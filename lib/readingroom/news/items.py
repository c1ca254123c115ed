"""A news item: one article from a feed, with where it came from and when.

An item's id is stable across machines and re-reads: the sha256 of its URL
when it has one (the same article reached through two feeds is one item),
else of its feed and its guid (the id the feed gives it), else of its feed,
title and date. Re-reading a feed therefore finds the items it already has.

Its text becomes an ordinary Document (source "news:<outlet>"): the headline
as the first paragraph, then the body, so that search, embeddings and
citations work on news as on books. Feed text is untrusted: titles and
bodies are reduced to plain text here (markup removed, never interpreted),
and whatever shows them later escapes them again.
"""
from __future__ import annotations

import datetime as dt
import html
import re
import warnings
from dataclasses import dataclass, field

from readingroom.corpus.document import Block, Document, sha256_hex

# HTML elements whose presence means a feed put markup in a text field;
# anything else in angle brackets is text ("COMPUTER TERMINAL SYSTEMS <CPML>",
# a stock ticker in a Reuters headline) and is kept as it is.
HTML_ELEMENTS = frozenset(
    "a abbr b big blockquote br cite code del div em font h1 h2 h3 h4 h5 h6 hr i iframe img ins "
    "kbd li mark object ol p pre q s script small span strike strong style sub sup svg table tbody "
    "td th tr tt u ul video audio source embed link meta noscript form input button".split())
_TAG = re.compile(r"</?\s*([a-zA-Z][a-zA-Z0-9]*)\b[^<>]*>")
DROPPED_ELEMENTS = ("script", "style", "noscript", "template", "iframe", "object", "svg")


def has_markup(text: str) -> bool:
    return any(m.group(1).lower() in HTML_ELEMENTS for m in _TAG.finditer(text))


def plain_line(text: str | None) -> str:
    """One line of plain text from a feed's title or name: HTML elements
    removed with what scripts and styles hold, entities decoded, white
    space collapsed. Angle brackets that are not HTML stay."""
    text = text or ""
    if has_markup(text):
        text = " ".join(block.text for block in markup_blocks(text)) or _soup_text(text)
    else:
        text = html.unescape(text)
    return " ".join(text.split())


def markup_blocks(markup: str) -> list[Block]:
    """Paragraph blocks of an HTML fragment (an RSS description, an Atom
    content of type html), without scripts, styles or navigation."""
    from readingroom.corpus.sources.html import html_blocks

    blocks, _ = html_blocks(markup)
    return [Block(b.text) for b in blocks if b.text.strip()]


def _soup_text(markup: str) -> str:
    from bs4 import BeautifulSoup, MarkupResemblesLocatorWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MarkupResemblesLocatorWarning)
        soup = BeautifulSoup(markup, "html.parser")
    for tag in soup.find_all(DROPPED_ELEMENTS):
        tag.decompose()
    return soup.get_text(" ")


def text_blocks(text: str) -> list[Block]:
    """Paragraph blocks of plain text (paragraphs separated by blank lines)."""
    return [Block(" ".join(p.split())) for p in re.split(r"\n\s*\n", text) if p.strip()]


def body_blocks(body: str | None) -> list[Block]:
    body = body or ""
    return markup_blocks(body) if has_markup(body) else text_blocks(html.unescape(body))


@dataclass
class NewsItem:
    feed: str  # the feed's location as stored (a path, a URL, a sample feed's name)
    outlet: str  # who published it: "Reuters", "The Harbour Gazette"
    title: str  # plain text
    blocks: list[Block]  # the body, in paragraphs (plain text)
    guid: str | None = None
    url: str | None = None
    published: dt.datetime | None = None  # UTC; None when the feed gave no (readable) date
    authors: list[str] = field(default_factory=list)  # the byline, when there is one
    language: str | None = None
    location: str = ""  # where it was read: the file and entry, for messages
    metadata: dict = field(default_factory=dict)

    @property
    def item_id(self) -> str:
        if self.url:
            return sha256_hex("url", self.url.strip())[:16]
        if self.guid:
            return sha256_hex("guid", self.feed, self.guid.strip())[:16]
        when = self.published.isoformat() if self.published else ""
        return sha256_hex("title", self.feed, self.title, when)[:16]

    @property
    def source(self) -> str:
        return f"news:{self.outlet}"

    def document(self) -> Document:
        """The item as a library document: headline first, then the body.
        Its title names the outlet, so a citation of it does too."""
        blocks = [Block(self.title, anchor="headline")] if self.title else []
        blocks += [b for b in self.blocks if b.text != self.title]
        date = self.published.date() if self.published else None
        return Document(
            source=self.source,
            key=self.item_id,
            title=f"{self.outlet}: {self.title}" if self.title else self.outlet,
            blocks=blocks,
            authors=list(self.authors),
            year=date.year if date else None,
            date=date.isoformat() if date else None,
            language=self.language,
            location=self.location or self.feed,
            url=self.url,
            metadata={"outlet": self.outlet, "feed": self.feed, "item_id": self.item_id,
                      **({"guid": self.guid} if self.guid else {}), **self.metadata},
        )
