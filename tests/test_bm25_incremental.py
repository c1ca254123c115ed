"""BM25 kept up to date as passages arrive (search/bm25_segments.py): after
passages are added, removed or read in another language, the scores equal
those of an index built from scratch, and only the passages no segment
holds were read; and the approximate vector index keeps its recall as
vectors are added to lists trained on fewer."""
from __future__ import annotations

import numpy as np
import pytest

from readingroom.search import bm25_segments
from readingroom.search.bm25 import count_tokens, count_words_in_languages
from readingroom.search.bm25_segments import Segment, synced_bm25
from readingroom.search.index import SearchIndex, build_bm25, language_tokens

SENTENCES = [
    ("The Paris Commune of 1871 was the first workers' government; it was crushed after 72 days.", "en"),
    ("A general strike stopped the trams, the mills and the newspapers for a whole week!", "en"),
    ("Kropotkin argued that mutual aid among animals is as much a law of nature as struggle.", "en"),
    ("Die Arbeiter der Stadt gründeten eine Genossenschaft und teilten den Gewinn.", "de"),
    ("Die Staaten und der Staat: Theorien der Macht des Staates.", "de"),
    ("States, statesmen and the state: naïve theories of the state's power_structure (1848).", "en"),
    ("the and of it", "en"),
    ("Wages, profit and rent; rent, profit and wages. Capital accumulates capital.", "en"),
]
QUERIES = [["state", "power"], ["general", "strike", "worker"], ["de:staat", "de:arbeit"], ["wage", "profit", "rent"],
           ["mutual", "aid", "aid"], ["capit"], ["unknown"]]


def corpus(n: int, seed: int = 0) -> tuple[list[str], list[str], list[str]]:
    """Passage ids (in an order unrelated to when they arrive), texts, languages."""
    rng = np.random.default_rng(seed)
    texts, languages = [], []
    for _ in range(n):
        picked = [SENTENCES[i] for i in rng.integers(0, len(SENTENCES), rng.integers(1, 4))]
        language = picked[0][1]
        texts.append(" ".join(t for t, _ in picked) + f" w{rng.integers(0, 50)}")
        languages.append(language)
    ids = [f"{rng.integers(0, 10**9):09d}-{i}" for i in range(n)]
    return ids, texts, languages


def count_as_bm25s(batch):
    texts, languages = batch
    return count_tokens(language_tokens(list(texts), list(languages)))


def sync(folder, ids, texts, languages, count=count_as_bm25s):
    """The index of these passages, in the order of their ids (as a library's rows)."""
    order = sorted(range(len(ids)), key=ids.__getitem__)
    ids, texts, languages = ([x[i] for i in order] for x in (ids, texts, languages))

    def read(rows):
        for start in range(0, len(rows), 64):
            chunk = rows[start:start + 64].tolist()
            yield [texts[i] for i in chunk], [languages[i] for i in chunk]

    return synced_bm25(folder, ids, languages, read, count), (texts, languages)


def assert_same_scores(ours, built):
    assert set(ours.vocab_dict) == {t for t in built.vocab_dict if t}  # bm25s keeps an empty token
    for tokens in QUERIES:
        np.testing.assert_array_equal(ours.get_scores(tokens), built.get_scores(tokens))


@pytest.mark.parametrize("count", [count_as_bm25s, count_words_in_languages])
def test_passages_added_later_score_as_a_build_from_scratch(tmp_path, count):
    ids, texts, languages = corpus(400)
    (_, first), _ = sync(tmp_path / "grown", ids[:300], texts[:300], languages[:300], count)
    assert first.counted == 300 and first.segments == 1
    (grown, report), _ = sync(tmp_path / "grown", ids, texts, languages, count)
    assert (report.counted, report.unused, report.segments) == (100, 0, 2)  # only the new ones read
    (scratch, _), (ordered, ordered_languages) = sync(tmp_path / "scratch", ids, texts, languages, count)
    assert_same_scores(grown, scratch)
    # And the scores are bm25s's (the same words, the same formula).
    built = build_bm25(ordered, languages=ordered_languages)
    for tokens in QUERIES:
        known = [t for t in tokens if t in built.vocab_dict]
        want = built.get_scores(known) if known else np.zeros(len(ordered), np.float32)
        np.testing.assert_allclose(grown.get_scores(tokens), want, rtol=1e-5, atol=1e-6)
    assert np.count_nonzero(grown.get_scores(["de:staat"])) > 10
    # Nothing new: nothing read, the same scores.
    (again, report), _ = sync(tmp_path / "grown", ids, texts, languages, count)
    assert report.counted == 0
    assert_same_scores(again, scratch)


