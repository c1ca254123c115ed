"""Embeddings with the real default model (all-MiniLM-L6-v2), no mocks:
vectors are right, stored once per text and model, resumable, and loadable
in passage order."""
from __future__ import annotations

import hashlib
from types import SimpleNamespace

import duckdb
import numpy as np
import pytest

from conftest import kill_midway
from readingroom import Block, Document, ingest, open_library
from readingroom.library import store as library_module
from readingroom.models.embed import (
    _LOADED, embed_library, embed_query, load_embedder, load_matrix, openvino_export_path, prune,
    resolve_embedder,
)
from readingroom.models.catalogue import DEFAULT_EMBEDDER

COMMUNE = "The Paris Commune of 1871 was the first workers' government; it was crushed after seventy-two days."
COMMUNE_AGAIN = "The Paris Commune of 1871 was the first government of the workers, and it was crushed after 72 days."
PLANTS = "Photosynthesis turns sunlight, water and carbon dioxide into sugar in the leaves of green plants."
TOPICS = [
    "The factory owners lengthened the working day to twelve hours.",
    "Cooperatives let the members share the profits of their own labour.",
    "The harvest failed and the price of bread doubled within a month.",
    "Railways carried the grain of the plains to the ports of the coast.",
    "The printers went on strike for a shorter week and higher pay.",
    "Mutual aid among animals is as much a law of nature as struggle.",
    "The peasants divided the landlord's estate among the village households.",
    "A general strike stopped the trams, the mills and the newspapers.",
]


def document(key: str, texts: list[str]) -> Document:
    """One passage per text: each block is its own section, and a section
    boundary always ends a passage."""
    return Document("test", key, key.title(), [Block(t, section=(f"Part {i}",)) for i, t in enumerate(texts)],
                    language="en")  # set, so that no language detector is loaded


def numbered(prefix: str, n: int) -> list[str]:
    return [f"{prefix} {i}: {TOPICS[i % len(TOPICS)]}" for i in range(n)]


def stored_vectors(lib) -> int:
    return lib.con.execute("SELECT count(*) FROM embeddings").fetchone()[0]


@pytest.fixture(scope="module")
def minilm():
    return resolve_embedder(DEFAULT_EMBEDDER)


@pytest.mark.slow
def test_vectors_are_unit_rows_of_the_model_width(library, minilm):
    ingest(library, [document("a", numbered("Note", 6)), document("b", [COMMUNE, PLANTS])], progress=False)
    report = embed_library(library, minilm, batch_size=4, progress=False)
    assert (report.passages, report.texts, report.embedded, report.already_embedded) == (8, 8, 8, 0)
    assert report.dimensions == 384

    ids, vectors = load_matrix(library, minilm)
    assert vectors.shape == (8, 384) and vectors.dtype == np.float32 and vectors.flags.c_contiguous
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-5)
    assert sorted(ids) == sorted(pid for (pid,) in library.con.execute("SELECT passage_id FROM passages").fetchall())

    query = embed_query("When was the Paris Commune?", minilm)
    assert query.shape == (384,) and query.dtype == np.float32
    assert abs(np.linalg.norm(query) - 1) < 1e-5
    best = ids[int(np.argmax(vectors @ query))]
    assert library.con.execute("SELECT text FROM passages WHERE passage_id = ?", [best]).fetchone()[0] == COMMUNE


@pytest.mark.slow
def test_a_near_duplicate_is_nearer_than_an_unrelated_passage(minilm):
    model = load_embedder(minilm)
    commune, again, plants = model.encode_documents([COMMUNE, COMMUNE_AGAIN, PLANTS], batch_size=3)
    assert commune @ again > 0.8
    assert commune @ plants < 0.3


@pytest.mark.slow
def test_adding_a_document_embeds_only_its_passages(library, minilm):
    ingest(library, [document("a", numbered("Note", 6))], progress=False)
    assert embed_library(library, minilm, progress=False).embedded == 6
    ingest(library, [document("b", numbered("Letter", 3))], progress=False)
    assert len(load_matrix(library, minilm)[0]) == 6  # passages without a vector are left out
    report = embed_library(library, minilm, progress=False)
    assert (report.embedded, report.already_embedded, report.chunks) == (3, 6, 1)
    again = embed_library(library, minilm, progress=False)
    assert (again.embedded, again.already_embedded, again.chunks) == (0, 9, 0)
    assert stored_vectors(library) == 9


