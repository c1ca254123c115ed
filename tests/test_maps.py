"""maps.py on a small library made here and on vectors made by hand: no
embedding model is loaded, so these are fast."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from readingroom import Block, Document, ingest, open_library
from readingroom.explore import maps


def document(source: str, key: str, sections: dict[str, list[str]], **fields) -> Document:
    """One passage per paragraph: each paragraph is a subsection of its own
    ("part 0", "part 1", ... under its heading), and a section boundary
    always ends a passage."""
    blocks = [Block(text, section=(heading, f"part {i}"))
              for heading, texts in sections.items() for i, text in enumerate(texts)]
    return Document(source=source, key=key, title=key.title(), blocks=blocks,
                    language="en", **fields)  # a language given, so no detector is loaded


FAQ = document("faq", "h1", {
    "H.1 Opening": ["An opening paragraph about the state."],
    "H.1.1 Bakunin": [f"Bakunin paragraph number {i} on the new class." for i in range(4)],
    "H.1.2 Differences": ["Anarchists and Marxists differ on the state."],
})
SPEECHES = [
    document("speeches", f"{year}_speech", {"Address": [f"Address of {year}, paragraph {i}." for i in range(3)]},
             year=year, metadata={"party": party})
    for year, party in [(1823, "Democratic-Republican"), (1941, "Democratic"), (1961, "Republican")]
]


@pytest.fixture(scope="module")
def lib(tmp_path_factory):
    path = tmp_path_factory.mktemp("library") / "library.duckdb"
    with open_library(path) as library:
        ingest(library, [FAQ, *SPEECHES], progress=False)
    with open_library(path, read_only=True) as library:
        yield library


# --- choosing passages ---------------------------------------------------------
def test_the_sample_takes_the_first_passages_of_each_source_by_id(lib):
    sample = maps.sample_passages(lib, per_source=2)
    assert sample.groupby("source").size().to_dict() == {"faq": 2, "speeches": 2}
    for source, rows in sample.groupby("source"):
        first = lib.con.execute(
            "SELECT passage_id FROM passages JOIN documents USING (doc_id) WHERE source = ? "
            "ORDER BY passage_id LIMIT 2", [source]).fetchall()
        assert set(rows["passage_id"]) == {p for (p,) in first}
    assert sample.equals(maps.sample_passages(lib, per_source=2))  # the same every time


def test_the_sample_adds_whole_sections_without_repeats(lib):
    sample = maps.sample_passages(lib, per_source=1, sections=["H.1.1"])
    bakunin = sample[sample["text"].str.startswith("Bakunin")]
    assert len(bakunin) == 4
    assert sample["passage_id"].is_unique
    assert len(sample) <= 4 + 2
    # In document order: the section's paragraphs in sequence.
    assert bakunin["text"].tolist() == [f"Bakunin paragraph number {i} on the new class." for i in range(4)]


def test_the_sample_brings_year_party_and_the_innermost_heading(lib):
    sample = maps.sample_passages(lib, per_source=100, sources=["speeches"])
    assert len(sample) == 9 and set(sample["source"]) == {"speeches"}
    by_year = sample.drop_duplicates("year").set_index("year")
    assert by_year.loc[1941, "party"] == "Democratic"
    assert by_year.loc[1823, "section"] == "part 0"  # the innermost heading
    assert str(sample["year"].dtype) == "Int64"
    with pytest.raises(ValueError):
        maps.sample_passages(lib, per_source=-1)


def test_passages_with_names_the_first_passage_holding_each_phrase(lib):
    found = maps.passages_with(lib, ["number 2 on the new", "Address of 1941"])
    assert found["text"][0] == "Bakunin paragraph number 2 on the new class."
    assert found["text"][1] == "Address of 1941, paragraph 0."  # the first of three that hold it
    with pytest.raises(LookupError, match="no passage contains"):
        maps.passages_with(lib, ["not in any passage"])


# --- similarity and neighbours -------------------------------------------------
def unit(*rows) -> np.ndarray:
    vectors = np.array(rows, dtype=np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


PASSAGES = pd.DataFrame({
    "source": ["a", "a", "b", "b"],
    "key": ["k1", "k1", "k2", "k3"],
    "section": ["one", "one", "", ""],
    "citation": ["A ¶1", "A ¶2", "B", "C"],
    "text": ["first   passage\n text", "second", "third " * 30, "fourth"],
})
VECTORS = unit([1, 0, 0], [0.9, 0.1, 0], [0, 1, 0], [0.9, 0.1, 0])  # rows 1 and 3 the same


def test_neighbours_rank_by_cosine_and_break_ties_by_position():
    table = maps.neighbours(VECTORS, VECTORS[0], PASSAGES, k=3)
    assert table["rank"].tolist() == [1, 2, 3]
    assert table["citation"].tolist() == ["A ¶1", "A ¶2", "C"]  # A ¶2 and C tie: the earlier first
    assert table["score"][0] == pytest.approx(1.0)
    assert table["score"][1] == pytest.approx(table["score"][2])
    assert table["text"][0] == "first passage text"  # whitespace collapsed


def test_neighbours_leave_out_the_query_passage_and_shorten_long_texts():
    table = maps.neighbours(VECTORS, VECTORS[2], PASSAGES, k=4, exclude=2, width=20)
    assert "B" not in table["citation"].tolist() and len(table) == 3
    long = maps.neighbours(VECTORS, VECTORS[2], PASSAGES, k=1, width=20)["text"][0]
    assert len(long) <= 20 and long.endswith("…")


def test_neighbours_check_their_inputs():
    with pytest.raises(ValueError):
        maps.neighbours(VECTORS, np.ones(4, dtype=np.float32), PASSAGES)
    with pytest.raises(ValueError):
        maps.neighbours(VECTORS, VECTORS[0], PASSAGES.head(2))


def test_rank_of_counts_ties_against_the_target():
    assert maps.rank_of(VECTORS, VECTORS[0], 0) == 1
    assert maps.rank_of(VECTORS, VECTORS[0], 1) == 2
    assert maps.rank_of(VECTORS, VECTORS[0], 3) == 3  # tied with row 1, which comes first
    assert maps.rank_of(VECTORS, VECTORS[0], 2) == 4


def test_similarities_are_a_labelled_symmetric_table():
    table = maps.similarities(["x", "y", "z"], unit([1, 0], [1, 1], [0, -1]))
    assert table.loc["x", "x"] == pytest.approx(1.0)
    assert table.loc["x", "y"] == pytest.approx(table.loc["y", "x"]) == pytest.approx(2 ** -0.5)
    assert table.loc["x", "z"] == pytest.approx(0.0, abs=1e-7)
    with pytest.raises(ValueError):
        maps.similarities(["x"], unit([1, 0], [0, 1]))


# --- maps ----------------------------------------------------------------------
def clusters(n: int = 30, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Two well-separated groups of unit vectors in 16 dimensions."""
    rng = np.random.default_rng(seed)
    centres = np.zeros((2, 16), dtype=np.float32)
    centres[0, 0] = centres[1, 1] = 1
    labels = np.repeat([0, 1], n)
    vectors = centres[labels] + rng.normal(0, 0.05, (2 * n, 16)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True), labels