def test_removed_and_relanguaged_passages_leave_every_sum(tmp_path):
    ids, texts, languages = corpus(400, seed=1)
    sync(tmp_path / "kept", ids, texts, languages)
    # 60 passages go, 5 come back read in English (their document's language changed).
    keep = [i for i in range(400) if i % 7]
    ids2, texts2 = [ids[i] for i in keep], [texts[i] for i in keep]
    languages2 = [languages[i] for i in keep]
    changed = [j for j, language in enumerate(languages2) if language == "de"][:5]
    for j in changed:
        languages2[j] = "en"
    (kept, report), _ = sync(tmp_path / "kept", ids2, texts2, languages2)
    assert report.counted == 5 and report.unused == 400 - len(keep) + 5
    (scratch, _), _ = sync(tmp_path / "scratch", ids2, texts2, languages2)
    assert_same_scores(kept, scratch)
    # Losing more than a quarter of a segment's passages rewrites it without them.
    half = list(range(0, len(ids2), 2))
    (kept, report), _ = sync(tmp_path / "kept", *([x[j] for j in half] for x in (ids2, texts2, languages2)))
    assert report.merged >= 1 and report.unused == 0 and report.counted == 0
    (scratch, _), _ = sync(tmp_path / "scratch2", *([x[j] for j in half] for x in (ids2, texts2, languages2)))
    assert_same_scores(kept, scratch)


def test_many_small_ingests_are_merged_and_still_score_as_from_scratch(tmp_path):
    ids, texts, languages = corpus(300, seed=2)
    sync(tmp_path / "many", ids[:200], texts[:200], languages[:200])
    for end in range(210, 310, 10):  # ten ingests of 10 passages
        (many, report), _ = sync(tmp_path / "many", ids[:end], texts[:end], languages[:end])
        assert report.counted == 10 and report.segments <= bm25_segments.MAX_SEGMENTS
    assert len(list((tmp_path / "many").glob("segment-*"))) > report.segments  # merged ones kept a while
    (scratch, _), _ = sync(tmp_path / "scratch", ids, texts, languages)
    assert_same_scores(many, scratch)


def test_a_damaged_segment_is_counted_again(tmp_path):
    ids, texts, languages = corpus(200, seed=3)
    sync(tmp_path / "bm25", ids[:150], texts[:150], languages[:150])
    sync(tmp_path / "bm25", ids, texts, languages)
    newest = sorted((tmp_path / "bm25").glob("segment-*"))[-1]
    (newest / "docs.npy").write_bytes(b"not an array")
    assert Segment.load(newest) is None
    (index, report), _ = sync(tmp_path / "bm25", ids, texts, languages)
    assert report.counted == 50 and not newest.exists()  # removed, its passages counted again
    (scratch, _), _ = sync(tmp_path / "scratch", ids, texts, languages)
    assert_same_scores(index, scratch)


def test_libraries_share_the_counts_and_unused_segments_age_out(tmp_path, monkeypatch):
    """A snapshot of a library (the same passages in another file) counts
    nothing; another library's segments are kept while recently used."""
    ids, texts, languages = corpus(300, seed=5)
    pool = tmp_path / "pool"
    sync(pool, ids[:200], texts[:200], languages[:200])  # a library
    (_, report), _ = sync(pool, ids[:200], texts[:200], languages[:200])  # its snapshot
    assert report.counted == 0
    (other, report), _ = sync(pool, ids[200:], texts[200:], languages[200:])  # an unrelated library
    assert report.counted == 100 and report.segments == 1
    assert len(list(pool.glob("segment-*"))) == 2  # the first library's kept for it
    (_, report), _ = sync(pool, ids[:200], texts[:200], languages[:200])
    assert report.counted == 0
    monkeypatch.setattr(bm25_segments, "KEEP_UNUSED_S", -1)  # unused for longer than that: deleted
    sync(pool, ids[:200], texts[:200], languages[:200])
    assert len(list(pool.glob("segment-*"))) == 1


