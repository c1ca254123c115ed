"""Words read in each text's language (text.index_tokens, search.index,
answer.check.scoring): German stop words and stemmer for German passages,
English exactly as before for English ones."""
from __future__ import annotations

import numpy as np

from conftest import TINY_SHELF, tiny_document
from readingroom import ingest
from readingroom.answer.check import SupportChecker
from readingroom.search.index import SearchIndex, bm25_folder
from readingroom.search.searcher import Searcher
from readingroom.text import content_words, index_tokens, tokenize

SENTENCE = ("The Paris Commune of 1871 was the first workers' government of a great city; its States argued [2] "
            "about Manchester's damp cellars, and the families were living there.")
# What main gave before words had languages: English stays so, token for token.
ENGLISH_TOKENS = ['pari', 'commune', '1871', 'first', 'worker', 'govern', 'great', 'citi', 'it', 'state', 'argu',
                  'about', 'manchest', 'damp', 'cellar', 'famili', 'were', 'live']
ENGLISH_CONTENT = ['pari', 'commune', '1871', 'first', 'worker', 'govern', 'great', 'citi', 'manchest', 'damp',
                   'cellar', 'famili', 'live']

# Real quotations from fortunes-de (Debian's German fortunes, "zitate").
BISMARCK = "Ein großer Staat regiert sich nicht nach Parteiansichten."
AUGSTEIN = ("Je weniger Gläubige es gibt, desto herrschsüchtiger verlangen Staat und Gesellschaft den "
            "Lippendienst der Bürger.")
BOELL = ("Staat und Kirchen können nur zwei Möglichkeiten dulden: Ehe oder Prostitution, und in den meisten "
         "Fällen ist ihnen die Liebe außerhalb dieser beiden Gehege verdächtig.")
GERMAN_SHELF = [tiny_document("bismarck", BISMARCK, ["Otto von Bismarck"], language="de"),
                tiny_document("augstein", AUGSTEIN, ["Rudolf Augstein"], language="de"),
                tiny_document("boell", BOELL, ["Heinrich Böll"], language="de")]


def test_english_words_are_what_they_were():
    assert tokenize([SENTENCE])[0] == ENGLISH_TOKENS
    assert index_tokens([SENTENCE], "en")[0] == index_tokens([SENTENCE], None)[0] == ENGLISH_TOKENS
    assert index_tokens([SENTENCE], "ja")[0] == ENGLISH_TOKENS  # no stemmer: read as English, as before
    assert content_words(SENTENCE) == content_words(SENTENCE, "en") == ENGLISH_CONTENT


def test_german_words_use_german_stop_words_and_stemmer_and_are_tagged():
    # BM25 keeps German stop words (text.BM25_STOP_WORD_LANGUAGES); the checker's words drop them.
    assert index_tokens(["Die Staaten und der Staat"], "de")[0] == ["de:die", "de:staat", "de:und", "de:der",
                                                                   "de:staat"]
    assert tokenize(["Die Staaten"])[0] != tokenize(["der Staat"])[0]  # English reading: no match, "die" kept
    assert content_words("Die Staaten der Welt [1]", "de") == ["staat", "welt"]


def test_an_english_only_library_reads_every_query_in_english(library, private_cache):
    ingest(library, TINY_SHELF, progress=False)
    index = SearchIndex.load(library, vectors=False)
    assert index.word_languages() == ["en"]
    assert index.query_tokens(SENTENCE) == ENGLISH_TOKENS
    assert index.query_tokens("Warum lehnen Anarchisten den Staat ab?", "de") == tokenize(
        ["Warum lehnen Anarchisten den Staat ab?"])[0]


def test_a_german_query_finds_the_german_passage_by_an_inflected_form(library, private_cache):
    ingest(library, TINY_SHELF + GERMAN_SHELF, progress=False)
    searcher = Searcher(library, vectors=False)
    assert searcher.index.word_languages() == ["de", "en"]
    hits = searcher.search("Wie regieren sich große Staaten?", 3, mode="bm25")
    assert hits and hits[0].text == BISMARCK, [h.text for h in hits]
    assert all(h.language == "de" for h in hits)  # German words match German passages only
    # A one-word query's language cannot be told: it is read in every language held.
    found = {h.text for h in searcher.search("Staaten", 5, mode="bm25")}
    assert found == {BISMARCK, AUGSTEIN, BOELL}
    # English passages still answer English questions.
    assert "damp cellars" in searcher.search("families in damp cellars", 1, mode="bm25")[0].text


