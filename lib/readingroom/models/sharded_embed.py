"""Embedding on a Dask cluster: the workers encode chunks of passage texts
and write the vectors as Parquet shards; the client merges each shard into
the library in a transaction and then deletes it.

    client: the texts without a vector, longest first, in chunks
            (models.embed.missing_chunks: the chunks a local run makes)
    worker: a chunk -> encode_texts -> <shards>/vectors-<model>/<key>/vectors.parquet
    client: INSERT INTO embeddings SELECT ... FROM read_parquet ... ON CONFLICT DO NOTHING

The vectors are those of a local run: the same chunks go through the same
model with the same batch size (a worker refuses other weights). Only the
texts travel through the scheduler; the vectors, the larger part (1.5 KB a
passage for 384 dimensions), go from the worker to the shared folder.

A chunk's key is the sha256 of the model's identity, the backend, the batch
size and its texts' sha256. A stopped run, started again, first merges the
shards left from before (finished after the client stopped, or merged but
not yet deleted: the merge is idempotent), then embeds what is still
missing. Chunks are made longest first from what is missing, so when whole
chunks were merged the rest falls into the same chunks as before and even
the resumed run's vectors equal an uninterrupted one's.

Merged shards are deleted: the library holds their vectors.
"""
from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from tqdm.auto import tqdm

from readingroom.library.sharded_ingest import default_shards
from readingroom.library.store import Library
from readingroom.models.catalogue import DEFAULT_EMBEDDER
from readingroom.models.embed import (BATCHES_PER_CHUNK, DEFAULT_BATCH_SIZE, EmbedReport, _register_model,
                                      encode_texts, load_embedder, missing_chunks)
from readingroom.shards import ShardFolder, in_order

SHARD_FORMAT = "1"


@dataclass
class EmbedTask:
    key: str
    root: str  # the shard folder, as every machine sees it
    text_sha256: list[str]
    texts: list[str]
    model: object  # as the caller named it: each worker resolves it
    identity: str
    batch_size: int
    backend: str


@dataclass
class EmbedShards:
    """How the shards of a run went: `leftover` merged from an earlier run
    before starting, `computed` by this one."""

    folder: str
    leftover: int = 0
    computed: int = 0

    def summary(self) -> str:
        return f"shards in {self.folder}: {self.computed} made and merged, {self.leftover} left from an earlier run"


def embed_task(task: EmbedTask) -> None:
    """Encode the chunk on this worker and write its shard."""
    vectors = encode_texts(task.texts, task.model, task.batch_size, task.backend, task.identity)
    table = pa.table({
        "text_sha256": pa.array(task.text_sha256, pa.string()),
        "vector": pa.FixedSizeListArray.from_arrays(pa.array(vectors.reshape(-1)), vectors.shape[1]),
    })
    with ShardFolder(task.root).writing(task.key) as folder:
        pq.write_table(table, folder / "vectors.parquet")


def _merge(lib: Library, folder: ShardFolder, key: str, identity: str) -> int:
    """Store the shard's vectors (those not stored yet), then delete it."""
    with lib.transaction():
        (stored,) = lib.con.execute(
            "INSERT INTO embeddings (model, text_sha256, vector) SELECT ?, text_sha256, vector "
            "FROM read_parquet(?) ON CONFLICT DO NOTHING",
            [identity, str(folder.path(key) / "vectors.parquet")]).fetchone()
    folder.remove(key)
    return stored


def embed_on_cluster(
    lib: Library,
    executor,
    shards: str | Path | None = None,
    workers: int = 1,
    model=DEFAULT_EMBEDDER,
    batch_size: int = DEFAULT_BATCH_SIZE,
    progress: bool = True,
    chunk_size: int | None = None,
    backend: str = "torch",
    doc_ids: list[str] | None = None,
) -> tuple[EmbedReport, EmbedShards]:
    """embed_library's work on `executor` (a Dask cluster's, from
    workers.cluster, with its `workers`), through shards in `shards`
    (default: beside the library, <library>.shards/vectors-<model>)."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    chunk_size = chunk_size or batch_size * BATCHES_PER_CHUNK
    started = time.perf_counter()
    loaded = load_embedder(model, backend)  # here too: the model's identity and width
    _register_model(lib, loaded)
    root = Path(shards).absolute() if shards else default_shards(lib)
    folder = ShardFolder(root / f"vectors-{loaded.identity[:16]}")
    run = EmbedShards(str(folder.root))
    if folder.root.exists():
        for leftover in sorted(p.name for p in folder.root.iterdir() if not p.name.startswith(".")):
            if folder.complete(leftover):
                _merge(lib, folder, leftover, loaded.identity)
                run.leftover += 1
    report = EmbedReport(loaded.name, loaded.identity, loaded.dimensions)
    chunks = missing_chunks(lib, loaded.identity, chunk_size, doc_ids, report)

    def task(chunk: pa.Table) -> EmbedTask:
        shas = chunk.column("text_sha256").to_pylist()
        key = hashlib.sha256(json.dumps([SHARD_FORMAT, loaded.identity, backend, batch_size, shas]).encode())
        return EmbedTask(key.hexdigest(), str(folder.root), shas, chunk.column("text").to_pylist(), model,
                         loaded.identity, batch_size, backend)

    bar = tqdm(total=report.texts - report.already_embedded, unit="text",
               desc=f"embedding with {loaded.name} on the cluster", disable=not progress)
    try:
        for done in in_order(folder, (task(c) for c in chunks), lambda t: t.key, embed_task, executor, workers):
            _merge(lib, folder, done.task.key, loaded.identity)
            run.computed += done.computed
            report.embedded += len(done.task.texts)
            report.chunks += 1
            bar.update(len(done.task.texts))
    finally:
        bar.close()
        report.seconds = time.perf_counter() - started
    return report, run