@pytest.mark.slow
def test_identical_texts_are_embedded_once_and_shared(library, minilm):
    ingest(library, [document("a", [COMMUNE, PLANTS]), document("b", [COMMUNE, TOPICS[0]])], progress=False)
    report = embed_library(library, minilm, progress=False)
    assert (report.passages, report.texts, report.embedded) == (4, 3, 3)
    assert stored_vectors(library) == 3

    ids, vectors = load_matrix(library, minilm)
    assert len(ids) == 4  # both passages with the shared text have their row
    texts = dict(library.con.execute("SELECT passage_id, text FROM passages").fetchall())
    shared = [i for i, pid in enumerate(ids) if texts[pid] == COMMUNE]
    assert len(shared) == 2 and np.array_equal(vectors[shared[0]], vectors[shared[1]])


@pytest.mark.slow
def test_a_model_with_a_new_identity_embeds_everything_again(library, minilm):
    ingest(library, [document("a", numbered("Note", 5))], progress=False)
    embed_library(library, minilm, progress=False)
    # The same folder under another identity stands for a model whose weights changed.
    retrained = SimpleNamespace(path=minilm.path, identity=minilm.identity + "-retrained",
                                name="retrained", artifact=None)
    report = embed_library(library, retrained, progress=False)
    assert (report.embedded, report.already_embedded) == (5, 0)
    assert stored_vectors(library) == 10
    models = library.embedding_models().set_index("identity")
    assert list(models.vectors) == [5, 5] and list(models.passages_missing) == [0, 0]
    assert len(load_matrix(library, minilm)[0]) == len(load_matrix(library, retrained)[0]) == 5


@pytest.mark.slow
def test_load_matrix_rows_belong_to_their_passage_ids(library, minilm):
    ingest(library, [document("b", numbered("Letter", 5)), document("a", numbered("Note", 4))], progress=False)
    embed_library(library, minilm, batch_size=2, progress=False)
    ids, vectors = load_matrix(library, minilm)
    rows = library.con.execute("SELECT passage_id, text FROM passages ORDER BY doc_id, ordinal").fetchall()
    assert list(ids) == [pid for pid, _ in rows]  # document order
    fresh = load_embedder(minilm).encode_documents([text for _, text in rows], batch_size=16)
    assert np.allclose(vectors, fresh, atol=1e-5)


@pytest.mark.slow
def test_pruning_removes_only_vectors_no_passage_uses(library, minilm):
    ingest(library, [document("a", [COMMUNE, PLANTS]), document("b", [COMMUNE, TOPICS[1]])], progress=False)
    embed_library(library, minilm, progress=False)
    library.remove(document("b", []).doc_id)
    assert stored_vectors(library) == 3  # removing a document leaves its vectors
    assert prune(library) == 1  # TOPICS[1] went; COMMUNE is still used by "a"
    assert stored_vectors(library) == 2
    assert embed_library(library, minilm, progress=False).embedded == 0


EMBED_SCRIPT = """
import sys
from readingroom import open_library
from readingroom.models.embed import embed_library
with open_library(sys.argv[1]) as lib:
    embed_library(lib, sys.argv[2], batch_size=2, chunk_size=2)
"""


@pytest.mark.slow
def test_a_killed_embed_resumes_where_it_stopped(tmp_path, minilm):
    texts = [f"{text} Passage {i} of the long pamphlet, with a few more words to embed." for i, text in
             enumerate(numbered("Section", 60))]
    db = tmp_path / "killed.duckdb"
    with open_library(db) as lib:
        ingest(lib, [document("pamphlet", texts)], progress=False)
    kill_midway(EMBED_SCRIPT, [db, minilm.path], total=60, at=20)

    with open_library(db) as lib:
        stored = stored_vectors(lib)
        assert 0 < stored < 60 and stored % 2 == 0  # whole chunks only
        report = embed_library(lib, minilm.path, progress=False)
        assert (report.already_embedded, report.embedded) == (stored, 60 - stored)
        ids, resumed = load_matrix(lib, minilm.path)
    with open_library(tmp_path / "clean.duckdb") as clean:
        ingest(clean, [document("pamphlet", texts)], progress=False)
        embed_library(clean, minilm.path, progress=False)
        clean_ids, vectors = load_matrix(clean, minilm.path)
    assert list(ids) == list(clean_ids) and np.allclose(resumed, vectors, atol=1e-5)


