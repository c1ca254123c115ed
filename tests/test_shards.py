"""Ingestion and embedding on a Dask cluster through Parquet shards
(readingroom.shards, library/sharded_ingest.py, models/sharded_embed.py):
what is stored equals the local path, ids and vectors included, and a run
stopped part-way resumes without doing the finished shards again.

The cluster is a LocalCluster of 2 workers on 127.0.0.1. A stop is a task
that fails on a chosen shard: the one fault here that cannot be caused
otherwise in a test (a worker machine or the client going away)."""
from __future__ import annotations

from functools import partial

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from conftest import library_contents
from readingroom import open_library
from readingroom.corpus.passages import Splitter
from readingroom.library import sharded_ingest
from readingroom.library.ingest import ingest_paths
from readingroom.shards import ShardFolder
from readingroom.workers import cluster

FOLDERS = ("text", "markdown", "html", "mediawiki", "articles")


def fail_on(task, key: str, real):
    """The task, except on the shard `key`: there the worker gives up."""
    if task.key == key:
        raise RuntimeError(f"stopped at shard {key[:8]}")
    return real(task)


def fail_on_text(task, sha: str, real):
    """The embedding task, except for the chunk holding the text `sha`."""
    if sha in task.text_sha256:
        raise RuntimeError("stopped at the chunk")
    return real(task)


def complete_shards(folder: ShardFolder) -> dict[str, int]:
    """key -> inode of each complete shard's marker: a shard made again gets a new one."""
    return {p.name: (p / "shard.json").stat().st_ino for p in folder.root.iterdir()
            if not p.name.startswith(".") and folder.complete(p.name)}


# --- the shard folder -------------------------------------------------------------
def test_a_shard_is_whole_or_absent(tmp_path):
    folder = ShardFolder(tmp_path / "shards")
    with folder.writing("a") as place:
        pq.write_table(pa.table({"x": [1, 2, 3]}), place / "x.parquet")
        assert not folder.complete("a")  # not there until the block ends
    assert folder.complete("a")
    with pytest.raises(ValueError), folder.writing("b") as place:
        pq.write_table(pa.table({"x": [1]}), place / "x.parquet")
        raise ValueError("the worker died")
    assert not folder.complete("b") and sorted(p.name for p in folder.root.iterdir()) == ["a"]
    # Damaged after it was written: no longer complete, and written again in place.
    (folder.path("a") / "x.parquet").write_bytes(b"PAR1 not parquet")
    assert not folder.complete("a")
    with folder.writing("a") as place:
        pq.write_table(pa.table({"x": [4]}), place / "x.parquet")
    assert folder.complete("a") and pq.read_table(folder.path("a") / "x.parquet").num_rows == 1


# --- ingestion ------------------------------------------------------------------------
def test_cluster_ingest_through_shards_stores_what_one_process_stores(tmp_path, fixtures, local_cluster):
    folders = [fixtures / name for name in FOLDERS]
    with open_library(tmp_path / "local.duckdb") as lib:
        local = ingest_paths(lib, folders, progress=False)
        local_again = ingest_paths(lib, folders, progress=False)
        local_contents = library_contents(lib)
    with open_library(tmp_path / "cluster.duckdb") as lib, cluster(local_cluster) as (executor, workers, _):
        first = sharded_ingest.ingest_on_cluster(lib, folders, executor, workers=workers, progress=False,
                                                 task_bytes=3_000)
        again = sharded_ingest.ingest_on_cluster(lib, folders, executor, workers=workers, progress=False,
                                                 task_bytes=3_000)
        contents = library_contents(lib)
    assert first.shards.tasks > 4 and first.shards.computed == first.shards.tasks
    assert first.report.summary() == local.summary()  # the same decisions, problems in the same order
    assert len(local_contents[1]) > 20 and contents == local_contents  # documents and passages, ids included
    # Again: every shard found, nothing stored twice.
    assert (again.shards.computed, again.shards.reused) == (0, first.shards.tasks)
    assert again.report.summary() == local_again.summary()
    assert (tmp_path / "cluster.duckdb.shards" / "ingest").is_dir()


def test_a_changed_file_replaces_its_document_as_the_local_path_does(tmp_path, fixtures, local_cluster):
    import shutil

    folder = tmp_path / "texts"
    shutil.copytree(fixtures / "text", folder)
    changed = sorted(folder.glob("*.txt"))[0]
    results = {}
    with cluster(local_cluster) as (executor, workers, _):
        for where in ("local", "cluster"):
            shutil.copy(fixtures / "text" / changed.name, changed)
            with open_library(tmp_path / f"{where}.duckdb") as lib:
                runs = []
                for edit in ("", "\n\nA paragraph added later, about the general strike.\n"):
                    changed.write_text(changed.read_text(encoding="utf-8") + edit, encoding="utf-8")
                    if where == "local":
                        runs.append(ingest_paths(lib, [folder], progress=False).summary())
                    else:
                        runs.append(sharded_ingest.ingest_on_cluster(lib, [folder], executor, workers=workers,
                                                                     progress=False).report.summary())
                results[where] = (runs, library_contents(lib))
    assert "1 updated" in results["local"][0][1]
    assert results["cluster"] == results["local"]


