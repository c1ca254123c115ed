"""2-D maps and neighbour tables of passage embeddings.

For looking at embeddings rather than searching with them: a small sample
of passages is drawn from the library, embedded in memory (see
embed.load_embedder), and then

- neighbours(): the passages nearest to one vector, as a table with citations;
- similarities(): the cosine similarity of every pair of a few vectors;
- rank_of(): where the right passage comes, among all, for a question;
- project(): the vectors flattened to two dimensions (PCA, then t-SNE);
- plot_map(): those points drawn, one panel per way of colouring them;
- plot_ranks(): the ranks of the right passages, question by question.

Nothing here writes to the library. Vectors are unit rows (what
encode_documents returns), so a dot product is the cosine similarity. Ties
are broken by position, so every table comes out the same on every run.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from readingroom.viz import new_figure

OTHER = "#d0d0d0"  # points a panel does not colour (None in its labels)


# --- choosing passages ---------------------------------------------------------
# What each chosen passage brings along, from passages p and documents d.
_SELECT = """
    SELECT p.passage_id, d.source, d.key, d.year, d.metadata->>'party' AS party,
           coalesce(p.section[-1], '') AS section, p.citation, p.text
    FROM passages p JOIN documents d USING (doc_id)
"""


def sample_passages(lib, per_source: int, sources: list[str] | None = None,
                    sections: list[str] = ()) -> pd.DataFrame:
    """`per_source` passages of each source (all sources when None), plus
    every passage under a heading containing one of `sections` (e.g.
    "H.1.1"), without repeats.

    The sample is the first passages by passage_id: a sha256, so this is an
    arbitrary but fixed shuffle, the same on every run and every machine
    that holds the same texts. Rows come in document order (source, key,
    ordinal); `section` is the innermost heading, `party` is the metadata
    field of that name (the State of the Union addresses have it)."""
    if per_source < 0:
        raise ValueError(f"per_source must be 0 or more, got {per_source}")
    if sources is None:
        sources = [s for (s,) in lib.con.execute("SELECT DISTINCT source FROM documents ORDER BY 1").fetchall()]
    return lib.con.execute(
        f"""
        WITH drawn AS (
            SELECT p.passage_id,
                   row_number() OVER (PARTITION BY d.source ORDER BY p.passage_id) AS draw,
                   EXISTS (SELECT 1 FROM unnest(?::VARCHAR[]) AS s(wanted)
                           WHERE contains(array_to_string(p.section, chr(10)), s.wanted)) AS wanted
            FROM passages p JOIN documents d USING (doc_id)
            WHERE d.source IN (SELECT unnest(?::VARCHAR[]))
        )
        {_SELECT}
        WHERE p.passage_id IN (SELECT passage_id FROM drawn WHERE draw <= ? OR wanted)
        ORDER BY d.source, d.key, p.ordinal
        """,
        [list(sections), list(sources), per_source],
    ).df().astype({"year": "Int64"})


def passages_with(lib, phrases: list[str]) -> pd.DataFrame:
    """For each phrase, the first passage (in document order) whose text
    contains it exactly: a way to name the passage that answers a question
    without copying its id. Raises LookupError for a phrase found nowhere."""
    rows = []
    for phrase in phrases:
        found = lib.con.execute(
            f"{_SELECT} WHERE contains(p.text, ?) ORDER BY d.source, d.key, p.ordinal LIMIT 1",
            [phrase],
        ).df()
        if found.empty:
            raise LookupError(f"no passage contains {phrase!r}")
        rows.append(found)
    return pd.concat(rows, ignore_index=True).astype({"year": "Int64"})


# --- similarity and neighbours -------------------------------------------------
def _scores(vectors: np.ndarray, query: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    query = np.asarray(query, dtype=np.float32)
    if vectors.ndim != 2 or query.shape != (vectors.shape[1],):
        raise ValueError(f"a query of {vectors.shape[1:]} numbers is needed for vectors of "
                         f"shape {vectors.shape}, not {query.shape}")
    return vectors @ query


def _order(scores: np.ndarray) -> np.ndarray:
    """Positions from the highest score down; equal scores by position."""
    return np.lexsort((np.arange(len(scores)), -scores))


def similarities(labels: list[str], vectors: np.ndarray) -> pd.DataFrame:
    """The cosine similarity of every pair of unit vectors, labelled."""
    vectors = np.asarray(vectors, dtype=np.float32)
    if len(labels) != len(vectors):
        raise ValueError(f"{len(labels)} labels for {len(vectors)} vectors")
    return pd.DataFrame(vectors @ vectors.T, index=labels, columns=labels)


def neighbours(vectors: np.ndarray, query: np.ndarray, passages: pd.DataFrame, k: int = 5,
               exclude: int | None = None, width: int = 90) -> pd.DataFrame:
    """The `k` passages whose vectors are nearest `query`: rank, score (the
    cosine similarity), source, key, section, citation and the first `width`
    characters of the text. `passages` has one row per vector, in the same
    order; `exclude` is a row to leave out (the query passage itself)."""
    scores = _scores(vectors, query)
    if len(passages) != len(scores):
        raise ValueError(f"{len(passages)} passages for {len(scores)} vectors")
    order = [i for i in _order(scores) if i != exclude][:k]
    table = passages.iloc[order][["source", "key", "section", "citation"]].reset_index(drop=True)
    table.insert(0, "score", scores[order].astype(float))
    table.insert(0, "rank", range(1, len(order) + 1))
    table["text"] = [_start(passages["text"].iloc[i], width) for i in order]
    return table


def _start(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[:width - 1].rstrip() + "…"


def rank_of(vectors: np.ndarray, query: np.ndarray, target: int) -> int:
    """Where row `target` comes among all rows for `query`: 1 when it is the
    nearest. A tie counts against it (rows before it with the same score
    come first), as in neighbours()."""
    scores = _scores(vectors, query)
    return int(np.flatnonzero(_order(scores) == target)[0]) + 1


# --- maps ----------------------------------------------------------------------
def project(vectors: np.ndarray, method: str = "tsne", random_state: int = 0,
            perplexity: float = 30.0, pca_dimensions: int = 50, max_iter: int = 500) -> np.ndarray:
    """Two coordinates per vector. "pca": the two directions along which the
    vectors vary most. "tsne": PCA to `pca_dimensions` first (faster, less
    noise), then `max_iter` rounds of t-SNE, which keeps near neighbours
    near and says little about the distances between far-apart groups. The
    same vectors and `random_state` give the same map."""
    from sklearn.decomposition import PCA

    vectors = np.asarray(vectors, dtype=np.float32)
    if len(vectors) < 3:
        raise ValueError(f"a map needs at least 3 points, not {len(vectors)}")
    if method == "pca":
        return PCA(n_components=2, random_state=random_state).fit_transform(vectors)
    if method != "tsne":
        raise ValueError(f"unknown method {method!r}; choose 'tsne' or 'pca'")
    from sklearn.manifold import TSNE

    reduced = PCA(n_components=min(pca_dimensions, *vectors.shape),
                  random_state=random_state).fit_transform(vectors)
    # t-SNE needs fewer neighbours per point than there are points.
    perplexity = min(perplexity, (len(vectors) - 1) / 3)
    return TSNE(n_components=2, perplexity=perplexity, init="pca", max_iter=max_iter,
                random_state=random_state).fit_transform(reduced)


def plot_map(coords: np.ndarray, panels: dict[str, list], title: str,
             colours: dict[str, str] | None = None, other: str = "other",
             note: str = "The axes have no units: only which points lie near each other means something."):
    """One scatter panel per entry of `panels` (panel title -> one label per
    point), all over the same `coords`. Points labelled None are drawn light
    grey, behind the others, and named `other` in the legend. Labels are
    coloured from `colours` (label -> colour), else in turn, in sorted order,
    so a panel looks the same on every run; the legend counts each."""
    coords = np.asarray(coords)
    colours = colours or {}
    fig, axes = new_figure(4.6 * len(panels), 5.6, columns=len(panels))
    for ax, (name, labels) in zip(axes, panels.items()):
        labels = pd.Series(list(labels), dtype=object)
        if len(labels) != len(coords):
            raise ValueError(f"panel {name!r}: {len(labels)} labels for {len(coords)} points")
        rest = labels.isna().to_numpy()
        if rest.any():
            ax.scatter(coords[rest, 0], coords[rest, 1], s=8, color=OTHER, linewidths=0,
                       label=f"{other} ({rest.sum()})")
        for i, value in enumerate(sorted(labels.dropna().unique(), key=str)):
            chosen = (labels == value).to_numpy()
            ax.scatter(coords[chosen, 0], coords[chosen, 1], s=10, linewidths=0, alpha=0.85,
                       color=colours.get(value, f"C{i}"), label=f"{value} ({chosen.sum()})")
        ax.set_title(name, fontsize=11)
        ax.set_xticks([])
        ax.set_yticks([])
        # Below the panel, so that it hides no points.
        ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.02), ncols=2,
                  markerscale=1.8, frameon=False)
    fig.suptitle(title)
    if note:
        fig.supxlabel(note, fontsize=9, color="#555555")
    return fig


def plot_ranks(ranks: pd.DataFrame, out_of: int, title: str):
    """Horizontal bars, one group per question (the index of `ranks`), one
    bar per model (its columns): the rank of the right passage among
    `out_of`. Shorter is better; 1 is found first."""
    fig, (ax,) = new_figure(9, 0.9 + 0.55 * len(ranks) * len(ranks.columns) / 2)
    height = 0.8 / len(ranks.columns)
    positions = np.arange(len(ranks))[::-1]  # the first question at the top
    for j, model in enumerate(ranks.columns):
        y = positions + 0.4 - height * (j + 0.5)
        bars = ax.barh(y, ranks[model], height=height * 0.92, color=f"C{j}", label=model)
        ax.bar_label(bars, labels=[str(int(r)) for r in ranks[model]], padding=3, fontsize=8)
    ax.set_yticks(positions, [str(q) for q in ranks.index], fontsize=9)
    ax.set_xlim(0, out_of * 1.06)
    ax.axvline(1, color="#555555", linewidth=0.8, linestyle=":")
    ax.set_xlabel(f"rank of the right passage among {out_of} (1 = found first; shorter is better)")
    ax.legend(fontsize=9, loc="lower right")
    ax.set_title(title)
    return fig