@pytest.mark.parametrize("method", ["pca", "tsne"])
def test_a_map_keeps_groups_apart_and_is_the_same_every_time(method):
    vectors, labels = clusters()
    coords = maps.project(vectors, method=method, random_state=0, max_iter=300)
    assert coords.shape == (len(vectors), 2)
    np.testing.assert_array_equal(coords, maps.project(vectors, method=method, random_state=0, max_iter=300))
    # Every point is nearer its own group's centre than the other's.
    centres = np.array([coords[labels == g].mean(axis=0) for g in (0, 1)])
    nearest = np.argmin(np.linalg.norm(coords[:, None, :] - centres[None], axis=2), axis=1)
    assert (nearest == labels).all()


def test_project_refuses_what_it_cannot_map():
    with pytest.raises(ValueError, match="at least 3"):
        maps.project(np.eye(2, dtype=np.float32))
    with pytest.raises(ValueError, match="unknown method"):
        maps.project(np.eye(4, dtype=np.float32), method="umap")


def test_plot_map_draws_one_panel_per_colouring_with_counted_legends():
    vectors, labels = clusters(n=5)
    coords = maps.project(vectors, method="pca")
    names = np.where(labels == 0, "first", "second")
    only_some = [None if i % 2 else "odd one" for i in range(len(coords))]
    fig = maps.plot_map(coords, {"groups": names, "some": only_some}, title="A map",
                        colours={"first": "red"}, other="the rest")
    axes = fig.get_axes()
    assert [ax.get_title() for ax in axes] == ["groups", "some"]
    assert [t.get_text() for t in axes[0].get_legend().get_texts()] == ["first (5)", "second (5)"]
    assert [t.get_text() for t in axes[1].get_legend().get_texts()] == ["the rest (5)", "odd one (5)"]
    assert axes[0].collections[0].get_facecolor()[0][:3] == pytest.approx((1, 0, 0))
    with pytest.raises(ValueError):
        maps.plot_map(coords, {"short": ["x"]}, title="A map")


def test_plot_ranks_draws_a_bar_per_question_and_model():
    ranks = pd.DataFrame({"model a": [1, 12], "model b": [1, 1]}, index=["q1", "q2"])
    fig = maps.plot_ranks(ranks, out_of=44, title="Ranks")
    (ax,) = fig.get_axes()
    assert len(ax.patches) == 4
    labels = dict(zip(ax.get_yticks(), (t.get_text() for t in ax.get_yticklabels())))
    assert [labels[y] for y in sorted(labels, reverse=True)] == ["q1", "q2"]  # the first on top
