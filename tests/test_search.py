"""Search with the real default embedder (MiniLM), the real multilingual one
(EmbeddingGemma) for the cross-lingual case, and the real test generator
(SmolLM2) as reranker; a real DuckDB library in a temporary folder."""
from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from readingroom import Block, Document, ingest
from readingroom.cli import main
from readingroom.models.embed import embed_library
from readingroom.search.index import bm25_folder
from readingroom.search.searcher import (
    Filters, Searcher, SearchIndex, Settings, mmr, rrf, searcher_for,
)

COMMUNE = "The Paris Commune of 1871 was the first workers' government; it was crushed after seventy-two days."
PLANTS = "Photosynthesis turns sunlight, water and carbon dioxide into sugar in the leaves of green plants."
STRIKE = "A general strike stopped the trams, the mills and the newspapers for a whole week."
BREAD = "The harvest failed and the price of bread doubled within a month in the capital."
MUTUAL = "Kropotkin argued that mutual aid among animals is as much a law of nature as struggle."
GERMAN = "Die Arbeiter der Stadt gründeten eine Genossenschaft und teilten den Gewinn."


def doc(key, texts, authors=(), year=None, language="en", source="test"):
    # One section per text, so each text is one passage.
    return Document(source, key, key.title(), [Block(t, section=(f"Part {i}",)) for i, t in enumerate(texts)],
                    authors=tuple(authors), year=year, language=language)


SHELF = [
    doc("commune", [COMMUNE, STRIKE], authors=["Karl Marx"], year=1871),
    doc("kropotkin", [MUTUAL, BREAD], authors=["Peter Kropotkin"], year=1902),
    doc("botany", [PLANTS], authors=["A. Gardener"], year=1990, source="science"),
    doc("genossen", [GERMAN], authors=["Anna Weber"], year=1920, language="de"),
]


@pytest.fixture
def shelf(library):
    ingest(library, SHELF, progress=False)
    embed_library(library, progress=False)
    return library


# BM25 indexes go to a cache of each test's own (conftest.private_cache).
pytestmark = pytest.mark.usefixtures("private_cache")


def texts(hits):
    return [h.text for h in hits]


@pytest.mark.slow
def test_vectors_find_a_paraphrase_that_shares_no_word_with_the_passage(shelf):
    searcher = Searcher(shelf)
    assert texts(searcher.search("When did labourers rule a French city?", 1, mode="vector")) == [COMMUNE]
    # BM25 finds nothing: no word in common.
    assert searcher.search("When did labourers rule a French city?", 3, mode="bm25") == []


@pytest.mark.slow
def test_bm25_finds_the_exact_word_and_hybrid_puts_a_passage_both_agree_on_first(shelf):
    searcher = Searcher(shelf)
    assert texts(searcher.search("photosynthesis", 1, mode="bm25")) == [PLANTS]
    best = searcher.search("price of bread after the failed harvest", 3)
    assert best[0].text == BREAD
    assert set(best[0].ranks) == {"bm25", "vector"} and best[0].ranks["bm25"] == 1


@pytest.mark.slow
def test_hits_carry_what_a_reader_needs_to_find_the_passage(shelf):
    (hit,) = Searcher(shelf).search("Paris Commune 1871", 1)
    assert (hit.title, hit.author, hit.year, hit.source, hit.language) == ("Commune", "Karl Marx", 1871, "test", "en")
    stored = shelf.con.execute("SELECT passage_id, doc_id, citation, text FROM passages WHERE text = ?",
                               [COMMUNE]).fetchone()
    assert (hit.passage_id, hit.doc_id, hit.citation, hit.text) == stored
    assert hit.score > 0


@pytest.mark.slow
@pytest.mark.parametrize("filters, allowed", [
    (Filters.of(author="kropotkin"), {MUTUAL, BREAD}),
    (Filters.of(author=["marx", "weber"]), {COMMUNE, STRIKE, GERMAN}),
    (Filters.of(year_from=1900, year_to=1950), {MUTUAL, BREAD, GERMAN}),
    (Filters.of(year_to=1900), {COMMUNE, STRIKE}),
    (Filters.of(language="de"), {GERMAN}),
    (Filters.of(source="science"), {PLANTS}),
])
def test_filters_keep_only_matching_documents(shelf, filters, allowed):
    for mode in ("hybrid", "bm25", "vector"):
        hits = Searcher(shelf).search("workers Arbeiter strike bread nature plants city", 10, filters, mode=mode)
        assert hits and set(texts(hits)) <= allowed, mode