def test_stopped_cluster_ingest_resumes_without_redoing_finished_shards(tmp_path, fixtures, local_cluster,
                                                                         monkeypatch):
    folders = [fixtures / name for name in FOLDERS]
    with open_library(tmp_path / "whole.duckdb") as whole:
        ingest_paths(whole, folders, progress=False)
        wanted = library_contents(whole)
    shards = tmp_path / "shards"
    folder = ShardFolder(shards / "ingest")
    tasks = sharded_ingest.plan(folders, folder.root, Splitter(), task_bytes=3_000)
    stop = tasks[len(tasks) // 2].key
    with open_library(tmp_path / "lib.duckdb") as lib, cluster(local_cluster) as (executor, workers, _):
        monkeypatch.setattr(sharded_ingest, "ingest_task", partial(fail_on, key=stop, real=sharded_ingest.ingest_task))
        with pytest.raises(RuntimeError, match="stopped at shard"):
            sharded_ingest.ingest_on_cluster(lib, folders, executor, shards=shards, workers=workers,
                                             progress=False, task_bytes=3_000)
        monkeypatch.undo()
        finished = complete_shards(folder)
        merged = lib.con.execute("SELECT count(*) FROM documents").fetchone()[0]
        assert 0 < len(finished) < len(tasks) and stop not in finished and merged > 0

        resumed = sharded_ingest.ingest_on_cluster(lib, folders, executor, shards=shards, workers=workers,
                                                   progress=False, task_bytes=3_000)
        # The stop waited for the tasks already sent: every shard they made is found.
        assert (resumed.shards.reused, resumed.shards.computed) == (len(finished), len(tasks) - len(finished))
        assert resumed.report.unchanged == merged
        # The finished shards are the same files, not made again.
        assert {k: v for k, v in complete_shards(folder).items() if k in finished} == finished
        assert library_contents(lib) == wanted


def test_cli_ingests_and_embeds_through_shards_named_by_option(tmp_path, fixtures, local_cluster):
    from click.testing import CliRunner

    from readingroom.cli import main

    db, shards = tmp_path / "cli.duckdb", tmp_path / "shared"
    result = CliRunner().invoke(main, ["ingest", str(fixtures / "markdown"), "--quiet", "--cluster", local_cluster,
                                       "--shards", str(shards), "--db", str(db)])
    assert result.exit_code == 0, result.output
    assert "2 workers" in result.output and "made by this run" in result.output
    assert any((shards / "ingest").iterdir())
    with open_library(db, read_only=True) as lib:
        assert lib.stats()["passages"] > 0


# --- embedding ------------------------------------------------------------------------
@pytest.mark.slow  # loads MiniLM
def test_cluster_embedding_through_shards_equals_local_and_resumes(tmp_path, fixtures, local_cluster, monkeypatch):
    from readingroom.models import sharded_embed
    from readingroom.models.embed import EmbedReport, embed_library, missing_chunks, resolve_embedder

    folders = [fixtures / name for name in FOLDERS]
    chunk = 4  # texts a chunk: several chunks from these small files

    def vectors(lib):
        rows = lib.con.execute("SELECT text_sha256, vector FROM embeddings ORDER BY text_sha256").fetchall()
        return [sha for sha, _ in rows], np.array([v for _, v in rows], dtype=np.float32)

    with open_library(tmp_path / "local.duckdb") as lib:
        ingest_paths(lib, folders, progress=False)
        local = embed_library(lib, "all-minilm-l6-v2", progress=False, chunk_size=chunk)
        local_shas, local_vectors = vectors(lib)
    assert local.chunks > 4

    shards = tmp_path / "shards"
    with open_library(tmp_path / "cluster.duckdb") as lib, cluster(local_cluster) as (executor, workers, _):
        ingest_paths(lib, folders, progress=False)
        identity = resolve_embedder("all-minilm-l6-v2").identity
        third = missing_chunks(lib, identity, chunk, None, EmbedReport("", "", 0))[2]
        monkeypatch.setattr(sharded_embed, "embed_task", partial(
            fail_on_text, sha=third.column("text_sha256")[0].as_py(), real=sharded_embed.embed_task))
        with pytest.raises(RuntimeError, match="stopped at the chunk"):
            sharded_embed.embed_on_cluster(lib, executor, shards=shards, workers=workers,
                                           model="all-minilm-l6-v2", progress=False, chunk_size=chunk)
        monkeypatch.undo()
        stored = lib.con.execute("SELECT count(*) FROM embeddings").fetchone()[0]
        assert stored == 2 * chunk  # the two chunks before the stop, merged in order
        folder = ShardFolder(next(shards.iterdir()))
        left = {p.name: pq.read_metadata(p / "vectors.parquet").num_rows for p in folder.root.iterdir()
                if folder.complete(p.name)}  # chunks after the stop that finished meanwhile

        report, run = sharded_embed.embed_on_cluster(lib, executor, shards=shards, workers=workers,
                                                     model="all-minilm-l6-v2", progress=False, chunk_size=chunk)
        assert run.leftover == len(left)
        # Only what was neither stored nor waiting in a shard went through the model.
        assert report.embedded == len(local_shas) - stored - sum(left.values())
        assert run.computed == report.chunks > 0
        assert not [p for p in folder.root.iterdir() if not p.name.startswith(".")]  # merged shards are deleted
        shas, cluster_vectors = vectors(lib)
    assert shas == local_shas
    # The same chunks (longest first, 4 texts) through the same model: the same floats.
    np.testing.assert_array_equal(cluster_vectors, local_vectors)
