"""Ingestion on a Dask cluster: the workers read, clean, fingerprint and
split the files and write what they made as Parquet shards; the client
merges the shards into the library in the order of the files.

    client: walk the paths (stat only) -> tasks of ~32 MB of files
    worker: each task -> read_file, without_controls, fingerprint, split
            -> <shards>/ingest/<key>/{documents,passages,problems}.parquet
    client: shards in the files' order -> the decisions ingest() makes
            (unchanged, same text as another, nothing to store) -> one
            transaction per shard: INSERT ... SELECT FROM read_parquet

What is stored is what `ingest_paths` stores in one process, ids included:
the workers do the same steps to each document, and the client decides
what to keep in the same order with the same rules, so the first document
with a text is the one kept, as it would be here. The text travels once,
from the worker's disk to the shard to DuckDB, never as Python strings on
the client, which only sees each document's ids and counts.

A task's key is the sha256 of what decides its shard: each file's path,
key, size, modification time and manifest row, the problems of the walk,
the splitter's settings and the size limit. A stopped run, started again,
finds the shards of the tasks it finished (or that were still running when
it stopped and finished since) and does only the rest; merging a shard
again changes nothing (its documents are then unchanged). Shards stay after
the merge, so that another run or another library skips the parsing too;
delete the folder to reclaim the space (a changed file makes a new key, so
old shards are never merged by mistake, only left behind). A change to a
reader's code is not in the key: delete the folder after upgrading.

The files must be at the same path on every machine (a shared disk), and
so must the shard folder. Paths are made absolute for that, so the
locations stored are absolute where a local run keeps them as given.
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from tqdm.auto import tqdm

from readingroom.corpus.passages import Splitter
from readingroom.corpus.sources import FileToRead, Problem, files_to_read, read_file
from readingroom.corpus.textio import DEFAULT_MAX_MB
from readingroom.library.ingest import Admission, IngestReport, split, without_controls
from readingroom.library.store import Library, Stored, _documents_table, _passages_table
from readingroom.shards import ShardFolder, in_order

SHARD_FORMAT = "1"  # bump when what a shard holds changes
TASK_BYTES = 32_000_000  # a task reads ~32 MB of files (one larger file is a task of its own)
TASK_FILES = 512
FLUSH_CHARS = 8_000_000  # a worker writes a Parquet row group every ~8 MB of text: its memory stays bounded


@dataclass
class IngestTask:
    key: str  # names its shard
    root: str  # the shard folder, as every machine sees it
    entries: list[FileToRead | Problem]
    splitter: Splitter
    max_mb: float


@dataclass
class ShardRun:
    """What the shards of a run were: how many tasks, how many this run
    did, and how many it found done by an earlier one."""

    folder: str
    tasks: int = 0
    computed: int = 0
    reused: int = 0

    def summary(self) -> str:
        return (f"{self.tasks} shards in {self.folder}: {self.computed} made by this run, "
                f"{self.reused} found from an earlier one")


@dataclass
class ClusterIngest:
    report: IngestReport
    shards: ShardRun = field(default_factory=lambda: ShardRun(""))


def plan(paths: Iterable[str | Path], root: str | Path, splitter: Splitter, manifest: str | Path | None = None,
         max_mb: float = DEFAULT_MAX_MB, task_bytes: int = TASK_BYTES) -> list[IngestTask]:
    """The tasks, in the files' order: ~task_bytes of files each (by their
    size on disk), the walk's problems in their place among them."""
    paths = [Path(p).absolute() for p in paths]
    manifest = Path(manifest).absolute() if manifest else None
    tasks, entries, described, size = [], [], [], 0

    def close():
        key = hashlib.sha256(json.dumps(
            [SHARD_FORMAT, splitter.signature, max_mb, described], ensure_ascii=False, default=str).encode()
        ).hexdigest()
        tasks.append(IngestTask(key, str(root), entries, splitter, max_mb))

    for entry in files_to_read(paths, manifest):
        if isinstance(entry, Problem):
            described.append([entry.location, entry.message, entry.level])
        else:
            stat = entry.file.stat()
            described.append([str(entry.file), entry.key, stat.st_size, stat.st_mtime_ns, entry.row])
            size += stat.st_size
        entries.append(entry)
        if size >= task_bytes or len(entries) >= TASK_FILES:
            close()
            entries, described, size = [], [], 0
    if entries:
        close()
    return tasks