@pytest.mark.slow
def test_a_filter_by_document_and_an_unknown_year_leave_out_what_they_should(shelf):
    (doc_id,) = shelf.con.execute("SELECT doc_id FROM documents WHERE key = 'botany'").fetchone()
    assert texts(Searcher(shelf).search("anything at all here", 10, Filters.of(doc_id=doc_id))) == [PLANTS]
    ingest(shelf, [doc("undated", ["Workers of an unknown year went on strike."])], progress=False)
    hits = Searcher(shelf).search("workers strike", 10, Filters.of(year_from=1000), mode="bm25")
    assert "Workers of an unknown year went on strike." not in texts(hits)


def test_rrf_adds_weighted_reciprocal_ranks():
    rows, scores, ranks = rrf({"bm25": np.array([7, 3]), "vector": np.array([3, 9])},
                              {"bm25": 1.0, "vector": 2.0}, k=10)
    assert rows.tolist() == [3, 9, 7]  # 3 is in both lists
    assert scores[0] == pytest.approx(1 / 12 + 2 / 11)
    assert ranks[3] == {"bm25": 2, "vector": 1} and ranks[7] == {"bm25": 1}


def test_mmr_passes_over_a_near_copy_of_what_it_already_chose():
    a = np.array([1.0, 0.0])
    near_a = np.array([0.99, np.sqrt(1 - 0.99 ** 2)])
    other = np.array([0.0, 1.0])
    vectors = np.stack([a, near_a, other])
    relevance = np.array([1.0, 0.95, 0.8])
    assert mmr(relevance, vectors, 2, lambda_=1.0) == [0, 1]
    # Relevance is scaled to [0, 1] over the candidates: 1, 0.75, 0 here.
    assert mmr(relevance, vectors, 2, lambda_=0.5) == [0, 2]


@pytest.mark.slow
def test_mmr_in_search_keeps_two_copies_of_a_text_from_filling_the_list(library):
    # The same paragraph in two different documents (quoted, or two editions).
    ingest(library, [doc("one", [COMMUNE, PLANTS]), doc("two", [COMMUNE, BREAD]), doc("three", [STRIKE])],
           progress=False)
    embed_library(library, progress=False)
    plain = Searcher(library, settings=Settings(mmr_lambda=1.0)).search("Paris Commune", 2)
    diverse = Searcher(library, settings=Settings(mmr_lambda=0.5)).search("Paris Commune", 2)
    assert texts(plain) == [COMMUNE, COMMUNE]
    assert texts(diverse)[0] == COMMUNE and texts(diverse)[1] != COMMUNE


def test_without_vectors_hybrid_search_is_bm25_and_vector_search_says_what_to_do(library):
    ingest(library, SHELF, progress=False)
    searcher = Searcher(library)
    assert searcher.index.vectors is None
    assert texts(searcher.search("photosynthesis", 1)) == [PLANTS]
    with pytest.raises(LookupError, match="readingroom embed"):
        searcher.search("photosynthesis", 1, mode="vector")


def test_an_empty_library_and_an_empty_query_find_nothing(library):
    assert Searcher(library).search("anything", 5) == []
    ingest(library, SHELF, progress=False)
    assert Searcher(library).search("   ", 5) == []


@pytest.mark.slow
def test_the_bm25_index_is_saved_per_library_and_a_damaged_one_is_rebuilt(shelf, tmp_path):
    first = SearchIndex.load(shelf, vectors=False)
    folder = bm25_folder()
    assert folder.parent == tmp_path / "cache" / "bm25"
    (segment,) = folder.glob("segment-*")  # the word counts of every passage
    (segment / "stems.json").write_text("{not json")
    again = SearchIndex.load(shelf, vectors=False)
    assert again.bm25_scores("photosynthesis").tolist() == first.bm25_scores("photosynthesis").tolist()
    # A new passage is counted and added: the index knows the new word.
    ingest(shelf, [doc("extra", ["Zymurgy is the chemistry of fermentation."])], progress=False)
    assert texts(Searcher(shelf, vectors=False).search("zymurgy", 1)) == ["Zymurgy is the chemistry of fermentation."]


