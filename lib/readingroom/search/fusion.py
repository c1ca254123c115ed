"""Fusing and choosing ranked rows: the top n of a score array, reciprocal
rank fusion of several rankings, and maximal marginal relevance.

Each retriever proposes its best `candidates` rows; the union is ranked by
reciprocal rank fusion, score = sum of weight / (rrf_k + rank), which needs
no calibration between BM25 scores and cosines. MMR then picks the final k
so that near-identical passages (the overlap between neighbours, the same
paragraph quoted twice) do not fill the list.
"""
from __future__ import annotations

import numpy as np


def top_rows(scores: np.ndarray, n: int, allowed: np.ndarray | None = None, floor: float = -np.inf) -> np.ndarray:
    """The rows of the n highest scores above `floor` (among the allowed
    ones), best first. argpartition first: O(N) instead of sorting N."""
    if allowed is not None:
        scores = np.where(allowed, scores, -np.inf)
    n = min(n, len(scores))
    if n <= 0:
        return np.zeros(0, dtype=np.int64)
    part = np.argpartition(-scores, n - 1)[:n]
    part = part[scores[part] > floor]
    return part[np.argsort(-scores[part], kind="stable")]


def rrf(rankings: dict[str, np.ndarray], weights: dict[str, float], k: int = 60) -> tuple[np.ndarray, np.ndarray, dict]:
    """Reciprocal rank fusion of several best-first lists of rows:
    (rows, fused scores) best first, and each row's 1-based rank per list."""
    fused: dict[int, float] = {}
    ranks: dict[int, dict[str, int]] = {}
    for name, rows in rankings.items():
        weight = weights.get(name, 1.0)
        for rank, row in enumerate(rows.tolist(), start=1):
            fused[row] = fused.get(row, 0.0) + weight / (k + rank)
            ranks.setdefault(row, {})[name] = rank
    order = sorted(fused, key=lambda r: (-fused[r], r))
    return np.array(order, dtype=np.int64), np.array([fused[r] for r in order]), ranks


def mmr(relevance: np.ndarray, vectors: np.ndarray | None, k: int, lambda_: float) -> list[int]:
    """Maximal marginal relevance: positions into `relevance` (best first),
    each chosen for relevance minus its highest cosine with those already
    chosen. relevance is scaled to [0, 1] first so lambda_ means the same
    whatever the scores are."""
    n = len(relevance)
    if vectors is None or lambda_ >= 1.0 or n <= 1:
        return list(range(min(k, n)))
    span = relevance.max() - relevance.min()
    rel = (relevance - relevance.min()) / span if span > 0 else np.ones(n)
    similarity = vectors @ vectors.T
    chosen = [int(np.argmax(rel))]
    closest = similarity[chosen[0]].copy()
    while len(chosen) < min(k, n):
        value = lambda_ * rel - (1 - lambda_) * closest
        value[chosen] = -np.inf
        best = int(np.argmax(value))
        chosen.append(best)
        closest = np.maximum(closest, similarity[best])
    return chosen
