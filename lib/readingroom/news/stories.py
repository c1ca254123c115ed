"""Stories: the items of several outlets (or of one, over days) about the
same event, grouped.

Each item is represented by the vector of its first passage (headline and
lead, already stored by `update`), and items are taken in time order: an
item joins the story whose centroid is closest, if the cosine reaches
STORY_THRESHOLD and the story's latest item is within `window_hours`;
otherwise it starts a story of its own.

Why embedding cosine and not MinHash over shingles: shingles find copies of
the same text (one wire story run by two papers), but outlets that report an
event themselves share few word sequences. Measured on 13 same-story pairs
(6 in the Reuters sample: the same news on two days, e.g. "KUWAIT SAYS NO
PLANS FOR EMERGENCY OPEC TALKS" and "KUWAIT MINISTER SAYS NO EMERGENCY OPEC
TALKS SET"; 7 across the fixture feeds' three outlets) among 4,089 pairs of
91 items: word-trigram Jaccard at 0.05 found 5 of the 13 pairs (with 7 false
ones), at 0.1 4 of 13; their Jaccard is 0.00-0.10 for
independently written reports of one event, which MiniLM puts at cosine
0.65-0.90. Centroid cosine at 0.65 found 12 of 13 with 3 false pairs (single
linkage at 0.65: 12 with 9 false ones, chaining OPEC stories together).
The four posted-price cuts of 26 February 1987 were left out of the count:
one story or four is a matter of taste.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

STORY_THRESHOLD = 0.65
WINDOW_HOURS = 72


@dataclass
class Cluster:
    rows: list[int] = field(default_factory=list)  # positions in the items table, oldest first


def item_vectors(searcher, items: pd.DataFrame) -> np.ndarray:
    """One unit vector per item: its first passage's stored vector under the
    searcher's embedder, encoded now where none is stored."""
    index = searcher.index
    embedder = index.embedder
    if embedder is None:
        from readingroom.models.embed import load_embedder

        embedder = load_embedder()
    first = dict(searcher.lib.con.execute(
        "SELECT doc_id, passage_id FROM passages WHERE ordinal = 0 AND doc_id IN (SELECT unnest(?))",
        [items["doc_id"].tolist()]).fetchall())
    vectors = np.zeros((len(items), embedder.dimensions), dtype=np.float32)
    missing = []
    for position, doc_id in enumerate(items["doc_id"]):
        row = index.row_of.get(first.get(doc_id))
        if index.embedder is not None and row is not None and index.has_vector[row]:
            vectors[position] = index.vector_of(np.array([row]))[0]
        else:
            missing.append(position)
    if missing:
        ids = [first[items["doc_id"].iloc[p]] for p in missing]
        texts = dict(searcher.lib.con.execute(
            "SELECT passage_id, text FROM passages WHERE passage_id IN (SELECT unnest(?))", [ids]).fetchall())
        vectors[missing] = embedder.encode_documents([texts[i] for i in ids])
    return vectors


def cluster(vectors: np.ndarray, times: pd.Series, threshold: float = STORY_THRESHOLD,
            window_hours: float = WINDOW_HOURS) -> list[Cluster]:
    """Group items (rows of `vectors`, with their times) into stories; see
    the module notes. Stories come out in the order they began."""
    moments = pd.to_datetime(times).to_numpy()
    order = np.argsort(moments, kind="stable")
    window = np.timedelta64(int(window_hours * 3600), "s")
    stories: list[Cluster] = []
    sums: list[np.ndarray] = []  # each story's sum of vectors: its centroid's direction
    for row in order.tolist():
        best, best_cosine = None, -1.0
        for s, story in enumerate(stories):
            if moments[row] - moments[story.rows[-1]] > window:
                continue
            centroid = sums[s] / (np.linalg.norm(sums[s]) or 1.0)
            cosine = float(vectors[row] @ centroid)
            if cosine > best_cosine:
                best, best_cosine = s, cosine
        if best is not None and best_cosine >= threshold:
            stories[best].rows.append(row)
            sums[best] = sums[best] + vectors[row]
        else:
            stories.append(Cluster([row]))
            sums.append(vectors[row].astype(np.float64).copy())
    return stories


# --- measuring the grouping (notebook 07) ------------------------------------------------------

def shingles(text: str, n: int = 3) -> set[str]:
    """The text's word n-grams, lower case: what MinHash would estimate the
    Jaccard similarity of (computed exactly here: a window's items are few)."""
    import re

    words = re.findall(r"[a-z0-9]+", text.lower())
    return {" ".join(words[i:i + n]) for i in range(max(1, len(words) - n + 1))}


def jaccard_matrix(texts: list[str], n: int = 3) -> np.ndarray:
    sets = [shingles(t, n) for t in texts]
    m = np.eye(len(sets))
    for i in range(len(sets)):
        for j in range(i + 1, len(sets)):
            m[i, j] = m[j, i] = len(sets[i] & sets[j]) / max(1, len(sets[i] | sets[j]))
    return m


def single_link(similarity: np.ndarray, times: pd.Series, threshold: float,
                window_hours: float = WINDOW_HOURS) -> list[Cluster]:
    """Stories as the connected pairs at or above the threshold (within the
    window): the simple alternative to `cluster`, which chains."""
    moments = pd.to_datetime(times).to_numpy()
    window = np.timedelta64(int(window_hours * 3600), "s")
    parent = list(range(len(similarity)))

    def root(i):
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i in range(len(similarity)):
        for j in range(i + 1, len(similarity)):
            if similarity[i, j] >= threshold and abs(moments[i] - moments[j]) <= window:
                parent[root(i)] = root(j)
    groups: dict[int, list[int]] = {}
    for i in np.argsort(moments, kind="stable").tolist():
        groups.setdefault(root(i), []).append(i)
    return [Cluster(rows) for rows in groups.values()]


def pair_quality(clusters: list[Cluster], keys: list[str], same: list[set[str]],
                 either: list[set[str]] = ()) -> dict:
    """Pairwise precision and recall of a grouping against known stories:
    `keys` name the rows (guids), `same` lists sets of keys that are one
    story, `either` sets whose pairs are not counted either way."""
    label = {row: n for n, c in enumerate(clusters) for row in c.rows}

    def within(a, b, groups):
        return any(a in g and b in g for g in groups)

    tp = fp = fn = 0
    for i in range(len(keys)):
        for j in range(i + 1, len(keys)):
            if within(keys[i], keys[j], either):
                continue
            together, gold = label[i] == label[j], within(keys[i], keys[j], same)
            tp += together and gold
            fp += together and not gold
            fn += gold and not together
    return {"same-story pairs found": tp, "false pairs": fp, "missed": fn,
            "precision": tp / (tp + fp) if tp + fp else 1.0, "recall": tp / (tp + fn) if tp + fn else 1.0}
