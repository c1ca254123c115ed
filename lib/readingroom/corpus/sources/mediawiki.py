"""MediaWiki XML exports: one document per article.

Reads what Special:Export, ProleWiki and Wikipedia dumps produce (any export
schema version, plain or .gz/.bz2/.xz). Dumps can be far larger than memory,
so the XML is streamed and each page is forgotten once it is read; a page is
yielded as soon as it is complete, so a truncated dump still gives the pages
before the break, and then the error.

Only articles (namespace 0) are read; redirects are skipped. Wikitext becomes
plain text with mwparserfromhell: templates, references, tables, files and
categories are dropped, list items become paragraphs of their own, and the
headings (== H2 ==, === H3 ===) become the section path. A block's anchor is
its heading with spaces as underscores, as MediaWiki makes its own anchors,
so '<article url>#<anchor>' opens the section.
"""
from __future__ import annotations

import lzma
import re
from pathlib import Path
from urllib.parse import quote
from xml.etree.ElementTree import ParseError

import mwparserfromhell
from defusedxml import DefusedXmlException
from defusedxml.ElementTree import iterparse
from mwparserfromhell.nodes import Heading
from mwparserfromhell.wikicode import Wikicode

from readingroom.corpus.document import Block, Document
from readingroom.corpus.textio import SourceError, open_binary
from readingroom.corpus.sources import Problem
from readingroom.corpus.sources.html import language_code
from readingroom.dates import date_and_year

XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
# Namespace numbers whose links put something on the page other than text.
FILE_NAMESPACES = {"6", "14", "-2"}  # File, Category, Media
DEFAULT_FILE_PREFIXES = {"file", "image", "media", "category"}
INTERLANGUAGE_PREFIX = re.compile(r"[a-z]{2,3}(?:-[a-z]+)*")
DROPPED_TAGS = {"ref", "references", "gallery", "table", "imagemap", "timeline", "templatedata"}
LIST_MARKUP = {"*", "#", ";", ":"}
# Appendix sections: lists of citations and links, not text to read.
APPENDIX_SECTIONS = {"references", "notes", "footnotes", "citations", "external links", "see also"}
BEHAVIOUR_SWITCH = re.compile(r"__[A-Z]+__")  # __NOTOC__ and the like
PARAGRAPH_BREAK = re.compile(r"\n\s*\n")
REDIRECT = re.compile(r"\s*#REDIRECT", re.I)


def _local(tag: str) -> str:
    """'page' from '{http://www.mediawiki.org/xml/export-0.11/}page'."""
    return tag.rsplit("}", 1)[-1]


def _child(element, name: str):
    for child in element:
        if _local(child.tag) == name:
            return child
    return None


def _child_text(element, name: str) -> str:
    child = _child(element, name)
    return (child.text or "").strip() if child is not None else ""


def article_url_prefix(base: str) -> str | None:
    """'https://en.prolewiki.org/wiki/' from the main page's URL in <base>,
    'https://w.org/index.php?title=' from an index.php URL."""
    if not base:
        return None
    if "title=" in base:
        return base[: base.index("title=") + len("title=")]
    return base.rsplit("/", 1)[0] + "/" if "/" in base else None


def article_url(prefix: str | None, title: str) -> str | None:
    return prefix + quote(title.replace(" ", "_"), safe=";:@$!*(),/~'") if prefix else None


class SiteInfo:
    def __init__(self, key: str):
        self.name = key  # until <siteinfo> names the wiki
        self.url_prefix: str | None = None
        self.language: str | None = None
        self.namespaces: dict[str, str] = {}  # lower-case name -> number
        self.file_prefixes = set(DEFAULT_FILE_PREFIXES)

    def read(self, element):
        self.name = _child_text(element, "sitename") or self.name
        self.url_prefix = article_url_prefix(_child_text(element, "base"))
        namespaces = _child(element, "namespaces")
        for ns in namespaces if namespaces is not None else ():
            name = (ns.text or "").strip().lower()
            if name:
                self.namespaces[name] = ns.get("key", "")
                if ns.get("key") in FILE_NAMESPACES:
                    self.file_prefixes.add(name)

    def namespace_of(self, title: str) -> str:
        """The namespace number from a title's prefix, for old exports without <ns>."""
        prefix = title.split(":", 1)[0].strip().lower() if ":" in title else ""
        return self.namespaces.get(prefix, "0")


def _drop_markup(wikicode: Wikicode, site: SiteInfo) -> None:
    """Remove what is not running text, and make list items paragraphs."""
    for tag in wikicode.filter_tags(recursive=True):
        name = str(tag.tag).strip().lower()
        try:
            if name in DROPPED_TAGS:
                wikicode.remove(tag)
            elif tag.wiki_markup in LIST_MARKUP:
                wikicode.replace(tag, "\n\n")
        except ValueError:  # inside something already removed
            pass
    for link in wikicode.filter_wikilinks(recursive=True):
        target = str(link.title).strip()
        if target.startswith(":") or ":" not in target:
            continue  # '[[:Category:X]]' is an ordinary link to that page
        prefix = target.split(":", 1)[0].strip()
        is_file = prefix.lower() in site.file_prefixes
        is_interlanguage = (
            link.text is None and INTERLANGUAGE_PREFIX.fullmatch(prefix) and prefix not in site.namespaces
        )
        if is_file or is_interlanguage:
            try:
                wikicode.remove(link)
            except ValueError:
                pass


