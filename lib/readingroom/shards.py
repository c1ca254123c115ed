"""A folder of shards: the results of tasks done elsewhere (a Dask
cluster's workers), each written as Parquet files under a name made from
what went into the task, so that a task whose shard is there is not done
again.

A shard is a folder, `<root>/<key>/`, holding Parquet files and
`shard.json`, which lists them with their row counts. A worker writes it
under a temporary name beside its place and renames it there when every
file is written and closed: a rename is atomic, so a shard is either whole
or absent, whether the worker finished, died, or a second worker did the
same task (the loser's copy is dropped; both hold the same). `complete()`
also checks each file's Parquet footer against shard.json, so a folder
damaged afterwards (a disk or a network share failing) is done again
rather than merged.

On a cluster the root must be a path every machine sees at the same name
(NFS, a shared volume): the workers write there and the client reads.

`in_order()` runs the tasks whose shards are missing on an executor, a few
at a time per worker so that memory stays bounded, and yields every task in
the order given, with whether it was done now or found done, once its
shard is there: the client merges shards in the inputs' order.
"""
from __future__ import annotations

import json
import os
import shutil
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import wait
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pyarrow.parquet as pq

MARKER = "shard.json"


class ShardFolder:
    def __init__(self, root: str | Path):
        self.root = Path(root)

    def path(self, key: str) -> Path:
        return self.root / key

    def complete(self, key: str) -> bool:
        """Whether the shard is there, whole: its marker, and each file it
        lists with a readable footer and the row count the marker gives."""
        folder = self.path(key)
        try:
            listed = json.loads((folder / MARKER).read_text(encoding="utf-8"))["files"]
            return all(pq.read_metadata(folder / name).num_rows == rows for name, rows in listed.items())
        except (OSError, ValueError, KeyError, TypeError):
            return False

    @contextmanager
    def writing(self, key: str) -> Iterator[Path]:
        """A fresh folder to write the shard's Parquet files into; on
        leaving the block, its marker is written and the folder renamed to
        the shard's place. On an error nothing is left behind."""
        self.root.mkdir(parents=True, exist_ok=True)
        temporary = self.root / f".{key}.partial-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        temporary.mkdir()
        try:
            yield temporary
            files = {f.name: pq.read_metadata(f).num_rows for f in sorted(temporary.glob("*.parquet"))}
            (temporary / MARKER).write_text(json.dumps({"key": key, "files": files}), encoding="utf-8")
            target = self.path(key)
            if target.exists() and not self.complete(key):
                shutil.rmtree(target, ignore_errors=True)  # a damaged copy: this one replaces it
            try:
                temporary.rename(target)
            except OSError:  # another worker finished the same task first: the same content
                if not self.complete(key):
                    raise
        finally:
            shutil.rmtree(temporary, ignore_errors=True)

    def remove(self, key: str) -> None:
        shutil.rmtree(self.path(key), ignore_errors=True)

    def size_bytes(self) -> int:
        return sum(f.stat().st_size for f in self.root.rglob("*") if f.is_file()) if self.root.exists() else 0


@dataclass
class Done:
    """A task whose shard is there: `computed` True when this run did it,
    False when it was found complete from an earlier run."""

    task: object
    computed: bool


def in_order(folder: ShardFolder, tasks: Iterable, key: Callable[[object], str], function: Callable,
             executor, workers: int = 1, in_flight_per_worker: int = 2) -> Iterator[Done]:
    """Each task in order, once its shard is complete: `function(task)`
    (which must write the shard named `key(task)` into `folder`) runs on
    `executor` for the tasks whose shard is missing. A task that fails
    raises here, once the tasks already sent have finished: their shards,
    and those finished before, serve the next run."""
    pending: deque = deque()
    limit = in_flight_per_worker * max(workers, 1)
    try:
        for task in tasks:
            future = None if folder.complete(key(task)) else executor.submit(function, task)
            pending.append((task, future))
            while pending and (len(pending) >= limit or pending[0][1] is None):
                yield _finished(*pending.popleft())
        while pending:
            yield _finished(*pending.popleft())
    except Exception:
        # Not on Ctrl-C (KeyboardInterrupt) nor when the caller stops
        # (GeneratorExit): then the tasks still running are left to finish alone.
        wait([future for _, future in pending if future is not None])
        raise


def _finished(task, future) -> Done:
    if future is not None:
        future.result()
    return Done(task, future is not None)
