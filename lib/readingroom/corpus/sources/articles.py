"""Article exports: JSON Lines or CSV, one article per record, with a body
and whatever of title, author(s), date, url and language the export has.

Field names vary between exporters, so each field is looked for under its
common names (body/text/content, author/authors/byline, date/published ...).
A record without a body is reported and skipped; the rest of the file goes in.
The document key is the article's URL when it has one, so the same article
exported twice is the same document.
"""
from __future__ import annotations

import csv
import io
import json
import sys
from pathlib import Path

from readingroom.corpus.document import Document, split_authors
from readingroom.corpus.textio import MB, SourceError, decode, read_bytes
from readingroom.dates import iso_date, parse_year
from readingroom.corpus.sources import Problem
from readingroom.corpus.sources.text import paragraph_blocks

FIELDS = {
    "body": ("body", "text", "content", "article", "full_text"),
    "title": ("title", "headline", "name"),
    "authors": ("authors", "author", "byline", "creator"),
    "date": ("date", "published", "pubdate", "published_at", "datetime", "year"),
    "url": ("url", "link", "permalink"),
    "language": ("language", "lang"),
    "id": ("id", "guid", "uuid"),
}
KNOWN = {name for names in FIELDS.values() for name in names}


def first(record: dict, field: str):
    for name in FIELDS[field]:
        value = record.get(name)
        if value not in (None, "", []):
            return value
    return None


def records(path: Path, max_mb: float):
    """(line number, record or error message) for each record of the file.
    The whole export may be large; each record must fit the document limit."""
    # Exports are containers: allow them to be larger than one document.
    data = read_bytes(path, max_mb=max(max_mb * 50, 1024))
    text, _ = decode(data, path)
    if path.suffix.lower() == ".csv" or path.name.lower().endswith((".csv.gz", ".csv.bz2", ".csv.xz")):
        csv.field_size_limit(min(sys.maxsize, int(max_mb * MB)))
        try:
            for n, row in enumerate(csv.DictReader(io.StringIO(text)), start=2):
                yield n, {k.strip().lower(): v for k, v in row.items() if k}
        except csv.Error as e:
            raise SourceError(path, f"is not valid CSV: {e}") from e
        return
    for n, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as e:
            yield n, f"is not valid JSON ({e.msg} at column {e.colno})"
            continue
        if not isinstance(record, dict):
            yield n, "is not a JSON object"
            continue
        yield n, {str(k).lower(): v for k, v in record.items()}


def read(path: Path, key: str, options):
    found = 0
    for n, record in records(path, options.max_mb):
        where = f"{path}, line {n}"
        if isinstance(record, str):
            yield Problem(where, record)
            continue
        body = first(record, "body")
        if not isinstance(body, str) or not body.strip():
            yield Problem(where, "has no body text (looked for: " + ", ".join(FIELDS["body"]) + ")")
            continue
        if len(body) > options.max_mb * MB:
            yield Problem(where, f"has a body over the {options.max_mb:g} MB limit for one document")
            continue
        blocks = paragraph_blocks(body.replace("\r\n", "\n"), find_headings=False)
        url = first(record, "url")
        date = first(record, "date")
        record_id = first(record, "id")
        found += 1
        yield Document(
            source="articles",
            key=str(url or (f"{key}#{record_id}" if record_id else f"{key}#{n}")),
            title=str(first(record, "title") or f"{path.name}, line {n}"),
            blocks=blocks,
            authors=split_authors(first(record, "authors")),
            year=parse_year(date),
            date=iso_date(date),
            language=(str(first(record, "language")).lower()[:2] or None) if first(record, "language") else None,
            location=where,
            url=str(url) if url else None,
            metadata={k: v for k, v in record.items() if k not in KNOWN and _is_plain(v)},
        )
    if not found:
        raise SourceError(path, "has no article records with a body")


def _is_plain(value) -> bool:
    return isinstance(value, (str, int, float, bool)) and len(str(value)) < 2000