def _plain(nodes: list) -> list[str]:
    text = Wikicode(nodes).strip_code(normalize=True, collapse=True)
    text = BEHAVIOUR_SWITCH.sub("", text)
    return [" ".join(p.split()) for p in PARAGRAPH_BREAK.split(text) if p.strip()]


def wikitext_blocks(wikitext: str, site: SiteInfo) -> list[Block]:
    """Blocks of a page's text, each with its section path and anchor."""
    wikicode = mwparserfromhell.parse(wikitext)
    _drop_markup(wikicode, site)
    blocks: list[Block] = []
    headings: list[tuple[int, str]] = []  # (level, heading), the current section path
    chunk: list = []

    def flush():
        section = tuple(title for _, title in headings)
        skipped = bool(section) and section[-1].lower() in APPENDIX_SECTIONS
        if chunk and not skipped:
            anchor = section[-1].replace(" ", "_") if section else None
            blocks.extend(Block(p, section, anchor) for p in _plain(chunk))
        chunk.clear()

    for node in wikicode.nodes:
        if isinstance(node, Heading):
            flush()
            title = " ".join(node.title.strip_code().split())
            if title:
                headings[:] = [(lvl, t) for lvl, t in headings if lvl < node.level]
                headings.append((node.level, title))
        else:
            chunk.append(node)
    flush()
    return blocks


def _latest_revision(revision, latest: dict | None) -> dict | None:
    """The newer of a <revision> and the newest one seen so far on the page."""
    timestamp = _child_text(revision, "timestamp")
    if latest is not None and timestamp < latest["timestamp"]:
        return latest
    text = _child(revision, "text")
    return {
        "timestamp": timestamp,
        "id": _child_text(revision, "id"),
        "model": _child_text(revision, "model") or "wikitext",
        "text": (text.text or "") if text is not None else "",
    }


def _page_document(page, revision: dict | None, site: SiteInfo, path: Path):
    """A Document for an article page, a Problem for one with no text, None
    for anything that is not an article."""
    title = _child_text(page, "title")
    ns = _child_text(page, "ns") or site.namespace_of(title)
    if not title or ns != "0" or _child(page, "redirect") is not None or revision is None:
        return None
    if revision["model"] != "wikitext" or REDIRECT.match(revision["text"]):
        return None
    blocks = wikitext_blocks(revision["text"], site)
    if not blocks:
        return Problem(f"{path}: page '{title}'", "has no text", level="warning")
    date, year = date_and_year(revision["timestamp"])
    return Document(
        source="mediawiki",
        key=f"{site.name}/{title}",
        title=title,
        blocks=blocks,
        year=year,
        date=date,
        language=site.language,
        url=article_url(site.url_prefix, title),
        metadata={
            k: v
            for k, v in {"wiki": site.name, "page_id": _child_text(page, "id"),
                         "revision_id": revision["id"]}.items()
            if v
        },
    )


def read(path: Path, key: str, options):
    if path.stat().st_size == 0:
        raise SourceError(path, "is empty")
    site = SiteInfo(key)
    root = None
    latest = None  # newest revision of the page being read
    try:
        with open_binary(path) as f:
            for event, element in iterparse(f, events=("start", "end")):
                name = _local(element.tag)
                if event == "start":
                    if root is None:
                        if name != "mediawiki":
                            raise SourceError(
                                path, f"is XML but not a MediaWiki export (root element is <{name}>)"
                            )
                        root = element
                        site.language = language_code(element.get(XML_LANG) or element.get("lang"))
                    elif name == "page":
                        latest = None
                    continue
                if name == "siteinfo":
                    site.read(element)
                    root.clear()
                elif name == "revision":
                    latest = _latest_revision(element, latest)
                    element.clear()  # a full-history dump holds many per page
                elif name == "page":
                    item = _page_document(element, latest, site, path)
                    root.clear()  # forget the page: dumps do not fit in memory
                    if item is not None:
                        yield item
    except ParseError as e:
        line, column = e.position
        reason = str(e).split(":")[0]
        raise SourceError(
            path, f"is not well-formed XML at line {line}, column {column} ({reason}): truncated or damaged?"
        ) from e
    except DefusedXmlException as e:
        raise SourceError(path, f"uses XML entities or a DTD, which are refused for safety ({e})") from e
    except (EOFError, OSError, lzma.LZMAError) as e:  # a truncated .gz/.bz2/.xz stream
        raise SourceError(path, f"cannot be read to the end ({e}): truncated or damaged?") from e
    if root is None:
        raise SourceError(path, "has no XML in it")
