"""A large library's float32 vectors in a memory-mapped file in the cache
(search/mapped_vectors.py): the same results as the vectors in memory, the
file reused on the next load, another state of the library never reading
it, and nothing pickled."""
from __future__ import annotations

import numpy as np
import pytest

from readingroom.search import ann
from readingroom.search.index import SearchIndex
from readingroom.search.mapped_vectors import open_vectors, save_vectors, vectors_key
from readingroom.search.searcher import Filters, Searcher
from test_scale import clustered, index_of, queries, shas

MODEL = "all-minilm-l6-v2"


def test_mapped_vectors_search_as_the_vectors_in_memory(tmp_path):
    vectors = clustered(4000)
    years = np.arange(4000) % 100 + 1900
    mapped = save_vectors(tmp_path / "vectors", "k", vectors)
    assert isinstance(mapped, np.memmap) and not mapped.flags.writeable
    in_memory, on_disk = index_of(vectors, years), index_of(mapped, years)
    keys = ann.text_keys(shas(4000))
    in_memory.attach_ann(keys, tmp_path / "ann")
    # The saved index is up to date: nothing is added, so no vector is read.
    assert on_disk.attach_ann(keys, tmp_path / "ann") == ann.SyncReport()
    narrow = on_disk.mask(Filters(year_from=1900, year_to=1901))  # 80 rows: the exact fallback
    for q in queries(vectors, 20):
        for allowed in (None, narrow):
            got, want = on_disk.vector_top("", 10, allowed, q), in_memory.vector_top("", 10, allowed, q)
            assert got[0].tolist() == want[0].tolist()
            assert got[1].tolist() == want[1].tolist()
        rows = got[0]
        assert type(on_disk.vector_of(rows)) is np.ndarray
        np.testing.assert_array_equal(on_disk.vector_of(rows), in_memory.vector_of(rows))


def test_the_file_is_a_raw_array_and_anything_else_is_not_read(tmp_path):
    folder = tmp_path / "vectors"
    vectors = clustered(50)
    save_vectors(folder, "k", vectors)
    assert open(folder / "k.npy", "rb").read(128).count(b"'descr': '<f4'") == 1
    np.testing.assert_array_equal(open_vectors(folder, "k", 50), vectors)
    assert open_vectors(folder, "k", 51) is None  # another number of rows: written again
    assert open_vectors(folder, "absent", 50) is None
    np.save(folder / "pickled.npy", np.array([{"a": 1}] * 50, dtype=object), allow_pickle=True)
    assert open_vectors(folder, "pickled", 50) is None  # object arrays would need unpickling: refused
    (folder / "torn.npy").write_bytes((folder / "k.npy").read_bytes()[:1000])
    assert open_vectors(folder, "torn", 50) is None
    # A new state's file replaces the earlier ones.
    save_vectors(folder, "k2", vectors[:40])
    assert sorted(p.name for p in folder.iterdir()) == ["k2.npy"]


def test_the_key_changes_with_the_passages_the_model_and_the_vectors_present():
    has = np.ones(100, dtype=bool)
    some = has.copy()
    some[7] = False
    key = vectors_key("f", "m", has)
    assert len({key, vectors_key("g", "m", has), vectors_key("f", "n", has), vectors_key("f", "m", some),
                vectors_key("f", "m", has[:99])}) == 5
    assert vectors_key("f", "m", has.copy()) == key


@pytest.mark.slow  # embeds with MiniLM
def test_library_vectors_are_mapped_reused_and_follow_added_passages(library, private_cache, fixtures,
                                                                      monkeypatch, tmp_path):
    from readingroom.library.ingest import ingest_paths
    from readingroom.models import embed

    def folder_files():
        return sorted((tmp_path / "cache" / "ann").glob("*.vectors/*.npy"))

    def same_as_exact(index: SearchIndex):
        exact = SearchIndex.load(library, MODEL, approximate=False)
        assert exact.ann is None and not isinstance(exact.vectors, np.memmap)
        assert index.passage_ids.tolist() == exact.passage_ids.tolist()
        for question in ["what did the workers do", "how are plants fed", "the price of bread", "liberty"]:
            q = exact.embedder.encode_query(question)
            got, want = index.vector_top(question, 8, None, q), exact.vector_top(question, 8, None, q)
            assert got[0].tolist() == want[0].tolist()
            np.testing.assert_allclose(got[1], want[1], rtol=1e-6)
        np.testing.assert_array_equal(index.vector_of(np.flatnonzero(index.has_vector)),
                                      exact.vector_of(np.flatnonzero(exact.has_vector)))
        hybrid = [Searcher(library, index=i).search("the workers and the state", k=5)
                  for i in (index, exact)]
        assert [h.passage_id for h in hybrid[0]] == [h.passage_id for h in hybrid[1]]

    ingest_paths(library, [fixtures / "markdown", fixtures / "text"], progress=False)
    embed.embed_library(library, MODEL, progress=False)
    small = SearchIndex.load(library, MODEL)
    assert small.ann is None and not isinstance(small.vectors, np.memmap) and folder_files() == []

    monkeypatch.setattr(ann, "ANN_MIN_VECTORS", 5)  # 7 passages, then 11
    first = SearchIndex.load(library, MODEL)
    assert first.ann is not None and isinstance(first.vectors, np.memmap)
    [written] = folder_files()
    same_as_exact(first)

    # Loaded again: the file is mapped, the library's vectors are not read.
    written_at = written.stat().st_mtime_ns
    with monkeypatch.context() as patched:
        patched.setattr(embed, "load_matrix", lambda *a, **k: pytest.fail("read the vectors from the library"))
        again = SearchIndex.load(library, MODEL)
    assert isinstance(again.vectors, np.memmap) and folder_files() == [written]
    assert written.stat().st_mtime_ns == written_at

    # Passages arrive (not yet embedded, then embedded): each state writes
    # its own file, the index is updated in place, and the results are the
    # exact search's.
    ingest_paths(library, [fixtures / "html"], progress=False)
    unembedded = SearchIndex.load(library, MODEL)
    assert not unembedded.has_vector.all() and folder_files() != [written]
    same_as_exact(unembedded)
    embed.embed_library(library, MODEL, progress=False)
    grown = SearchIndex.load(library, MODEL)
    assert grown.has_vector.all() and len(grown) > len(first)
    [rewritten] = folder_files()
    assert rewritten != written and not written.exists()
    assert len(grown.ann) == int(grown.has_vector.sum())
    same_as_exact(grown)

    # A cache where the file cannot be written: the vectors stay in memory.
    folder = rewritten.parent
    rewritten.unlink()
    folder.rmdir()
    folder.write_text("not a folder")
    blocked = SearchIndex.load(library, MODEL)
    assert blocked.ann is not None and not isinstance(blocked.vectors, np.memmap)
    same_as_exact(blocked)
