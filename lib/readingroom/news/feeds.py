"""Reading feeds: RSS 2.0 (and RSS 1.0/RDF), Atom, JSON Lines article
exports, and Reuters newswire XML, each into NewsItems.

Why defusedxml and not feedparser: feedparser is the well-known library for
feeds, but it reads a whole feed into memory before it parses it, it accepts
broken XML silently (its "bozo" bit) where a reader should be told what is
wrong and where, and it brings its own HTTP fetching, which must not happen
behind the reader's back here. defusedxml is the well-kept library made for
parsing XML nobody vouched for (it refuses entity expansion, external
entities and DTD tricks, the XML bombs), it is already a dependency (the
MediaWiki reader uses it), and its iterparse streams: each item is read and
forgotten, and the bytes read are counted so that an enormous (or endless)
feed stops at the size cap with a clear message instead of filling memory.
RSS and Atom are small formats; what feedparser adds beyond them (dates in
odd formats, many old dialects) is done here for the formats that matter.

A feed is read whole or not at all: a malformed feed raises SourceError
naming the file, the line and the column, and nothing of it is stored (see
store.py). A bad entry inside a good feed (no title and no text) is a
Problem, and the rest of the feed goes in.
"""
from __future__ import annotations

import html
import io
import json
import lzma
from collections.abc import Iterator
from pathlib import Path
from xml.etree.ElementTree import ParseError

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import iterparse

from readingroom.corpus.document import Block
from readingroom.corpus.sources import Problem
from readingroom.corpus.document import split_authors
from readingroom.corpus.sources.articles import first
from readingroom.corpus.sources.html import language_code
from readingroom.corpus.textio import MB, SourceError
from readingroom.dates import parse_date
from readingroom.news.items import NewsItem, body_blocks, plain_line
from readingroom.news.reuters_xml import rcv1_item, reuters_item

DEFAULT_MAX_MB = 20.0  # one feed, decompressed; raise it with --max-mb
ATOM = "{http://www.w3.org/2005/Atom}"
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
JSONL_SUFFIXES = (".jsonl", ".ndjson")


class FeedTooLarge(Exception):
    pass


class CappedReader(io.RawIOBase):
    """A binary stream that raises FeedTooLarge once more than `limit` bytes
    have been read from it: the parser stops there, whatever the feed says."""

    def __init__(self, raw, limit: int):
        self.raw, self.limit, self.count = raw, limit, 0

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        data = self.raw.read(size if size and size > 0 else 64 * 1024)
        self.count += len(data)
        if self.count > self.limit:
            raise FeedTooLarge()
        return data

    def readinto(self, buffer) -> int:
        data = self.read(len(buffer))
        buffer[:len(data)] = data
        return len(data)


def too_large(location: str, max_mb: float) -> SourceError:
    return SourceError(location, f"is over the {max_mb:g} MB limit for one feed; nothing of it was stored "
                                 f"(raise the limit with --max-mb if the feed is really that large)")


# --- XML ----------------------------------------------------------------------------------------

def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _children(element, name: str) -> list:
    return [c for c in element if _local(c.tag) == name]


def _text(element, name: str) -> str:
    found = _children(element, name)
    return (found[0].text or "").strip() if found else ""


XHTML_PARAGRAPHS = {"p", "li", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "pre", "dd", "dt", "td"}


def _xhtml_text(element) -> str:
    """Plain text of Atom's type="xhtml" content, a paragraph per block
    element (the markup is already parsed: it is read, never re-serialised)."""
    paragraphs = [" ".join("".join(e.itertext()).split()) for e in element.iter()
                  if _local(e.tag) in XHTML_PARAGRAPHS and not any(_local(c.tag) in XHTML_PARAGRAPHS for c in e)]
    paragraphs = [p for p in paragraphs if p]
    return "\n\n".join(paragraphs) if paragraphs else " ".join("".join(element.itertext()).split())


class _FeedInfo:
    """What a feed says about itself before its items: its title and language."""

    def __init__(self, outlet: str | None):
        self.outlet = outlet
        self.title: str | None = None
        self.language: str | None = None

    @property
    def who(self) -> str:
        return self.outlet or self.title or "unknown outlet"