def test_the_saved_bm25_index_changes_with_a_documents_language(library, private_cache, tmp_path):
    ingest(library, GERMAN_SHELF, progress=False)
    first = SearchIndex.load(library, vectors=False)
    counted_in_german = set(bm25_folder().glob("segment-*"))
    library.con.execute("UPDATE documents SET language = 'en'")
    second = SearchIndex.load(library, vectors=False)
    assert "de:staat" in first.bm25.vocab_dict and "de:staat" not in second.bm25.vocab_dict
    # Every passage counted again, in English, into a new segment.
    assert len(set(bm25_folder().glob("segment-*")) - counted_in_german) == 1


def test_the_checker_reads_a_german_passage_with_german_words():
    checker = SupportChecker(None)  # words only
    claim = "Bismarck sagt, ein großer Staat regiere sich nicht nach Parteiansichten."
    lexical, _, _ = checker.scores([claim], [BISMARCK, AUGSTEIN], passage_languages=["de", "de"])
    as_english, _, _ = checker.scores([claim], [BISMARCK, AUGSTEIN])
    # bismarck sagt gross staat regi parteiansicht: 3 of 6 in the passage ("regiere"/"regiert" differ).
    assert lexical[0, 0] == 0.5 and lexical[0, 1] < 0.2
    # Read as English, German function words ("ein", "sich", "nicht", "nach")
    # counted as shared content: the overlap was inflated, the check weaker.
    assert as_english[0, 0] > 0.65
    assert {"es", "und", "den", "der"} <= set(content_words(AUGSTEIN))
    assert not {"es", "und", "den", "der"} & set(content_words(AUGSTEIN, "de"))


def test_bm25_built_in_batches_reads_each_language_as_bm25s_does():
    import pyarrow as pa

    from readingroom.search.bm25 import build_streaming
    from readingroom.search.index import build_bm25

    texts = [BISMARCK, "The states of the world are big.", "Les États du monde et l'État.", AUGSTEIN, SENTENCE]
    languages = ["de", "en", "fr", "de", None]
    streamed = build_streaming([(pa.array(texts[:3]), pa.array(languages[:3])),
                                (pa.array(texts[3:]), pa.array(languages[3:]))], None)
    built = build_bm25(texts, languages=languages)
    assert streamed.vocab_dict.keys() == built.vocab_dict.keys()
    for query in (["de:staat"], ["state"], ["fr:état"], ["de:der", "citi"]):
        assert np.allclose(streamed.get_scores(query), built.get_scores(query)), query
    assert np.flatnonzero(built.get_scores(["de:staat"])).tolist() == [0, 3]
    assert np.flatnonzero(built.get_scores(["state"])).tolist() == [1, 4]


def test_the_gate_reads_a_german_question_in_german_and_english_as_before(library, private_cache):
    from readingroom.search.relevance import retrieval_evidence

    ingest(library, TINY_SHELF + GERMAN_SHELF, progress=False)
    searcher = Searcher(library, vectors=False)
    question = "Wie regieren sich große Staaten?"
    assert searcher.query_language(question) == "de"
    hits = searcher.search(question, 3, mode="bm25")
    assert hits[0].text == BISMARCK
    evidence = retrieval_evidence(searcher, question, hits)
    # Read in German: "wie" and "sich" are stop words, and "große Staaten"
    # meets "großer Staat"; read in English (as before) the passage shares
    # only the stop word "sich" with the question, and "staaten" would count
    # as a word the library never uses.
    assert evidence["unknown_words"] == ["regi"]
    assert set(content_words(question)) & set(content_words(BISMARCK)) == {"sich"}
    assert all(np.count_nonzero(searcher.index.bm25.get_scores(["de:" + w])) for w in ("gross", "staat"))
    assert 0.4 < evidence["passages"][0]["coverage"] < 1.0  # gross and staat, not regi (regiert)

    # An English question over English passages: the coverage is the English
    # words' IDF-weighted share, exactly as the gate was calibrated.
    english = "Why were families living in damp cellars?"
    hits = searcher.search(english, 2, mode="bm25")
    evidence = retrieval_evidence(searcher, english, hits)
    words = list(dict.fromkeys(content_words(english)))
    scores = {w: searcher.index.bm25.get_scores([w]) for w in words}
    total_rows = len(searcher.index)
    weight = {w: np.log(1 + (total_rows - np.count_nonzero(s) + 0.5) / (np.count_nonzero(s) + 0.5))
              for w, s in scores.items()}
    present = set(content_words(hits[0].text))
    expected = sum(v for w, v in weight.items() if w in present) / sum(weight.values())
    assert evidence["passages"][0]["coverage"] == round(expected, 4)
