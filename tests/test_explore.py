"""explore.py on a small library made here, whose counts are known by hand.

Word counts below follow explore's definition: runs of letters and digits,
with inner apostrophes and hyphens ("striker's", "self-management" are one
word each).
"""
from __future__ import annotations

import pytest

from readingroom import Block, Document, Splitter, ingest, open_library
from readingroom.explore import stats as explore


def speech(key: str, year: int, author: str, *paragraphs: str) -> Document:
    return Document(
        source="speeches", key=key, title=f"Speech {key.upper()}", authors=[author], year=year,
        language="en",  # given, so no language detector is loaded
        blocks=[Block(p, section=("Address",), anchor=f"{key}-{i}") for i, p in enumerate(paragraphs)],
    )


SPEECH_A = speech(
    "a", 1901, "Ann Alpha",
    "The union is strong and the Union will last.",  # 9 words; union 2
    "A reunion is not a union of unions, but union union is.",  # 12 words; union 3
    "Workers strike; strikes and a striker's pay, striking back.",  # 9 words; strike* 3
)
SPEECH_B = speech(
    "b", 1905, "Bob Beta",
    "Labor and labour: the labor question.",  # 6 words; labor 2, labour 1
    "Mutual aid, mutual\naid and MUTUAL   AID.",  # 7 words; mutual aid 3
)
SPEECH_C = speech(
    "c", 1912, "Ann Alpha",
    "Self-management of the union's funds: don't strike.",  # 7 words; union 1, strike* 1
)
FAQ_ITEM = Document(  # no year, no author
    source="faq", key="d", title="Union without a year", language="en",
    blocks=[Block("Union without a year.")],  # 4 words; union 1
)
# Six short sentences in one paragraph: with a 16-token budget and 6 tokens
# of overlap, the fourth sentence ends the first passage and starts the
# second, so the "mutual aid" in it lies in two passages.
NOTES = Document(
    source="notes", key="e", title="Mutual Aid Notes", authors=["Gia Gamma"], language="en",
    blocks=[
        Block("Alpha beta gamma. Delta epsilon zeta. Eta theta iota. Mutual aid holds. "
              "Kappa lambda mu. Mutual aid again.", section=("Notes",), anchor="notes"),
        Block("Mutual aid <b>in</b> a later section.", section=("Later",), anchor="later"),
    ],  # 18 + 8 words ("<b>in</b>" is three: b, in, b); mutual aid 3
)


@pytest.fixture(scope="module")
def lib(tmp_path_factory):
    path = tmp_path_factory.mktemp("library") / "library.duckdb"
    with open_library(path) as library:
        ingest(library, [SPEECH_A, SPEECH_B, SPEECH_C, FAQ_ITEM, NOTES],
               splitter=Splitter(budget=16, overlap=6), progress=False)
    with open_library(path, read_only=True) as library:
        yield library


def rows(table, by):
    return {(r[by], r["term"]): r for r in table.to_dict("records")}


# --- term frequency ----------------------------------------------------------
def test_whole_words_only_and_the_wildcard(lib):
    freq = rows(explore.term_frequency(lib, ["union", "strike*", "labor", "labour"]), "year")
    # "reunion" and "unions" are other words; "Union" and "union's" are the word.
    assert freq[(1901, "union")]["occurrences"] == 5
    assert freq[(1912, "union")]["occurrences"] == 1
    assert freq[(1905, "union")]["occurrences"] == 0
    # strike, strikes, striker('s); not "striking".
    assert freq[(1901, "strike*")]["occurrences"] == 3
    assert freq[(1912, "strike*")]["occurrences"] == 1
    assert (freq[(1905, "labor")]["occurrences"], freq[(1905, "labour")]["occurrences"]) == (2, 1)


def test_phrases_match_across_any_whitespace_and_case(lib):
    freq = rows(explore.term_frequency(lib, ["mutual aid"], by="source"), "source")
    assert freq[("speeches", "mutual aid")]["occurrences"] == 3
    assert freq[("notes", "mutual aid")]["occurrences"] == 3


def test_words_and_rate_per_10k(lib):
    table = explore.term_frequency(lib, ["union"])
    assert table["year"].tolist() == [1901, 1905, 1912]  # the FAQ item has no year
    assert table["words"].tolist() == [30, 13, 7]
    assert table["rate"].tolist() == pytest.approx([5 / 30 * 10_000, 0.0, 1 / 7 * 10_000])
    per_100 = explore.term_frequency(lib, ["union"], per=100)
    assert per_100["rate"].tolist() == pytest.approx([5 / 30 * 100, 0.0, 1 / 7 * 100])


def test_by_decade_author_and_source(lib):
    decades = rows(explore.term_frequency(lib, ["union"], by="decade"), "decade")
    assert {k: (r["documents"], r["words"], r["occurrences"]) for k, r in decades.items()} == {
        (1900, "union"): (2, 43, 5), (1910, "union"): (1, 7, 1),
    }
    authors = rows(explore.term_frequency(lib, ["union"], by="author"), "author")
    assert {k[0]: (r["words"], r["occurrences"]) for k, r in authors.items()} == {
        "Ann Alpha": (37, 6), "Bob Beta": (13, 0), "Gia Gamma": (26, 0), "unknown": (4, 1),
    }
    only_faq = explore.term_frequency(lib, ["union"], by="source", source="faq")
    assert only_faq[["source", "words", "occurrences"]].values.tolist() == [["faq", 4, 1]]