# --- on a worker ------------------------------------------------------------------
def ingest_task(task: IngestTask) -> None:
    """Read, clean, fingerprint and split the task's files, as ingest() does
    to each document, and write the shard. `seq` numbers the documents and
    problems in the order they came, for the merge."""
    with ShardFolder(task.root).writing(task.key) as folder:
        writer = _ShardWriter(folder)
        seq = 0
        for entry in task.entries:
            for item in [entry] if isinstance(entry, Problem) else read_file(entry, task.max_mb):
                if isinstance(item, Problem):
                    writer.problems.append((seq, item))
                else:
                    doc = without_controls(item)
                    fingerprint = doc.fingerprint(task.splitter.signature)  # before the language is detected
                    writer.add(seq, Stored(doc, fingerprint, split(doc, task.splitter)[1]))
                seq += 1
        writer.close()


class _ShardWriter:
    """documents.parquet and passages.parquet in the library's columns (as
    Library.store writes them) with `seq`, written a row group at a time;
    problems.parquet at the end."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.batch: list[Stored] = []
        self.seqs: list[int] = []
        self.chars = 0
        self.writers: dict[str, pq.ParquetWriter] = {}
        self.problems: list[tuple[int, Problem]] = []

    def add(self, seq: int, stored: Stored) -> None:
        self.batch.append(stored)
        self.seqs.append(seq)
        self.chars += len(stored.document.text)
        if self.chars >= FLUSH_CHARS:
            self.flush()

    def flush(self) -> None:
        counts = [len(s.passages) for s in self.batch]
        passage_seqs = [seq for seq, n in zip(self.seqs, counts) for _ in range(n)]
        self._write("documents", _documents_table(self.batch).append_column("seq", pa.array(self.seqs, pa.int64())))
        self._write("passages", _passages_table(self.batch).append_column("seq", pa.array(passage_seqs, pa.int64())))
        self.batch, self.seqs, self.chars = [], [], 0

    def _write(self, name: str, table: pa.Table) -> None:
        # A column with no value in this batch comes out of Arrow as null;
        # every such column of the library's is text.
        table = table.cast(pa.schema([pa.field(f.name, pa.string()) if pa.types.is_null(f.type) else f
                                      for f in table.schema]))
        if name not in self.writers:
            self.writers[name] = pq.ParquetWriter(self.folder / f"{name}.parquet", table.schema, compression="zstd")
        self.writers[name].write_table(table)

    def close(self) -> None:
        if self.batch or not self.writers:
            self.flush()
        for writer in self.writers.values():
            writer.close()
        pq.write_table(pa.table({
            "seq": pa.array([seq for seq, _ in self.problems], pa.int64()),
            "location": pa.array([p.location for _, p in self.problems], pa.string()),
            "message": pa.array([p.message for _, p in self.problems], pa.string()),
            "level": pa.array([p.level for _, p in self.problems], pa.string()),
        }), self.folder / "problems.parquet")


# --- on the client ------------------------------------------------------------------
class _Merger:
    """The decisions of ingest(), made on each shard's document rows in
    order, and the rows kept copied from the shard in one transaction."""

    def __init__(self, library: Library, report: IngestReport):
        self.library = library
        self.report = report
        self.admission = Admission(library, report)

    def merge(self, folder: Path) -> None:
        con = self.library.con
        documents, passages = str(folder / "documents.parquet"), str(folder / "passages.parquet")
        rows = con.execute(
            "SELECT seq, doc_id, fingerprint, content_sha256, coalesce(nullif(location, ''), key), n_passages, "
            "n_chars FROM read_parquet(?)", [documents]).fetchall()
        problems = con.execute("SELECT seq, location, message, level FROM read_parquet(?)",
                               [str(folder / "problems.parquet")]).fetchall()
        events = sorted([(seq, Problem(*rest)) for seq, *rest in problems] + [(row[0], row) for row in rows],
                        key=lambda event: event[0])
        kept: list[int] = []
        replaced: list[str] = []  # stored before: its old rows go
        for _, event in events:
            if isinstance(event, Problem):
                self.report.problems.append(event)
                continue
            stored_before = event[1] in self.admission.fingerprints
            if self._keep(*event[1:]):
                kept.append(event[0])
                if stored_before:
                    replaced.append(event[1])
        if not kept:
            return
        columns = [name for name in pq.read_schema(documents).names if name != "seq"]
        passage_columns = [name for name in pq.read_schema(passages).names if name != "seq"]
        with self.library.transaction():
            if replaced:
                con.execute("DELETE FROM passages WHERE doc_id IN (SELECT unnest(?))", [replaced])
                con.execute("DELETE FROM documents WHERE doc_id IN (SELECT unnest(?))", [replaced])
            con.execute("CREATE OR REPLACE TEMP TABLE kept AS SELECT unnest(?::BIGINT[]) AS seq", [kept])
            con.execute(f"INSERT INTO documents ({', '.join(columns)}) SELECT {', '.join(columns)} "
                        "FROM read_parquet(?) SEMI JOIN kept USING (seq) ORDER BY seq", [documents])
            con.execute(f"INSERT INTO passages ({', '.join(passage_columns)}) SELECT {', '.join(passage_columns)} "
                        "FROM read_parquet(?) SEMI JOIN kept USING (seq) ORDER BY seq, ordinal", [passages])
            con.execute("DROP TABLE kept")

    def _keep(self, doc_id, fingerprint, content_sha256, where, n_passages, n_chars) -> bool:
        return (self.admission.is_new(doc_id, fingerprint, content_sha256, where)
                and self.admission.admit(doc_id, fingerprint, content_sha256, where, n_passages, n_chars))


def ingest_on_cluster(
    library: Library,
    paths: Iterable[str | Path],
    executor,
    shards: str | Path | None = None,
    workers: int = 1,
    manifest: str | Path | None = None,
    max_mb: float = DEFAULT_MAX_MB,
    splitter: Splitter | None = None,
    progress: bool = True,
    task_bytes: int = TASK_BYTES,
) -> ClusterIngest:
    """Ingest files and folders on `executor` (a Dask cluster's, from
    workers.cluster, with its `workers`), through shards in `shards`
    (default: beside the library, <library>.shards/ingest)."""
    root = Path(shards).absolute() if shards else default_shards(library)
    folder = ShardFolder(root / "ingest")
    tasks = plan(paths, folder.root, splitter or Splitter(), manifest, max_mb, task_bytes)
    report = IngestReport()
    run = ShardRun(str(folder.root), tasks=len(tasks))
    merger = _Merger(library, report)
    bar = tqdm(total=len(tasks), unit="shard", desc="ingesting on the cluster", disable=not progress)
    try:
        for done in in_order(folder, tasks, lambda t: t.key, ingest_task, executor, workers):
            merger.merge(folder.path(done.task.key))
            run.computed += done.computed
            run.reused += not done.computed
            bar.update()
            bar.set_postfix_str(f"{report.characters / 1e6:.1f} M chars, {run.reused} shards found", refresh=False)
    finally:
        bar.close()
    return ClusterIngest(report, run)


def default_shards(library: Library) -> Path:
    """<library file>.shards/ beside the library: the folder must be one
    that every worker sees, at the same path."""
    return library.path.absolute().with_name(library.path.name + ".shards")

