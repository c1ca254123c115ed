"""Ingestion: documents in, passages stored, a report of what happened.

Idempotent: a document whose fingerprint (text, structure, metadata and
splitter settings) is already stored is skipped. Transactional: documents are
written in batches, each batch in one transaction, so a run that is killed
leaves every document either fully stored or absent, and the next run picks up
where it stopped. One bad file is a line in the report, never the end of the
batch.

Corpus text is untrusted: control characters (ESC, OSC and CSI sequences,
the C1 range) are stripped from titles, authors and text here, the one
path every document takes into the library, so nothing stored can drive a
terminal that prints it later.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from tqdm.auto import tqdm

from readingroom.corpus import corpora
from readingroom.corpus.document import Document
from readingroom.corpus.language import detect_language
from readingroom.library.store import Library, Stored
from readingroom.corpus.passages import Splitter
from readingroom.corpus.sources import Problem, iter_files, read_paths
from readingroom.corpus.textio import DEFAULT_MAX_MB, SourceError, strip_controls

BATCH_CHARS = 8_000_000  # a transaction every ~8 MB of text
BATCH_DOCS = 500


@dataclass
class IngestReport:
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped: int = 0  # duplicates and documents without passages
    passages: int = 0
    characters: int = 0
    problems: list[Problem] = field(default_factory=list)

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.level == "error"]

    def summary(self) -> str:
        lines = [
            f"{self.added} added, {self.updated} updated, {self.unchanged} unchanged, "
            f"{self.skipped} skipped; {self.passages} passages from "
            f"{self.characters / 1e6:.1f} M characters"
        ]
        for p in self.problems:
            lines.append(f"  {p.level}: {p}")
        return "\n".join(lines)


def without_controls(doc: Document) -> Document:
    """The document with control characters stripped from what a terminal
    may show: its title, authors, text, sections and metadata values."""
    doc.title = " ".join(strip_controls(doc.title).split()) or doc.key
    doc.authors = [a for a in (" ".join(strip_controls(a).split()) for a in doc.authors) if a]
    doc.blocks = [dataclasses.replace(b, text=strip_controls(b.text),
                                      section=tuple(strip_controls(s) for s in b.section))
                  for b in doc.blocks]
    doc.metadata = {k: strip_controls(v) if isinstance(v, str) else v for k, v in doc.metadata.items()}
    return doc


def ingest(
    library: Library,
    items: Iterable[Document | Problem],
    splitter: Splitter | None = None,
    progress: bool = True,
    total: int | None = None,
    batch_chars: int = BATCH_CHARS,
    batch_docs: int = BATCH_DOCS,
    then: Callable[[object, list[Stored]], None] | None = None,
) -> IngestReport:
    """Store documents (and collect problems) from any reader's output.
    `then(con, batch)`, if given, runs inside each batch's transaction with
    the documents stored by it (news writes its items there: an item and
    its document are stored together or not at all)."""
    splitter = splitter or Splitter()
    report = IngestReport()
    fingerprints = library.fingerprints()
    holder_of_text = library.documents_by_content()
    batch: list[Stored] = []
    batch_size = 0
    bar = tqdm(items, total=total, unit="file", desc="ingesting", disable=not progress)
    for item in bar:
        if isinstance(item, Problem):
            report.problems.append(item)
            continue
        doc = without_controls(item)
        fingerprint = doc.fingerprint(splitter.signature)
        previous = fingerprints.get(doc.doc_id)
        if previous == fingerprint:
            report.unchanged += 1
            continue
        holder = holder_of_text.get(doc.content_sha256)
        if holder and holder[0] != doc.doc_id:
            report.skipped += 1
            report.problems.append(Problem(
                doc.location or doc.key, f"has the same text as {holder[1]}; not added again", "warning"
            ))
            continue
        if doc.language is None:
            doc.language = detect_language(doc.text)
        passages = splitter.split(doc)
        if not passages:
            report.skipped += 1
            report.problems.append(Problem(doc.location or doc.key, "has no text to store", "warning"))
            continue
        batch.append(Stored(doc, fingerprint, passages))
        fingerprints[doc.doc_id] = fingerprint
        holder_of_text[doc.content_sha256] = (doc.doc_id, doc.location or doc.key)
        report.added += previous is None
        report.updated += previous is not None
        report.passages += len(passages)
        report.characters += len(doc.text)
        batch_size += len(doc.text)
        if batch_size >= batch_chars or len(batch) >= batch_docs:
            _store(library, batch, then)
            batch, batch_size = [], 0
        bar.set_postfix_str(f"{report.characters / 1e6:.1f} M chars", refresh=False)
    _store(library, batch, then)
    return report


def _store(library: Library, batch: list[Stored], then) -> None:
    if batch:
        library.store(batch, then=(lambda con: then(con, batch)) if then else None)


def ingest_paths(
    library: Library,
    paths: Iterable[str | Path],
    manifest: str | Path | None = None,
    max_mb: float = DEFAULT_MAX_MB,
    splitter: Splitter | None = None,
    progress: bool = True,
    **options,
) -> IngestReport:
    """Ingest files and folders (see sources.read_paths for what is read)."""
    paths = list(paths)
    total = sum(1 for _ in iter_files(paths)) if progress else None
    items = read_paths(paths, manifest=manifest, max_mb=max_mb)
    return ingest(library, items, splitter=splitter, progress=progress, total=total, **options)


def add_corpus(
    library: Library,
    name: str,
    package_file: str | Path | None = None,
    download: bool = True,
    splitter: Splitter | None = None,
    progress: bool = True,
) -> IngestReport:
    """Fetch (if needed) and ingest one of the registry corpora (corpora.CORPORA)."""
    corpus = corpora.get(name)
    folder = corpora.fetch(corpus, package_file=package_file, download=download)
    try:
        items = list(corpora.read(corpus, folder))  # a few hundred documents at most
    except SourceError as e:
        raise corpora.CorpusError(str(e)) from e
    return ingest(library, items, splitter=splitter, progress=progress, total=len(items))