def test_terms_keep_their_order_and_every_group_has_every_term(lib):
    table = explore.term_frequency(lib, ["strike*", "union"], by="decade")
    assert [(r.decade, r.term) for r in table.itertuples()] == [
        (1900, "strike*"), (1900, "union"), (1910, "strike*"), (1910, "union"),
    ]


def test_terms_are_literal_text_not_regex_or_sql(lib):
    freq = explore.term_frequency(
        lib, ["U.S.", "union|labor", "(union)", "union'); DROP TABLE documents; --"], by="source"
    )
    assert freq["occurrences"].sum() == 0
    assert lib.con.execute("SELECT count(*) FROM documents").fetchone()[0] == 5


def test_word_boundaries_are_unicode_and_counting_agrees_with_kwic(tmp_path):
    # RE2's own \b is ASCII only: it would see no word end after "café".
    doc = Document(source="letters", key="u", title="Lettre", year=1880, language="fr",
                   blocks=[Block("Émile's café, cafés and a café-bar; Emile.")])
    with open_library(tmp_path / "unicode.duckdb") as library:
        ingest(library, [doc], progress=False)
        freq = rows(explore.term_frequency(library, ["café", "émile", "CAFÉ*"]), "year")
        assert [freq[(1880, t)]["occurrences"] for t in ["café", "émile", "CAFÉ*"]] == [2, 1, 3]
        assert freq[(1880, "café")]["words"] == 7
        for term, expected in [("café", 2), ("émile", 1), ("CAFÉ*", 3)]:
            assert len(explore.kwic(library, term)) == expected


@pytest.mark.parametrize("term", ["", "   ", "*", "st*rike", "strike* now"])
def test_malformed_terms_are_refused(lib, term):
    with pytest.raises(ValueError):
        explore.term_frequency(lib, [term])


def test_unknown_grouping_is_refused(lib):
    with pytest.raises(ValueError, match="cannot group by"):
        explore.term_frequency(lib, ["union"], by="title; DROP TABLE documents")


def test_documents_using_a_term_most_first(lib):
    table = explore.documents_using(lib, "union")
    assert table[["key", "occurrences", "words"]].values.tolist() == [
        ["a", 5, 30], ["d", 1, 4], ["c", 1, 7],  # ties: by source, then year, then key
    ]
    assert table["rate"].tolist() == pytest.approx([5 / 30 * 1e4, 1 / 4 * 1e4, 1 / 7 * 1e4])
    assert explore.documents_using(lib, "union", source="faq")["key"].tolist() == ["d"]
    assert explore.documents_using(lib, "union", limit=1)["key"].tolist() == ["a"]


# --- keyword in context -------------------------------------------------------
def citation_of_first_passage_holding(lib, doc_id, start, end):
    passages = lib.passages(doc_id)
    holding = passages[(passages.char_start <= start) & (passages.char_end >= end)]
    return holding.sort_values("ordinal").citation.tolist()


def test_kwic_shows_each_occurrence_once_with_the_passage_that_holds_it(lib):
    text = NOTES.text
    starts = [text.index("Mutual aid holds"), text.index("Mutual aid again"), text.index("Mutual aid <b>")]
    citations = [citation_of_first_passage_holding(lib, NOTES.doc_id, s, s + 10) for s in starts]
    assert len(citations[0]) == 2  # the overlap this test is about: two passages hold it

    hits = explore.kwic(lib, "mutual aid", width=12, source="notes")
    assert hits["position"].tolist() == starts
    assert hits["match"].tolist() == ["Mutual aid"] * 3
    assert hits["citation"].tolist() == [c[0] for c in citations]
    assert hits["citation"][0] != hits["citation"][2]  # another section, another citation
    assert hits["anchor"].tolist() == ["notes", "notes", "later"]
    assert (hits["title"] == "Mutual Aid Notes").all()
    # Twelve characters either side, runs of whitespace (here a paragraph
    # break) shown as one space, and none at the ends.
    assert hits["left"].tolist() == ["theta iota.", "lambda mu.", "aid again."]
    assert hits["right"].tolist() == ["holds. Kapp", "again. Mut", "<b>in</b> a"]


def test_kwic_context_is_the_text_around_the_match_on_one_line(lib):
    hits = explore.kwic(lib, "mutual aid", width=8, source="speeches")
    text = SPEECH_B.text
    assert len(hits) == 3
    for hit in hits.itertuples():
        start = hit.position
        end = start + len(hit.match)
        assert hit.left == " ".join(text[max(0, start - 8):start].split())
        assert hit.right == " ".join(text[end:end + 8].split())
    assert hits["match"].tolist() == ["Mutual aid", "mutual\naid", "MUTUAL   AID"]
    assert set(hits["citation"]) <= set(lib.passages(SPEECH_B.doc_id).citation)