def _rss_item(element, feed: str, info: _FeedInfo, where: str) -> NewsItem | Problem:
    title = plain_line(_text(element, "title"))
    encoded = [c for c in element if _local(c.tag) == "encoded"]
    body = (encoded[0].text or "") if encoded else _text(element, "description")
    guid = _text(element, "guid") or None
    link = _text(element, "link") or None
    guid_element = _children(element, "guid")
    if not link and guid and guid_element and guid_element[0].get("isPermaLink", "true").lower() == "true" \
            and guid.startswith(("http://", "https://")):
        link = guid  # RSS: a guid is the item's URL unless it says otherwise
    raw_date = _text(element, "pubDate") or _text(element, "date")  # dc:date
    authors = [plain_line(a.text) for a in element if _local(a.tag) in ("author", "creator") and a.text]
    return _item(feed, info, title, body, guid, link, raw_date, authors, where, info.language)


def _atom_entry(element, feed: str, info: _FeedInfo, where: str) -> NewsItem | Problem:
    title = plain_line(_atom_text(_children(element, "title")))
    contents = _children(element, "content") or _children(element, "summary")
    body = _atom_text(contents)
    link = None
    for candidate in _children(element, "link"):
        if candidate.get("rel", "alternate") == "alternate" and candidate.get("href"):
            link = candidate.get("href").strip()
            break
    raw_date = _text(element, "published") or _text(element, "updated")
    authors = [plain_line(_text(a, "name")) for a in _children(element, "author") if _text(a, "name")]
    language = language_code(element.get(XML_LANG)) or info.language
    return _item(feed, info, title, body, _text(element, "id") or None, link, raw_date, authors, where, language)


def _atom_text(found: list) -> str:
    """The text of an Atom text construct: type text, html (escaped markup)
    or xhtml (markup inside a div)."""
    if not found:
        return ""
    element = found[0]
    if element.get("type") == "xhtml":
        return html.escape(_xhtml_text(element), quote=False)  # body_blocks unescapes plain text
    return element.text or ""


def _item(feed, info, title, body, guid, link, raw_date, authors, where, language) -> NewsItem | Problem:
    blocks = body_blocks(body)
    if not title and not blocks:
        return Problem(where, "has neither a title nor any text; skipped")
    published = parse_date(raw_date)
    item = NewsItem(feed=feed, outlet=info.who, title=title or _first_words(blocks), blocks=blocks,
                    guid=guid, url=link, published=published, authors=[a for a in authors if a],
                    language=language, location=where)
    if raw_date and published is None:
        item.metadata["unreadable_date"] = raw_date[:80]
    return item


def _first_words(blocks: list[Block], words: int = 12) -> str:
    text = blocks[0].text.split() if blocks else []
    return " ".join(text[:words]) + (" …" if len(text) > words else "")


def _reuters_item(element, feed: str, info: _FeedInfo, where: str) -> NewsItem | Problem:
    return reuters_item(element, feed, where)


def _rcv1_item(element, feed: str, info: _FeedInfo, where: str) -> NewsItem | Problem:
    return rcv1_item(element, feed, where)


# root element -> (the element that is one item, how to read it)
FORMATS = {
    "rss": ("item", _rss_item),
    "RDF": ("item", _rss_item),  # RSS 1.0
    "feed": ("entry", _atom_entry),
    "LEWIS": ("REUTERS", _reuters_item),  # Reuters-21578, many articles in one file
    "REUTERS": ("REUTERS", _reuters_item),  # one article per file (as R's tm package ships them)
    "newsitem": ("newsitem", _rcv1_item),  # Reuters Corpus Volume 1
}


def iter_xml(stream, feed: str, location: str, outlet: str | None = None,
             max_mb: float = DEFAULT_MAX_MB) -> Iterator[NewsItem | Problem]:
    """Items of an XML feed read from a binary stream, one at a time, each
    forgotten once read. Raises SourceError for a feed that is not one, is
    malformed, uses entities, or passes `max_mb`."""
    info = _FeedInfo(outlet)
    capped = CappedReader(stream, int(max_mb * MB))
    item_tag, read_item = None, None
    stack: list = []
    count = 0
    try:
        for event, element in iterparse(capped, events=("start", "end")):
            name = _local(element.tag)
            if event == "start":
                if not stack:
                    if name not in FORMATS:
                        raise SourceError(location, f"is XML but not a feed this reader knows (its root "
                                                    f"element is <{name}>; RSS, Atom or Reuters XML expected)")
                    item_tag, read_item = FORMATS[name]
                    info.language = language_code(element.get(XML_LANG))
                stack.append(element)
                continue
            stack.pop()
            if name == item_tag:
                count += 1
                yield read_item(element, feed, info, f"{location}, item {count}")
                if stack:
                    stack[-1].remove(element)  # forget it: feeds can be long
                element.clear()
            elif name == "title" and stack and _local(stack[-1].tag) in ("channel", "feed") and info.title is None:
                info.title = plain_line(element.text if _local(stack[-1].tag) == "channel"
                                        else _atom_text([element])) or None
            elif name == "language" and stack and _local(stack[-1].tag) == "channel":
                info.language = language_code(element.text)
    except FeedTooLarge:
        raise too_large(location, max_mb) from None
    except ParseError as e:
        line, column = e.position
        reason = str(e).split(":")[0]
        raise SourceError(location, f"is not well-formed XML at line {line}, column {column} ({reason}); "
                                    "nothing of it was stored") from e
    except DefusedXmlException as e:
        raise SourceError(location, f"uses XML entities or a DTD, which are refused for safety ({e}); "
                                    "nothing of it was stored") from e
    except (EOFError, lzma.LZMAError) as e:
        raise SourceError(location, f"cannot be read to the end ({e}): truncated or damaged?") from e
    if item_tag is None:
        raise SourceError(location, "has no XML in it")


