"""How well a checker tells supported claims from unsupported ones, on
labelled (claim, passage) pairs (data/benchmarks/claims.jsonl): the
precision and recall at a threshold, and the AUC over all thresholds.

A checker is any function from a pair to a score (higher: more likely
supported). The threshold is chosen on one part of the pairs (`calibrate`)
and the figures are reported on the other, so they say how the checker does
on claims it was not tuned on; the split keeps each passage on one side.
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from readingroom.answer.entailment import Calibration, calibrate


@dataclass(frozen=True)
class ClaimPair:
    claim: str
    passage: str
    quote: str
    supported: bool
    kind: str       # verbatim, paraphrase, negation, swapped-roles, ...
    corpus: str = ""
    file: str = ""


def load_claim_pairs(path: Path) -> list[ClaimPair]:
    pairs = []
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                pairs.append(ClaimPair(row["claim"], row["passage"], row["quote"], row["label"] == "supported",
                                       row["kind"], row.get("corpus", ""), row.get("file", "")))
            except (json.JSONDecodeError, KeyError, TypeError) as e:
                raise ValueError(f"{path}:{number}: not a labelled claim pair ({e})") from None
    return pairs


def split_pairs(pairs: Sequence[ClaimPair], share: float = 0.5) -> tuple[list[ClaimPair], list[ClaimPair]]:
    """(calibration, test): a fixed split by passage, so that no passage
    is on both sides."""
    def side(pair: ClaimPair) -> float:
        digest = hashlib.sha256(pair.passage.encode("utf-8")).digest()
        return int.from_bytes(digest[:4], "big") / 2 ** 32
    return [p for p in pairs if side(p) < share], [p for p in pairs if side(p) >= share]


def auc(scores: Sequence[float], labels: Sequence[bool]) -> float:
    """The probability that a supported pair scores above an unsupported
    one (ties count half): the area under the ROC curve."""
    scores, labels = np.asarray(scores, dtype=float), np.asarray(labels, dtype=bool)
    positive, negative = scores[labels], scores[~labels]
    if not len(positive) or not len(negative):
        return float("nan")
    above = (positive[:, None] > negative[None, :]).sum() + 0.5 * (positive[:, None] == negative[None, :]).sum()
    return float(above / (len(positive) * len(negative)))


def group_kfold(groups: Sequence[str], folds: int = 5) -> list[tuple[np.ndarray, np.ndarray]]:
    """(train indices, test indices) for each of `folds` folds, whole
    groups at a time: every group is in the test side of exactly one fold
    and never on both sides of any. Groups are dealt largest first to the
    fold with fewest items (balanced folds), ties broken by a hash of the
    group's name, so the split is the same on every run and machine."""
    names = sorted(set(groups), key=lambda g: hashlib.sha256(str(g).encode("utf-8")).hexdigest())
    if folds < 2 or folds > len(names):
        raise ValueError(f"cannot make {folds} folds of {len(names)} groups")
    size = {g: 0 for g in names}
    for g in groups:
        size[g] += 1
    fold_of, load = {}, [0] * folds
    for g in sorted(names, key=lambda g: -size[g]):  # stable: hash order within a size
        k = min(range(folds), key=lambda i: load[i])
        fold_of[g] = k
        load[k] += size[g]
    fold = np.array([fold_of[g] for g in groups])
    return [(np.flatnonzero(fold != k), np.flatnonzero(fold == k)) for k in range(folds)]


def precision_recall_at(scores: Sequence[float], labels: Sequence[bool], threshold: float) -> tuple[float, float, int]:
    """(precision, recall, pairs kept) when pairs scoring >= threshold count
    as supported; precision is nan when none is kept."""
    scores, labels = np.asarray(scores, dtype=float), np.asarray(labels, dtype=bool)
    kept = scores >= threshold
    precision = float(labels[kept].mean()) if kept.any() else float("nan")
    recall = float(kept[labels].mean()) if labels.any() else float("nan")
    return precision, recall, int(kept.sum())


def threshold_for_precision(scores: Sequence[float], labels: Sequence[bool],
                            min_precision: float = 0.95) -> tuple[float, float, float] | None:
    """(threshold, precision, recall) at the lowest threshold whose
    precision reaches `min_precision`, or None when none does."""
    best = calibrate("", scores, labels, min_precision)
    if best.precision < min_precision:
        return None
    return best.threshold, best.precision, best.recall


@dataclass(frozen=True)
class CheckerResult:
    name: str
    calibration: Calibration
    precision: float  # on the test pairs, at the calibrated threshold
    recall: float
    auc: float
    test_pairs: int
    seconds_per_pair: float
    by_kind: dict     # kind -> share judged supported on the test pairs

    def row(self) -> dict:
        return {"checker": self.name, "threshold": round(self.calibration.threshold, 4),
                "precision": round(self.precision, 3), "recall": round(self.recall, 3), "auc": round(self.auc, 3),
                "test pairs": self.test_pairs, "s/pair": round(self.seconds_per_pair, 3)}


def evaluate_checker(name: str, score: Callable[[ClaimPair], float], pairs: Sequence[ClaimPair],
                     min_precision: float = 0.95, progress: bool = True) -> CheckerResult:
    import time

    start = time.perf_counter()
    scores = [score(pair) for pair in tqdm(pairs, desc=name, disable=not progress, leave=False)]
    seconds = (time.perf_counter() - start) / max(len(pairs), 1)
    by_pair = dict(zip((id(p) for p in pairs), scores))
    calibration_pairs, test_pairs = split_pairs(pairs)
    calibration = calibrate(name, [by_pair[id(p)] for p in calibration_pairs],
                            [p.supported for p in calibration_pairs], min_precision)
    test_scores = np.array([by_pair[id(p)] for p in test_pairs])
    test_labels = np.array([p.supported for p in test_pairs])
    kept = test_scores >= calibration.threshold
    precision = float(test_labels[kept].mean()) if kept.any() else float("nan")
    recall = float(kept[test_labels].mean()) if test_labels.any() else float("nan")
    kinds = sorted({p.kind for p in test_pairs})
    by_kind = {kind: float(np.mean([k for k, p in zip(kept, test_pairs) if p.kind == kind])) for kind in kinds}
    return CheckerResult(name, calibration, precision, recall, auc(test_scores, test_labels),
                         len(test_pairs), seconds, by_kind)