def top(index: SearchIndex, query: str, k: int = 10):
    scores = index.bm25_scores(query)
    rows = np.lexsort((np.arange(len(scores)), -scores))[:k]
    return [index.passage_ids[r] for r in rows], scores[rows]


def test_library_changes_count_only_new_passages_and_rank_as_a_fresh_index(library, private_cache, tmp_path,
                                                                            monkeypatch):
    from readingroom import Block, Document, ingest
    from readingroom.search import index as index_module

    ids, texts, languages = corpus(250, seed=4)

    def doc(i, changed=False):
        blocks = texts[i * 6:i * 6 + 6] + (["Zymurgy is the chemistry of fermentation."] if changed else [])
        return Document("test", f"d{i}", f"D{i}", [Block(t) for t in blocks], language=languages[i * 6])

    def passage_ids():
        return {p for (p,) in library.con.execute("SELECT passage_id FROM passages").fetchall()}

    ingest(library, [doc(i) for i in range(30)], progress=False)
    SearchIndex.load(library, vectors=False)
    before = passage_ids()
    read = []
    original = index_module._passage_texts
    monkeypatch.setattr(index_module, "_passage_texts",
                        lambda lib, p, lang, rows: read.append(len(rows)) or original(lib, p, lang, rows))
    # A news update of ten documents; one document removed, one changed.
    ingest(library, [doc(i) for i in range(30, 40)] + [doc(5, changed=True)], progress=False)
    library.remove(doc(3).doc_id)
    grown = SearchIndex.load(library, vectors=False)
    assert read == [len(passage_ids() - before)] and read[0] > 10  # only the new passages were read
    assert top(grown, "zymurgy", 1)[0] == [p for p in passage_ids() - before
                                           if "Zymurgy" in library.con.execute(
                                               "SELECT text FROM passages WHERE passage_id = ?", [p]).fetchone()[0]]
    monkeypatch.setattr(index_module, "cache_dir", lambda: tmp_path / "fresh-cache")
    fresh = SearchIndex.load(library, vectors=False)
    for query in ["state power", "general strike", "Staaten", "wages and profit", "zymurgy"]:
        got, want = top(grown, query), top(fresh, query)
        assert got[0] == want[0]
        np.testing.assert_array_equal(got[1], want[1])


# --- the approximate vector index, grown in place -----------------------------------
def test_vectors_added_to_lists_trained_on_fewer_keep_the_recall(tmp_path):
    """Trained on 1,600 vectors, grown to 6,000 (3.75 times, under
    ann.RETRAIN_GROWTH) by adding codes to the lists, never retrained: the
    recall against the exact search is what the built index reaches
    (tests/test_scale.py's threshold)."""
    from test_scale import clustered, index_of, queries, recall_at_10, shas

    from readingroom.search import ann

    folder = tmp_path / "ann"
    vectors = clustered(6000)
    assert index_of(vectors[:1600]).attach_ann(ann.text_keys(shas(1600)), folder).built
    for end in (2400, 4000, 6000):  # three ingests
        grown = index_of(vectors[:end])
        report = grown.attach_ann(ann.text_keys(shas(end)), folder)
        assert not report.built and report.added == end - {2400: 1600, 4000: 2400, 6000: 4000}[end]
    assert grown.ann.trained_on == 1600 and len(grown.ann) == 6000
    assert recall_at_10(grown, index_of(vectors), queries(vectors, 40)) >= 0.99


def test_a_word_left_only_in_removed_passages_leaves_the_vocabulary(tmp_path):
    ids, texts, languages = corpus(204, seed=6)
    texts[201], languages[201] = "Zymurgy is the chemistry of fermentation.", "en"
    sync(tmp_path / "bm25", ids[:200], texts[:200], languages[:200])
    (index, _), _ = sync(tmp_path / "bm25", ids, texts, languages)
    assert "zymurgi" in index.vocab_dict
    kept = [i for i in range(204) if i != 201]  # one of the second segment's four goes: not rewritten
    (index, report), _ = sync(tmp_path / "bm25", *([x[i] for i in kept] for x in (ids, texts, languages)))
    assert report.merged == 0 and report.unused == 1 and "zymurgi" not in index.vocab_dict
    (scratch, _), _ = sync(tmp_path / "scratch", *([x[i] for i in kept] for x in (ids, texts, languages)))
    assert_same_scores(index, scratch)