# --- JSON Lines ---------------------------------------------------------------------------------

OUTLET_FIELDS = ("outlet", "source", "publisher", "site", "site_name")


def iter_jsonl(stream, feed: str, location: str, outlet: str | None = None,
               max_mb: float = DEFAULT_MAX_MB) -> Iterator[NewsItem | Problem]:
    """Items of a JSON Lines article export (the fields of
    sources/articles.py, plus `outlet`), read line by line."""
    capped = io.BufferedReader(CappedReader(stream, int(max_mb * MB)))
    n = 0
    try:
        for n, raw in enumerate(capped, start=1):
            where = f"{location}, line {n}"
            if not raw.strip():
                continue
            try:
                record = json.loads(raw.decode("utf-8-sig"))
            except UnicodeDecodeError:
                yield Problem(where, "is not UTF-8; skipped")
                continue
            except json.JSONDecodeError as e:
                yield Problem(where, f"is not valid JSON ({e.msg} at column {e.colno}); skipped")
                continue
            if not isinstance(record, dict):
                yield Problem(where, "is not a JSON object; skipped")
                continue
            record = {str(k).lower(): v for k, v in record.items()}
            who = outlet or next((str(record[f]) for f in OUTLET_FIELDS if record.get(f)), None)
            info = _FeedInfo(plain_line(who) if who else None)
            body = first(record, "body")
            title = first(record, "title")
            date = first(record, "date")
            url = first(record, "url")
            item = _item(feed, info, plain_line(str(title)) if title else "", str(body) if body else "",
                         str(first(record, "id")) if first(record, "id") else None,
                         str(url) if url else None, str(date) if date else None,
                         [plain_line(a) for a in split_authors(first(record, "authors"))], where,
                         language_code(str(first(record, "language") or "")))
            yield item
    except FeedTooLarge:
        raise too_large(location, max_mb) from None
    if n == 0:
        raise SourceError(location, "is empty")


# --- dispatch -----------------------------------------------------------------------------------

def is_jsonl(name: str) -> bool:
    name = name.lower()
    for suffix in (".gz", ".bz2", ".xz"):
        name = name.removesuffix(suffix)
    return name.endswith(JSONL_SUFFIXES)


def read_stream(stream, name: str, feed: str, location: str, outlet: str | None = None,
                max_mb: float = DEFAULT_MAX_MB) -> Iterator[NewsItem | Problem]:
    reader = iter_jsonl if is_jsonl(name) else iter_xml
    yield from reader(stream, feed, location, outlet, max_mb)


def read_file(path: str | Path, feed: str | None = None, outlet: str | None = None,
              max_mb: float = DEFAULT_MAX_MB) -> Iterator[NewsItem | Problem]:
    """Items of a feed file (.xml/.rss/.atom, .jsonl; .gz/.bz2/.xz read as they are)."""
    from readingroom.corpus.textio import open_binary

    path = Path(path)
    if not path.exists():
        raise SourceError(path, "does not exist")
    if path.is_dir():
        raise SourceError(path, "is a folder, not a feed file")
    if path.stat().st_size == 0:
        raise SourceError(path, "is empty")
    try:
        with open_binary(path) as f:
            yield from read_stream(f, path.name, feed or str(path), str(path), outlet, max_mb)
    except OSError as e:  # a damaged .gz, a file that vanished
        raise SourceError(path, f"cannot be read ({e})") from e
