"""The Reuters XML formats, read as feeds (feeds.FORMATS): a <REUTERS>
article of Reuters-21578 and the <newsitem> of Reuters Corpus Volume 1.
The offline sample that ships them is reuters.py."""
from __future__ import annotations

import re

from readingroom.corpus.document import Block
from readingroom.corpus.sources import Problem
from readingroom.dates import parse_date
from readingroom.news.items import NewsItem

OUTLET = "Reuters"
# Wire copy puts a tab-like indent before each paragraph and ends with "Reuter".
_PARAGRAPH = re.compile(r"\n\s{2,}")
_SIGN_OFF = re.compile(r"\s*\bReuter\s*$")
_BYLINE = re.compile(r"^\s*by\s+", re.IGNORECASE)


def _labels(element, name: str) -> list[str]:
    found = [c for c in element if c.tag == name]
    return [(d.text or "").strip() for d in found[0] if (d.text or "").strip()] if found else []


def wire_blocks(body: str) -> list[Block]:
    """Paragraphs of a wire story: each starts on an indented line; lines
    inside a paragraph are joined."""
    body = _SIGN_OFF.sub("", body.replace("\r", ""))
    return [Block(" ".join(p.split())) for p in _PARAGRAPH.split("\n" + body) if p.strip()]


def reuters_item(element, feed: str, where: str) -> NewsItem | Problem:
    """One <REUTERS> article of Reuters-21578."""
    newid = element.get("NEWID")
    text = next((c for c in element if c.tag == "TEXT"), None)

    def part(name):
        found = next((c for c in text if c.tag == name), None) if text is not None else None
        return " ".join((found.text or "").split()) if found is not None else ""

    title = part("TITLE")
    blocks = wire_blocks(next((c.text or "" for c in text if c.tag == "BODY"), "")) if text is not None else []
    if text is not None and not blocks and (text.text or "").strip():
        blocks = wire_blocks(text.text)  # TYPE="UNPROC" articles: the text without parts
    if not title and not blocks:
        return Problem(where, "has neither a title nor any text; skipped")
    byline = part("AUTHOR")
    raw_date = next((c.text or "" for c in element if c.tag == "DATE"), "").strip()
    item = NewsItem(
        feed=feed, outlet=OUTLET, title=title, blocks=blocks, guid=newid, published=parse_date(raw_date),
        authors=[_author(byline)] if byline else [], language="en", location=where,
        metadata={k: v for k, v in {
            "topics": _labels(element, "TOPICS"), "places": _labels(element, "PLACES"),
            "organisations": _labels(element, "ORGS"), "dateline": part("DATELINE").rstrip(" -"),
            "byline": byline}.items() if v},
    )
    if raw_date and item.published is None:
        item.metadata["unreadable_date"] = raw_date
    return item


def _author(byline: str) -> str:
    """'Ted D'Afflisio' from 'BY TED D'AFFLISIO, Reuters'."""
    name = _BYLINE.sub("", byline).split(",")[0].strip()
    return name.title() if name.isupper() else name


def rcv1_item(element, feed: str, where: str) -> NewsItem | Problem:
    """The <newsitem> of Reuters Corpus Volume 1."""
    def child(name):
        found = next((c for c in element if c.tag == name), None)
        return found

    headline = child("headline")
    title = " ".join((headline.text or "").split()) if headline is not None else ""
    text = child("text")
    blocks = [Block(" ".join(p.text.split())) for p in (text if text is not None else []) if (p.text or "").strip()]
    if not title and not blocks:
        return Problem(where, "has neither a title nor any text; skipped")
    dateline = child("dateline")
    codes = [c.get("code") for group in element.iter("codes") if "topics" in (group.get("class") or "")
             for c in group if c.get("code")]
    return NewsItem(
        feed=feed, outlet=OUTLET, title=title, blocks=blocks, guid=f"rcv1-{element.get('itemid')}",
        published=parse_date(element.get("date")), language="en", location=where,
        metadata={k: v for k, v in {"topics": codes, "dateline": (dateline.text or "").strip()
                                    if dateline is not None else ""}.items() if v},
    )