@pytest.mark.slow
def test_searcher_for_reuses_the_index_until_the_library_changes(shelf):
    first = searcher_for(shelf)
    assert searcher_for(shelf).index is first.index
    ingest(shelf, [doc("extra", [MUTUAL + " Again."])], progress=False)
    assert searcher_for(shelf).index is not first.index


@pytest.mark.slow
def test_bfloat16_vectors_give_the_same_ranking(shelf):
    exact = Searcher(shelf).search("the price of bread", 3, mode="vector")
    half = Searcher(shelf, precision="bfloat16").search("the price of bread", 3, mode="vector")
    assert texts(half) == texts(exact)
    assert [h.score for h in half] == pytest.approx([h.score for h in exact], abs=0.01)


@pytest.mark.slow
def test_a_german_or_french_question_finds_the_english_passage_with_the_multilingual_embedder(library):
    english = [d for d in SHELF if d.language == "en"]
    ingest(library, english, progress=False)
    embed_library(library, "embeddinggemma-300m", progress=False)
    searcher = Searcher(library, "embeddinggemma-300m")
    assert texts(searcher.search("Wann regierten die Arbeiter die Stadt Paris?", 1)) == [COMMUNE]
    assert texts(searcher.search("Pourquoi le prix du pain a-t-il doublé ?", 1)) == [BREAD]
    # With a German passage in the library too, BM25 is kept to it for a
    # German question: "die" in an English text is not the German article.
    ingest(library, [d for d in SHELF if d.language == "de"], progress=False)
    embed_library(library, "embeddinggemma-300m", progress=False)
    hits = Searcher(library, "embeddinggemma-300m").search("Was sagt die Geschichte über die Arbeiter?", 10)
    assert any(h.language == "de" and "bm25" in h.ranks for h in hits)
    assert all("bm25" not in h.ranks for h in hits if h.language == "en")


@pytest.mark.slow
def test_the_query_likelihood_reranker_prefers_the_passage_that_answers(shelf):
    from readingroom.search.rerank import QueryLikelihoodReranker

    reranker = QueryLikelihoodReranker()
    scores = reranker.score("What happened to the Paris Commune in 1871?", [PLANTS, COMMUNE, BREAD])
    assert scores.shape == (3,) and np.argmax(scores) == 1
    hits = Searcher(shelf, reranker=reranker).search("What happened to the Paris Commune?", 3)
    assert hits[0].text == COMMUNE and hits[0].ranks["rerank"] == 1


@pytest.mark.slow
def test_the_langchain_retriever_returns_documents_with_the_hit_fields(shelf):
    from readingroom.models.langchain import ReadingRoomRetriever

    retriever = ReadingRoomRetriever(searcher=Searcher(shelf), k=2, filters=Filters.of(author="marx"))
    documents = retriever.invoke("Paris Commune")
    assert [d.page_content for d in documents][0] == COMMUNE
    meta = documents[0].metadata
    assert meta["author"] == "Karl Marx" and meta["year"] == 1871 and meta["citation"]
    assert documents[0].id == meta["passage_id"]


@pytest.mark.slow
def test_cli_search_json_gives_the_documented_fields_best_first(shelf):
    shelf.close()  # the command opens the file itself
    result = CliRunner().invoke(main, ["search", "price of bread", "-k", "2", "--json", "--db", str(shelf.path)])
    assert result.exit_code == 0, result.output
    hits = json.loads(result.stdout)
    assert len(hits) == 2 and hits[0]["text"] == BREAD
    for key in ("passage_id", "doc_id", "title", "author", "year", "citation", "anchor", "score", "text"):
        assert key in hits[0]
    assert hits[0]["score"] >= hits[1]["score"]


@pytest.mark.slow
def test_cli_search_filters_and_readable_output(shelf):
    shelf.close()
    result = CliRunner().invoke(main, ["search", "bread strike workers", "--author", "Marx", "--year-from", "1800",
                                       "--year-to", "1880", "--db", str(shelf.path)])
    assert result.exit_code == 0, result.output
    assert "Commune" in result.output and "Kropotkin" not in result.output
    result = CliRunner().invoke(main, ["search", "bread", "--lang", "fr", "--db", str(shelf.path)])
    assert result.exit_code == 0 and "nothing found" in result.output