@pytest.mark.slow
def test_a_version_1_library_is_upgraded_and_its_passages_get_text_hashes(tmp_path, minilm):
    path = tmp_path / "v1.duckdb"
    con = duckdb.connect(str(path))
    con.execute(library_module.MIGRATIONS[0])
    con.execute("INSERT INTO meta VALUES ('schema_version', '1')")
    texts = ["Élisée Reclus wrote “L’Homme et la Terre”.", COMMUNE, COMMUNE]
    for i, text in enumerate(texts):
        con.execute(
            "INSERT INTO passages VALUES (?, 'doc', ?, [], NULL, 0, ?, NULL, NULL, ?, 10, 'cite')",
            [f"p{i}", i, len(text), text],
        )
    con.close()

    with open_library(path) as lib:
        assert lib.schema_version == library_module.SCHEMA_VERSION >= 2
        hashes = dict(lib.con.execute("SELECT passage_id, text_sha256 FROM passages").fetchall())
        assert hashes == {f"p{i}": hashlib.sha256(t.encode()).hexdigest() for i, t in enumerate(texts)}
        report = embed_library(lib, minilm, progress=False)
        assert (report.passages, report.embedded) == (3, 2)


def test_stored_passages_carry_the_hash_duckdb_computes(library):
    ingest(library, [document("a", ["Élisée Reclus “quoted”.", PLANTS])], progress=False)
    assert library.con.execute(
        "SELECT count(*) FROM passages WHERE text_sha256 IS DISTINCT FROM sha256(text)"
    ).fetchone()[0] == 0


@pytest.mark.slow
def test_the_openvino_backend_agrees_with_torch_and_is_exported_once(library, minilm, tmp_path, monkeypatch):
    pytest.importorskip("openvino")
    monkeypatch.setenv("READINGROOM_CACHE", str(tmp_path / "cache"))  # a fresh export, made here
    texts = [PLANTS, "Bread.", " ".join(TOPICS)]  # short and long, so padded, in one batch
    ingest(library, [document("a", texts)], progress=False)
    report = embed_library(library, minilm, backend="openvino-bf16", progress=False)
    export = openvino_export_path(minilm)
    assert report.embedded == 3 and export.is_file()
    made = export.stat().st_mtime_ns

    ids, vectors = load_matrix(library, minilm)  # stored under the model's own identity
    texts_by_id = dict(library.con.execute("SELECT passage_id, text FROM passages").fetchall())
    with_torch = load_embedder(minilm).encode_documents([texts_by_id[i] for i in ids])
    assert np.all(np.sum(vectors * with_torch, axis=1) > 0.999)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-5)
    query = embed_query("How do plants make sugar?", minilm, backend="openvino-bf16")
    assert query @ embed_query("How do plants make sugar?", minilm) > 0.999

    _LOADED.clear()  # as in a new process: the export is read back, not made again
    load_embedder(minilm, "openvino-bf16")
    assert export.stat().st_mtime_ns == made


@pytest.mark.slow
def test_a_model_openvino_cannot_export_is_named_in_a_clear_error_and_nothing_is_stored(
        library, minilm, tmp_path, monkeypatch):
    """EmbeddingGemma's attention does not trace into OpenVINO; the converter's
    error is a page of traceback. Too heavy to load here (1.2 GB), so the
    converter is made to fail the same way on MiniLM."""
    openvino = pytest.importorskip("openvino")
    from click.testing import CliRunner

    from readingroom.cli import main

    from readingroom.models import embed as embed_module

    # Exports of its own (the models stay where they are): an export already made would not be made again.
    monkeypatch.setattr(embed_module, "exports_dir", lambda resolved: tmp_path / "exports" / resolved.identity)
    ingest(library, [document("a", [PLANTS])], progress=False)
    library.close()

    def fails(*args, **kwargs):
        raise RuntimeError("Exception from src/frontends/pytorch/src/node_context.cpp:42:\nunordered_map::at\n...")

    monkeypatch.setattr(openvino, "convert_model", fails)
    _LOADED.clear()
    result = CliRunner().invoke(main, ["embed", "--model", minilm.name, "--backend", "openvino-bf16", "--quiet",
                                       "--db", str(library.path)])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "cannot be exported to OpenVINO" in result.output and "--backend torch" in result.output
    assert "unordered_map" not in result.output.split("(", 1)[0]  # the model's name first, the reason after
    assert not openvino_export_path(minilm).exists()
    with open_library(library.path, read_only=True) as lib:
        assert lib.con.execute("SELECT count(*) FROM embeddings").fetchone()[0] == 0
