"""Readers: one module per input format, each turning a file into Documents.

A reader is a function `read(path, key, options) -> Iterator[Document |
Problem]`. `key` is the file's machine-independent name (its path relative to
what was ingested). A reader raises SourceError when the whole file is
unusable, and yields a Problem for a record it skips inside a container (a
wiki page, a line of an export) so that the rest still goes in.

`read_paths()` walks files and folders, picks the reader by file suffix,
applies a manifest's metadata, and turns every failure into a Problem that
names the file, so one bad file never stops a batch.
"""
from __future__ import annotations

import csv
import importlib
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from readingroom.corpus.document import Document, split_authors
from readingroom.corpus.textio import DEFAULT_MAX_MB, SourceError, logical_suffix, read_text
from readingroom.dates import iso_date, parse_year


@dataclass(frozen=True)
class Problem:
    location: str
    message: str
    level: str = "error"  # "error": not ingested; "warning": ingested, but look

    def __str__(self):
        return f"{self.location}: {self.message}"


def text_and_problems(path: Path) -> tuple[str | None, list[Problem]]:
    """A package file's text (None when unreadable) and the Problems to report:
    the reason it could not be read, or the warnings of decoding it."""
    try:
        text, warnings = read_text(path)
    except SourceError as e:
        return None, [Problem(e.location, e.problem)]
    return text, [Problem(str(path), w, "warning") for w in warnings]


@dataclass
class ReadOptions:
    max_mb: float = DEFAULT_MAX_MB  # per document
    manifest: dict[str, dict] = field(default_factory=dict)  # file name -> metadata


# Suffix -> reader module. Modules are imported when a file needs them, so a
# folder of plain text does not pay for loading the PDF and EPUB libraries.
READERS = {
    ".txt": "text", ".text": "text",
    ".md": "markdown", ".markdown": "markdown",
    ".html": "html", ".htm": "html", ".xhtml": "html",
    ".epub": "epub",
    ".pdf": "pdf",
    ".xml": "mediawiki",
    ".jsonl": "articles", ".ndjson": "articles", ".csv": "articles",
}


def reader_for(suffix: str):
    module = READERS.get(suffix)
    return importlib.import_module(f"{__name__}.{module}").read if module else None


def supported_suffixes() -> list[str]:
    return sorted(READERS)


# --- manifests ---------------------------------------------------------------
MANIFEST_NAME = "manifest.csv"