def test_kwic_limit_per_document_and_order(lib):
    assert len(explore.kwic(lib, "mutual aid", limit=4)) == 4
    spread = explore.kwic(lib, "mutual aid", per_document=1)
    # Sources in order (notes, speeches), one hit from each document.
    assert spread["source"].tolist() == ["notes", "speeches"]
    assert explore.kwic(lib, "solidarity").empty


def test_kwic_html_escapes_corpus_text(lib):
    hits = explore.kwic(lib, "mutual aid", source="notes")
    page = explore.kwic_html(hits)
    assert "<b>in</b>" not in page
    assert "&lt;b&gt;in&lt;/b&gt;" in page
    assert page.count("<tr>") == 1 + len(hits)


# --- what is in the library ---------------------------------------------------
def test_overview_by_source(lib):
    table = explore.overview(lib)
    passages = dict(lib.con.execute(
        "SELECT d.source, count(*) FROM passages p JOIN documents d USING (doc_id) GROUP BY 1"
    ).fetchall())
    assert table["source"].tolist() == ["speeches", "notes", "faq"]
    assert table["documents"].tolist() == [3, 1, 1]
    assert table["words"].tolist() == [50, 26, 4]
    assert table["passages"].tolist() == [passages["speeches"], passages["notes"], passages["faq"]]
    assert table["first_year"].tolist()[0] == 1901 and table["last_year"].tolist()[0] == 1912


def test_overview_by_author_and_language(lib):
    authors = explore.overview(lib, by="author")
    assert dict(zip(authors["author"], authors["documents"])) == {
        "Ann Alpha": 2, "Bob Beta": 1, "Gia Gamma": 1, "unknown": 1,
    }
    languages = explore.overview(lib, by="language")
    assert languages[["language", "documents", "words"]].values.tolist() == [["en", 5, 80]]


def test_documents_per_year(lib):
    table = explore.documents_per_year(lib)
    assert table.values.tolist() == [[1901, 1, 30], [1905, 1, 13], [1912, 1, 7]]
    assert explore.documents_per_year(lib, source="faq").empty
    filled = explore.documents_per_year(lib, every_year=True)
    assert filled["year"].tolist() == list(range(1901, 1913))
    assert filled.set_index("year").loc[1902].tolist() == [0, 0]


def test_find_documents_and_browse_passages(lib):
    assert explore.find_documents(lib, "alpha")["key"].tolist() == ["a", "c"]  # by author
    assert explore.find_documents(lib, "speech b")["key"].tolist() == ["b"]  # by title
    assert explore.find_documents(lib, "%").empty  # a literal, not a LIKE pattern
    browsed = explore.passages_of(lib, NOTES.doc_id)
    assert browsed["ordinal"].tolist() == list(range(len(browsed)))
    assert all(NOTES.text[r.char_start:r.char_end] == r.text for r in browsed.itertuples())
    later = explore.passages_of(lib, NOTES.doc_id, section="later")
    assert later["anchor"].tolist() == ["later"]
    assert len(explore.passages_of(lib, NOTES.doc_id, limit=1)) == 1
    printed = explore.format_passages(later)
    assert printed.splitlines() == [
        f"[{later.ordinal[0]}] {later.citation[0]}  #later",
        "Mutual aid <b>in</b> a later section.",
    ]
    outline = explore.sections_of(lib, NOTES.doc_id)
    assert outline["section"].tolist() == ["Notes", "Later"]
    assert outline["passages"].sum() == len(browsed)


# --- plots --------------------------------------------------------------------
def test_plots_are_figures_with_titles_and_labels(lib):
    pytest.importorskip("matplotlib")
    freq = explore.term_frequency(lib, ["union", "strike*"])
    lines = explore.plot_term_frequency(freq, window=3)
    (ax,) = lines.axes
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["union", "strike*"]
    assert ax.get_ylabel() == "occurrences per 10,000 words"
    assert len(explore.plot_term_frequency(freq, panels=True).axes) == 2
    assert explore.plot_timeline(explore.documents_per_year(lib)).axes[1].get_xlabel() == "year"
    bars = explore.plot_counts(explore.overview(lib, by="author"))
    assert bars.axes[0].get_title() == "Documents by author"
    with pytest.raises(ValueError):
        explore.plot_term_frequency(explore.term_frequency(lib, ["union"], by="author"))


def test_rolling_rate_weighs_by_words_and_skips_missing_years(lib):
    freq = explore.term_frequency(lib, ["union"]).set_index("year")
    rate = explore.rolling_rate(freq, window=5)
    assert rate.index.tolist() == list(range(1901, 1913))
    # 1903: the window 1901-1905 holds 1901 (5 in 30 words) and 1905 (0 in 13).
    assert rate[1903] == pytest.approx(5 / 43 * 10_000)
    # 1908: 1906-1910 holds no document at all.
    assert rate.isna()[1908]
