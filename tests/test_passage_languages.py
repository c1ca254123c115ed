"""Each passage's language (corpus.language.passage_languages): a document
that mixes languages has its passages read in their own, through real
ingestion into a real DuckDB file, BM25 and the check; a document in one
language costs only the screen and is stored as before."""
from __future__ import annotations

from dataclasses import replace

from conftest import FIXTURES, TINY_SHELF
from readingroom import ingest
from readingroom.answer.check import SupportChecker, check_answer
from readingroom.corpus.language import mixes_languages, passage_languages
from readingroom.library.ingest import ingest_paths
from readingroom.search.searcher import Searcher

MIXED = FIXTURES / "mixed" / "theses-on-feuerbach-note.md"
GERMAN_QUESTION = "Was sind die gesellschaftlichen Verhältnisse des menschlichen Wesens?"


def stored_passages(library):
    return library.con.execute(
        "SELECT p.section[-1], coalesce(p.language, d.language), d.language, p.text "
        "FROM passages p JOIN documents d USING (doc_id) "
        "ORDER BY p.ordinal").fetchall()


def test_a_mixed_document_has_its_german_passages_tagged_german(library, private_cache):
    report = ingest_paths(library, [MIXED], progress=False)
    assert report.added == 1 and not report.problems
    rows = stored_passages(library)
    assert {r[2] for r in rows} == {"en"}  # the document: mostly English
    by_language = {}
    for section, language, _, _ in rows:
        by_language.setdefault(language, set()).add(section)
    assert by_language["de"] == {"The first thesis, in German", "The second thesis, in German",
                                 "The sixth and the eleventh theses, in German"}
    assert "de" not in {language for section, language, _, _ in rows if "in German" not in section}
    assert set(by_language) == {"en", "de"}


def test_a_german_query_finds_the_german_passage_of_an_english_document(library, private_cache):
    ingest_paths(library, [MIXED], progress=False)
    ingest(library, TINY_SHELF, progress=False)
    searcher = Searcher(library, vectors=False)
    assert searcher.index.word_languages() == ["de", "en"]
    hits = searcher.search(GERMAN_QUESTION, 3, mode="bm25")
    # "gesellschaftlichen Verhältnisse" found by German stems: read as English,
    # "Verhältnisse" and "Verhältnis" would not meet.
    assert hits and "ensemble der gesellschaftlichen Verhältnisse" in hits[0].text, [h.text for h in hits]
    assert all(h.language == "de" for h in hits)
    assert "de:verhaltnis" in searcher.index.bm25.vocab_dict
    # English questions still find the English passages of the same document.
    english = searcher.search("Why is the eleventh thesis carved on a grave in Highgate?", 1, mode="bm25")[0]
    assert "Highgate" in english.text and english.language == "en"


def test_the_check_reads_the_german_passage_in_german(library, private_cache):
    ingest_paths(library, [MIXED], progress=False)
    hit = Searcher(library, vectors=False).search(GERMAN_QUESTION, 1, mode="bm25")[0]
    assert hit.language == "de"
    answer = "Das menschliche Wesen ist das Ensemble gesellschaftlicher Verhältnisse, kein Abstraktum [1]."
    checker = SupportChecker(None)  # words only
    as_german = check_answer(answer, [hit], checker, answer_language="de")
    as_english = check_answer(answer, [replace(hit, language="en")], checker, answer_language="de")
    german, english = as_german.sentences[0], as_english.sentences[0]
    assert as_german.supported and german.final
    # German stems meet ("gesellschaftlicher" and "gesellschaftlichen"), German
    # stop words ("das", "ist", "kein") are not counted as shared content.
    assert german.lexical == 1.0 and english.lexical < german.lexical


def test_a_document_in_one_language_is_screened_only():
    english = [MIXED.read_text(encoding="utf-8").split("## What the first thesis says")[1][:600]] * 20
    assert not mixes_languages(english, "en")
    assert passage_languages(english, "en") == ["en"] * 20
    german = "Der Streit über die Wirklichkeit oder Nichtwirklichkeit des Denkens ist eine rein scholastische Frage."
    assert mixes_languages(english[:5] + [german * 2] + english[:5], "en")
    # Too short to tell: a heading keeps its document's language.
    assert passage_languages(["Thesen über Feuerbach", english[0]], "en") == ["en", "en"]


def test_the_language_filter_reads_each_passages_own_language(library, private_cache):
    from readingroom.search.searcher import Filters
    from readingroom.ui.chat import SearchFilters

    ingest_paths(library, [MIXED], progress=False)
    ingest(library, TINY_SHELF, progress=False)
    searcher = Searcher(library, vectors=False)
    assert searcher.index.languages() == ["de", "en"]
    german = searcher.search("Feuerbach Wesen Menschen", 10, mode="bm25", filters=Filters.of(language="de"))
    assert german and all(h.language == "de" for h in german)
    assert all("in German" in h.section[-1] for h in german)  # the German theses of the English document
    english = searcher.search("Feuerbach thesis", 10, mode="bm25", filters=Filters.of(language="EN"))
    assert english and all(h.language == "en" for h in english)
    # The chat's filter offers German, which no document is written in.
    assert ("de", "de") in SearchFilters(searcher.index.docs, passage_languages=searcher.index.languages()
                                         ).language.options