def load_manifest(path: Path) -> dict[str, dict]:
    """A CSV with a `file` column and metadata columns (author, title, year or
    year_written, date, language, anything else goes into metadata).
    Several authors are separated by ';'."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            rows = list(csv.DictReader(f))
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise SourceError(path, f"cannot be read as a manifest CSV: {e}") from e
    if not rows or "file" not in rows[0]:
        raise SourceError(path, "is not a manifest: it needs a 'file' column naming each text")
    manifest = {}
    for n, row in enumerate(rows, start=2):
        name = (row.pop("file") or "").strip()
        if not name:
            raise SourceError(f"{path}, line {n}", "has no file name")
        manifest[name] = {k.strip(): (v or "").strip() for k, v in row.items() if k}
    return manifest


def is_manifest(path: Path) -> bool:
    if path.suffix.lower() != ".csv":
        return False
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            header = next(csv.reader(f), [])
    except (OSError, UnicodeDecodeError, csv.Error):
        return False
    return "file" in [h.strip() for h in header]


def apply_metadata(doc: Document, row: dict) -> Document:
    """Manifest values win over what the reader found in the file."""
    row = dict(row)
    if row.get("title"):
        doc.title = row.pop("title")
    authors = row.pop("author", "") or row.pop("authors", "")
    if authors:
        doc.authors = split_authors(authors)
    year = row.pop("year", "") or row.pop("year_written", "")
    if year:
        doc.year = parse_year(year)
    if row.get("date"):
        date = row.pop("date")
        doc.date = iso_date(date)
        doc.year = doc.year or parse_year(date)
    if row.get("language"):
        doc.language = row.pop("language").lower()
    if row.get("url"):
        doc.url = row.pop("url")
    doc.metadata.update({k: v for k, v in row.items() if v})
    return doc


# --- walking -----------------------------------------------------------------
def iter_files(paths: Iterable[str | Path]) -> Iterator[tuple[Path, str]]:
    """(file, key) for each file named or found under a named folder, in a
    stable order. Hidden files and folders are skipped."""
    for given in paths:
        given = Path(given)
        if given.is_dir():
            for dirpath, dirnames, filenames in os.walk(given):
                dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
                for name in sorted(filenames):
                    if not name.startswith("."):
                        f = Path(dirpath) / name
                        yield f, f.relative_to(given).as_posix()
        else:
            yield given, given.name


@dataclass(frozen=True)
class FileToRead:
    """A file that read_paths reads: where it is, its key, the manifest
    row that applies to it (None: none does)."""

    file: Path
    key: str
    row: dict | None = None


def files_to_read(
    paths: Iterable[str | Path],
    manifest: Path | None = None,
) -> Iterator[FileToRead | Problem]:
    """What read_paths reads, in its order, without reading it: each file
    with its manifest row, and a Problem for each path or file that cannot
    be read at all (missing, an unsupported type, a bad manifest). A
    cluster's workers read the files themselves (library/sharded_ingest.py)."""
    paths = [Path(p) for p in paths]
    rows: dict[str, dict] = {}
    if manifest:
        rows.update(load_manifest(Path(manifest)))
    for path in paths:
        if not path.exists():
            yield Problem(str(path), "does not exist")
            continue
        local = path / MANIFEST_NAME if path.is_dir() else None
        if local and local.exists() and not manifest:
            try:
                rows.update(load_manifest(local))
            except SourceError as e:
                yield Problem(e.location, e.problem)
        for file, key in iter_files([path]):
            if file.name == MANIFEST_NAME or (manifest and file.resolve() == Path(manifest).resolve()):
                continue
            if is_manifest(file):
                continue
            if reader_for(logical_suffix(file)) is None:
                yield Problem(
                    str(file),
                    f"unsupported file type '{logical_suffix(file) or file.name}' "
                    f"(supported: {', '.join(supported_suffixes())}, optionally .gz/.bz2/.xz)",
                )
                continue
            yield FileToRead(file, key, rows.get(key) or rows.get(file.name))


def read_file(item: FileToRead, max_mb: float = DEFAULT_MAX_MB) -> Iterator[Document | Problem]:
    """The documents of one file, and a Problem for what cannot be read."""
    reader = reader_for(logical_suffix(item.file))
    yield from _read_one(reader, item.file, item.key, ReadOptions(max_mb=max_mb), item.row)


def read_paths(
    paths: Iterable[str | Path],
    manifest: Path | None = None,
    max_mb: float = DEFAULT_MAX_MB,
) -> Iterator[Document | Problem]:
    """Documents from files and folders; a Problem for each file (or record)
    that cannot be read. A `manifest.csv` found in a folder applies to it."""
    for item in files_to_read(paths, manifest):
        if isinstance(item, Problem):
            yield item
        else:
            yield from read_file(item, max_mb)


def _read_one(reader, file: Path, key: str, options: ReadOptions, row: dict | None):
    try:
        for item in reader(file, key, options):
            if isinstance(item, Document):
                item.location = item.location or str(file)
                if row:
                    apply_metadata(item, row)
            yield item
    except SourceError as e:
        yield Problem(e.location, e.problem)
    except RecursionError:
        yield Problem(str(file), "is nested too deeply to parse")
    except MemoryError:
        yield Problem(str(file), "is too large to parse in memory")
    except Exception as e:  # a parser's own error: report it, go on with the batch
        yield Problem(str(file), f"could not be read ({type(e).__name__}: {e})")
