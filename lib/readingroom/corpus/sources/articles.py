"""Article exports: JSON Lines or CSV, one article per record, with a body
and whatever of title, author(s), date, url and language the export has.

Field names vary between exporters, so each field is looked for under its
common names (body/text/content, author/authors/byline, date/published ...).
A record without a body is reported and skipped; the rest of the file goes in.
The document key is the export file's own key with the article's URL (or
id, or line): reading the same export again updates its documents, and an
export from elsewhere that names the same URL never silently replaces them.
Exports are read as a stream, a record at a time, each capped at the limit
for one document.
"""
from __future__ import annotations

import csv
import io
import json
import lzma
import sys
from pathlib import Path

from readingroom.corpus.document import Document, split_authors
from readingroom.corpus.textio import MB, SourceError, guess_encoding, open_binary
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
    """(line number, record or error message) for each record of the file,
    read as a stream: an export may be far larger than memory, each record
    must fit the limit for one document, and a bad record (not JSON, nested
    too deeply, too long) is a message for its line, never the file's end."""
    limit = int(max_mb * MB)
    if path.stat().st_size == 0:
        raise SourceError(path, "is empty")
    try:
        with open_binary(path) as raw:
            if path.name.lower().endswith((".csv", ".csv.gz", ".csv.bz2", ".csv.xz")):
                yield from _csv_records(raw, path, limit)
            else:
                yield from _jsonl_records(raw, path, max_mb)
    except (OSError, EOFError, lzma.LZMAError) as e:  # a damaged .gz/.bz2/.xz
        raise SourceError(path, f"cannot be read to the end ({e}): truncated or damaged?") from e


def capped_lines(raw, limit: int):
    """(line number, bytes of the line, or None for a line over `limit`
    bytes, which is skipped without being held in memory)."""
    n = 0
    while line := raw.readline(limit + 1):
        n += 1
        if len(line) > limit and not line.endswith(b"\n"):
            while (rest := raw.readline(64 * 1024)) and not rest.endswith(b"\n"):
                pass
            yield n, None
            continue
        yield n, line


def parse_json_line(line: bytes):
    """A JSON object from one line, or a message saying why not."""
    try:
        record = json.loads(line.decode("utf-8-sig"))
    except UnicodeDecodeError:
        return "is not UTF-8"
    except json.JSONDecodeError as e:
        return f"is not valid JSON ({e.msg} at column {e.colno})"
    except ValueError as e:  # a number of more than 4300 digits
        return f"is not JSON this reader takes ({e})"
    except RecursionError:
        return "is nested too deeply to read"
    if not isinstance(record, dict):
        return "is not a JSON object"
    return record


def _jsonl_records(raw, path: Path, max_mb: float):
    for n, line in capped_lines(raw, int(max_mb * MB)):
        if line is None:
            yield n, f"is over the {max_mb:g} MB limit for one record; skipped"
            continue
        if not line.strip():
            continue
        record = parse_json_line(line)
        yield n, record if isinstance(record, str) else {str(k).lower(): v for k, v in record.items()}


def _csv_records(raw, path: Path, limit: int):
    head = raw.peek(1 * MB)[: 1 * MB]
    encoding = "utf-8-sig"
    try:
        head.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        if e.start < len(head) - 3:  # not just a character cut at the end of the sample
            _, encoding = guess_encoding(head, path)
    text = io.TextIOWrapper(raw, encoding=encoding, newline="")
    csv.field_size_limit(min(sys.maxsize, limit))
    reader = csv.DictReader(text)
    last = 1  # the line the last good record ended on (the header's, first)
    try:
        for row in reader:
            last = reader.line_num
            yield last, {k.strip().lower(): v for k, v in row.items() if k}
    except csv.Error as e:
        raise SourceError(f"{path}, line {last + 1}", f"is not valid CSV ({e}); the records before it "
                                                      "were read") from e
    except UnicodeDecodeError as e:
        raise SourceError(f"{path}, line {last + 1}", f"is not {encoding} text ({e.reason}); the records "
                                                      "before it were read") from e


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
            # The export's own file in the key, also before a URL: a later export
            # from elsewhere never silently replaces these (the same text
            # twice is caught by ingest as a duplicate).
            key=f"{key}#{url or record_id or n}",
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
