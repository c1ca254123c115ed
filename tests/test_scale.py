"""Scale: the approximate vector index against the exact search, its
incremental update, and ingestion with a process pool against the
single-process path. Synthetic vectors (no model) and a real DuckDB file."""
from __future__ import annotations

import hashlib

import numpy as np
import pytest

from conftest import library_contents
from readingroom.search import ann
from readingroom.search.index import DocumentTable, SearchIndex, build_bm25
from readingroom.search.searcher import Filters, Searcher, Settings

DIMS = 64


def clustered(n: int, seed: int = 0) -> np.ndarray:
    """Unit vectors with the structure texts have: broad topics, narrower
    subjects within them (~20 texts each), and each text's own part."""
    rng = np.random.default_rng(seed)

    def unit(rows):
        x = rng.standard_normal((rows, DIMS)).astype(np.float32)
        return x / np.linalg.norm(x, axis=1, keepdims=True)

    topics, subjects = unit(max(n // 400, 1)), max(n // 20, 1)
    subject_vectors = topics[rng.integers(0, len(topics), subjects)] + 0.7 * unit(subjects)
    x = subject_vectors[rng.integers(0, subjects, n)] + 0.5 * unit(n)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def shas(n: int, start: int = 0) -> list[str]:
    return [hashlib.sha256(f"text {i}".encode()).hexdigest() for i in range(start, start + n)]


def index_of(vectors: np.ndarray, years: np.ndarray | None = None) -> SearchIndex:
    """One document per passage, so that filters can pick passages."""
    n = len(vectors)
    docs = DocumentTable(
        doc_ids=np.array([f"d{i:06d}" for i in range(n)], dtype=object), authors=[[] for _ in range(n)],
        years=np.full(n, np.nan) if years is None else years.astype(float),
        languages=np.full(n, "", dtype=object), sources=np.full(n, "s", dtype=object))
    return SearchIndex(np.array([f"p{i:06d}" for i in range(n)], dtype=object), np.arange(n, dtype=np.int32),
                       docs, build_bm25([]), vectors=vectors)


def queries(vectors: np.ndarray, n: int, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    q = vectors[rng.integers(0, len(vectors), n)] + 0.1 * rng.standard_normal((n, DIMS)).astype(np.float32)
    return q / np.linalg.norm(q, axis=1, keepdims=True)


def recall_at_10(approximate: SearchIndex, exact: SearchIndex, qs: np.ndarray, allowed=None) -> float:
    found = []
    for q in qs:
        rows, scores = approximate.vector_top("", 10, allowed, q)
        truth, truth_scores = exact.vector_top("", 10, allowed, q)
        # What it returns is ordered by the exact cosine, not the codes'.
        assert np.all(np.diff(scores) <= 0)
        np.testing.assert_allclose(scores, (approximate.vectors[rows] @ q), rtol=1e-6)
        found.append(len(set(rows.tolist()) & set(truth.tolist())) / 10)
    return float(np.mean(found))


def test_approximate_index_finds_what_the_exact_search_finds():
    vectors = clustered(6000)
    exact, approximate = index_of(vectors), index_of(vectors)
    approximate.attach_ann(ann.text_keys(shas(6000)))
    assert approximate.ann is not None and exact.ann is None
    assert recall_at_10(approximate, exact, queries(vectors, 40)) >= 0.99
    # The codes take a byte a dimension: a quarter of the float32 matrix, and a little more.
    assert approximate.ann.nbytes < 0.4 * vectors.nbytes


def test_approximate_index_with_filters_keeps_to_the_allowed_rows():
    vectors = clustered(6000)
    years = np.arange(6000) % 100 + 1900
    exact, approximate = index_of(vectors, years), index_of(vectors, years)
    approximate.attach_ann(ann.text_keys(shas(6000)))
    for filters in (Filters(year_from=1950), Filters(year_from=1990, year_to=1990)):  # half; one in a hundred
        allowed = approximate.mask(filters)
        assert recall_at_10(approximate, exact, queries(vectors, 20), allowed) >= 0.99
        rows, _ = approximate.vector_top("", 10, allowed, queries(vectors, 1)[0])
        assert allowed[rows].all()


def test_searcher_uses_the_approximate_index_for_vectors():
    vectors = clustered(3000)
    approximate, exact = index_of(vectors), index_of(vectors)
    approximate.attach_ann(ann.text_keys(shas(3000)))
    q = queries(vectors, 1)[0]
    settings = Settings(mode="vector", mmr_lambda=1.0)
    got = Searcher(None, index=approximate, settings=settings).rank("query", 10, query_vector=q)[0]
    want = Searcher(None, index=exact, settings=settings).rank("query", 10, query_vector=q)[0]
    assert got.tolist() == want.tolist()


def test_saved_index_is_updated_in_place_as_passages_arrive_and_go(tmp_path):
    folder = tmp_path / "ann"
    vectors = clustered(6000)
    first = index_of(vectors[:5000])
    report = first.attach_ann(ann.text_keys(shas(5000)), folder)
    assert report.built and report.added == 5000
    trained = (folder / "index.faiss").stat().st_mtime_ns

    # 1000 passages arrive, the first 200 go: the saved index is updated, not trained again.
    later = index_of(vectors[200:])
    report = later.attach_ann(ann.text_keys(shas(5800, start=200)), folder)
    assert (report.built, report.added, report.removed) == (False, 1000, 200)
    assert len(later.ann) == 5800 and (folder / "index.faiss").stat().st_mtime_ns != trained
    qs = queries(vectors[200:], 30)
    assert recall_at_10(later, index_of(vectors[200:]), qs) >= 0.99
    # Nothing changed: loaded as it was, nothing written.
    again = index_of(vectors[200:])
    assert again.attach_ann(ann.text_keys(shas(5800, start=200)), folder) == ann.SyncReport()
    # Grown past RETRAIN_GROWTH times what it was trained on: trained again.
    small = index_of(vectors[:1000])
    small.attach_ann(ann.text_keys(shas(1000)), tmp_path / "grows")
    assert index_of(vectors).attach_ann(ann.text_keys(shas(6000)), tmp_path / "grows").built


def test_passages_sharing_a_text_are_all_found():
    vectors = clustered(3000)
    keys = ann.text_keys(shas(3000))
    vectors[2999], keys[2999] = vectors[5], keys[5]  # the same text in two documents
    index = index_of(vectors)
    index.attach_ann(keys)
    rows, scores = index.vector_top("", 2, None, vectors[5])
    assert sorted(rows.tolist()) == [5, 2999]


def test_damaged_saved_index_is_built_again(tmp_path):
    folder = tmp_path / "ann"
    vectors = clustered(2000)
    index_of(vectors).attach_ann(ann.text_keys(shas(2000)), folder)
    (folder / "index.faiss").write_bytes(b"not an index")
    assert index_of(vectors).attach_ann(ann.text_keys(shas(2000)), folder).built


@pytest.mark.parametrize("n, expected", [(1000, 64), (250_000, 512), (1_000_000, 1024), (10**8, 4096)])
def test_lists_grow_with_the_square_root_of_the_size(n, expected):
    assert ann.lists_for(n) == expected


# --- BM25 built in batches ------------------------------------------------------
SENTENCES = [
    "The Paris Commune of 1871 was the first workers' government; it was crushed after 72 days.",
    "A general strike stopped the trams, the mills and the newspapers for a whole week!",
    "Kropotkin argued that mutual aid among animals is as much a law of nature as struggle.",
    "Die Arbeiter der Stadt gründeten eine Genossenschaft und teilten den Gewinn.",
    "States, statesmen and the state: naïve theories of the state's power_structure (1848).",
    "the and of it",  # nothing but stop words
    "",
    "Wages, profit and rent; rent, profit and wages. Capital accumulates capital.",
]


def corpus_texts(n: int, seed: int = 0) -> list[str]:
    rng = np.random.default_rng(seed)
    return [" ".join(rng.choice(SENTENCES, size=rng.integers(1, 4)).tolist()) for _ in range(n)]


def assert_same_bm25(ours, theirs):
    from readingroom.search.index import tokenize

    assert set(ours.vocab_dict) == set(theirs.vocab_dict)
    for query in ["state power", "general strike of the workers", "Genossenschaft gründeten", "wages profit rent",
                  "power_structure 1848", "mutual aid"]:
        tokens = [t for t in tokenize([query])[0] if t in theirs.vocab_dict]
        np.testing.assert_allclose(ours.get_scores(tokens), theirs.get_scores(tokens), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("workers", [1, pytest.param(2, marks=pytest.mark.slow)])
def test_bm25_built_in_batches_equals_bm25s(workers):
    from bm25s.stopwords import STOPWORDS_EN

    from readingroom.search.bm25 import build_streaming

    texts = corpus_texts(700)
    batches = [texts[i:i + 128] for i in range(0, len(texts), 128)]
    assert_same_bm25(build_streaming(batches, STOPWORDS_EN, workers=workers), build_bm25(texts))


def test_large_library_builds_bm25_in_batches(library, private_cache, monkeypatch):
    from readingroom import Block, Document, ingest
    from readingroom.search import index as index_module

    texts = corpus_texts(300, seed=3)
    docs = [Document("test", f"d{i}", f"D{i}", [Block(t, section=(f"Part {j}",)) for j, t in enumerate(texts[i:i + 3])])
            for i in range(0, len(texts), 3)]
    ingest(library, docs, progress=False)
    bm25s_built = SearchIndex.load(library, vectors=False).bm25
    monkeypatch.setattr(index_module, "BM25_STREAM_MIN", 1)
    monkeypatch.setattr(index_module, "BM25_BATCH", 64)
    monkeypatch.setattr(index_module, "BM25_VERSION", "streamed")  # not the cached one
    streamed = SearchIndex.load(library, vectors=False).bm25
    assert_same_bm25(streamed, bm25s_built)


def test_words_are_split_as_arrows_regex_splits_them():
    import pyarrow as pa
    import pyarrow.compute as pc

    from readingroom.search.bm25 import NOT_WORD, split_words

    rng = np.random.default_rng(5)
    alphabet = list("ab ,.-_1Zé\u00df\u2014\u00fc\u0301\U0001f389\u65e5\u00a0\u03a3\u0663\u2009'\t\n")
    texts = SENTENCES + ["", "_", "__init__", "a-b", "\U0001d518\U0001d52b math", "\u216b roman \u00bd \u00b2", "\u01c5emal"] + [
        "".join(rng.choice(alphabet, size=rng.integers(0, 14)).tolist()) for _ in range(400)]
    lowered = pc.utf8_lower(pa.array(texts, pa.string()))
    for array in (lowered, lowered.slice(5, 60), lowered.cast(pa.large_string()), lowered.slice(len(lowered))):
        pieces = pc.split_pattern_regex(array, NOT_WORD)
        flat, owner = pc.list_flatten(pieces), pc.list_parent_indices(pieces).to_numpy()
        nonempty = pc.greater(pc.utf8_length(flat), 0)
        words, owners = split_words(array)
        assert words.to_pylist() == flat.filter(nonempty).to_pylist()
        assert owners.tolist() == owner[nonempty.to_numpy(zero_copy_only=False)].tolist()


def test_bm25_built_in_batches_is_the_one_batch_build_exactly(library, private_cache, fixtures, monkeypatch):
    """The same index, bit for bit, however the passages are batched (only
    the order the stems are numbered in differs): build_streaming over a
    real library's texts, and the library's index (segments) read in
    batches of 5 against one batch."""
    from bm25s.stopwords import STOPWORDS_EN

    from readingroom import Block, Document, ingest
    from readingroom.search import index as index_module
    from readingroom.search.bm25 import build_streaming

    # The fixtures' texts, a document a line (ingest_paths would load the language detector: seconds).
    files = sorted((fixtures / "text").glob("*.txt")) + sorted((fixtures / "markdown").glob("*.md"))
    lines = [line for f in files for line in f.read_text().splitlines() if line.strip()]
    ingest(library, [Document("test", f"line{i}", f"Line {i}", [Block(line)], language="en")
                     for i, line in enumerate(lines)], progress=False)
    texts = [t for (t,) in library.con.execute("SELECT text FROM passages ORDER BY doc_id, ordinal").fetchall()]
    assert len(texts) > 20

    def column(scores, vocab, stem):  # a stem's passages and weights
        at = vocab[stem]
        start, end = scores["indptr"][at], scores["indptr"][at + 1]
        return scores["indices"][start:end], scores["data"][start:end]

    one = build_streaming([texts], STOPWORDS_EN)
    batched = build_streaming([texts[i:i + 5] for i in range(0, len(texts), 5)], STOPWORDS_EN)
    assert one.vocab_dict.keys() == batched.vocab_dict.keys() and len(one.vocab_dict) > 100
    for name in ("data", "indices", "indptr"):
        assert one.scores[name].dtype == batched.scores[name].dtype
    for stem in one.vocab_dict:
        for a, b in zip(column(one.scores, one.vocab_dict, stem), column(batched.scores, batched.vocab_dict, stem)):
            np.testing.assert_array_equal(a, b)

    monkeypatch.setattr(index_module, "BM25_STREAM_MIN", 1)
    indexes = []
    for size in (len(texts), 5):
        monkeypatch.setattr(index_module, "BM25_BATCH", size)
        monkeypatch.setattr(index_module, "BM25_VERSION", f"batch-{size}")  # counted afresh, not shared
        indexes.append(SearchIndex.load(library, vectors=False).bm25)
    (one_segment,), (batched_segment,) = (index.segments for index in indexes)
    for name in ("passage_ids", "languages", "lengths"):
        np.testing.assert_array_equal(getattr(one_segment, name), getattr(batched_segment, name))
    assert indexes[0].vocab_dict.keys() == indexes[1].vocab_dict.keys()
    for stem in indexes[0].vocab_dict:
        np.testing.assert_array_equal(indexes[0].get_scores([stem]), indexes[1].get_scores([stem]))

# --- ingestion in worker processes ------------------------------------------------
@pytest.mark.slow  # two worker processes start, each loading the language detector
def test_ingesting_in_worker_processes_stores_what_one_process_stores(tmp_path, fixtures):
    from readingroom import open_library
    from readingroom.library.ingest import CHUNK_CHARS, ingest_paths
    import readingroom.library.ingest as ingest_module

    folders = [fixtures / name for name in ("text", "markdown", "html", "mediawiki", "articles")]
    reports = []
    for workers in (1, 2):
        with open_library(tmp_path / f"{workers}.duckdb") as lib:
            ingest_module.CHUNK_CHARS = 2_000  # several chunks in flight, even for these small files
            try:
                first = ingest_paths(lib, folders, progress=False, workers=workers)
                again = ingest_paths(lib, folders, progress=False, workers=workers)
            finally:
                ingest_module.CHUNK_CHARS = CHUNK_CHARS
            assert again.added == again.updated == again.passages == 0 and again.unchanged > 0
            reports.append((first.summary(), again.summary(), library_contents(lib)))
    single, pool = reports
    assert len(single[2][1]) > 20
    assert single == pool  # the same reports, documents and passages, ids included


# --- a Dask cluster ---------------------------------------------------------------
@pytest.mark.slow  # loads MiniLM
def test_cluster_ingests_and_embeds_what_one_process_does(tmp_path, fixtures, local_cluster):
    from readingroom import open_library
    from readingroom.library.ingest import ingest_paths
    from readingroom.models.embed import embed_library
    from readingroom.workers import cluster

    folders = [fixtures / name for name in ("text", "markdown", "html")]
    results = []
    for name in ("local", "cluster"):
        with open_library(tmp_path / f"{name}.duckdb") as lib:
            if name == "local":
                ingest_report = ingest_paths(lib, folders, progress=False)
                embed_report = embed_library(lib, "all-minilm-l6-v2", progress=False, chunk_size=8)
            else:
                with cluster(local_cluster) as (executor, workers, dashboard):
                    assert workers == 2
                    ingest_report = ingest_paths(lib, folders, progress=False, executor=executor)
                    embed_report = embed_library(lib, "all-minilm-l6-v2", progress=False, chunk_size=8,
                                                 executor=executor)
            vectors = lib.con.execute(
                "SELECT text_sha256, vector FROM embeddings ORDER BY text_sha256").fetchall()
            results.append((ingest_report.summary(), embed_report.embedded, embed_report.chunks,
                            library_contents(lib), vectors))
    local, on_cluster = results
    assert local[2] > 1 and len(local[4]) > 10  # several chunks went out
    assert local[:4] == on_cluster[:4]  # reports, documents, passages: ids included
    assert [sha for sha, _ in local[4]] == [sha for sha, _ in on_cluster[4]]
    np.testing.assert_array_equal(np.array([v for _, v in local[4]]), np.array([v for _, v in on_cluster[4]]))


def test_cluster_resumes_a_stopped_ingest(tmp_path, fixtures, local_cluster):
    """Each batch is stored as it comes back: after a stop, the next run
    stores only what is missing."""
    from readingroom import open_library
    from readingroom.library.ingest import ingest_paths
    from readingroom.workers import cluster

    folders = [fixtures / "text", fixtures / "markdown"]
    with open_library(tmp_path / "lib.duckdb") as lib, cluster(local_cluster) as (executor, _, _):
        first = ingest_paths(lib, [folders[0]], progress=False, executor=executor)  # stopped after the first folder
        rest = ingest_paths(lib, folders, progress=False, executor=executor)
        assert rest.unchanged == first.added and rest.added > 0
    with open_library(tmp_path / "whole.duckdb") as whole:
        ingest_paths(whole, folders, progress=False)
        with open_library(tmp_path / "lib.duckdb", read_only=True) as lib:
            assert library_contents(lib)[1] == library_contents(whole)[1]


def test_cli_ingests_on_a_cluster(tmp_path, fixtures, local_cluster):
    from click.testing import CliRunner

    from readingroom import open_library
    from readingroom.cli import main

    db = tmp_path / "cli.duckdb"
    result = CliRunner().invoke(main, ["ingest", str(fixtures / "markdown"), "--quiet", "--cluster", local_cluster,
                                       "--db", str(db)])
    assert result.exit_code == 0, result.output
    assert "2 workers" in result.output
    with open_library(db, read_only=True) as lib:
        assert lib.stats()["passages"] > 0
    refused = CliRunner().invoke(main, ["ingest", str(fixtures / "markdown"), "--quiet",
                                        "--cluster", "tcp://127.0.0.1:1", "--db", str(db)])
    assert refused.exit_code != 0 and "tcp://127.0.0.1:1" in refused.output


@pytest.mark.slow  # embeds with MiniLM
def test_library_index_past_the_threshold_uses_the_saved_approximate_index(library, private_cache, fixtures,
                                                                           monkeypatch):
    from readingroom.library.ingest import ingest_paths
    from readingroom.models.embed import embed_library

    ingest_paths(library, [fixtures / "markdown", fixtures / "text", fixtures / "html"], progress=False)
    embed_library(library, "all-minilm-l6-v2", progress=False)
    exact = SearchIndex.load(library, "all-minilm-l6-v2")
    assert exact.ann is None  # a small library: exact, as always
    monkeypatch.setattr(ann, "ANN_MIN_VECTORS", 10)
    approximate = SearchIndex.load(library, "all-minilm-l6-v2")
    assert approximate.ann is not None and len(approximate.ann) == int(exact.has_vector.sum())
    for question in ["what did the workers do", "how are plants fed", "the price of bread"]:
        q = exact.embedder.encode_query(question)
        got, want = approximate.vector_top(question, 5, None, q), exact.vector_top(question, 5, None, q)
        assert got[0].tolist() == want[0].tolist()
        np.testing.assert_allclose(got[1], want[1], rtol=1e-6)
    # Loaded again: the saved index, unchanged.
    assert SearchIndex.load(library, "all-minilm-l6-v2").ann.keys.tolist() == approximate.ann.keys.tolist()
