"""The claim check calibrated: the generator as judge, today's lexical+cosine
score, and a logistic combination of the two, on the hand-labelled pairs of
data/benchmarks/claims.jsonl, cross-validated by passage.

    python bench/judge.py [--models qwen2.5-coder-1.5b-instruct-q4_k_m,qwen2.5-coder-0.5b-instruct-q4_k_m]
                          [--folds 5] [--cache bench/results/judge-claims.json]
                          [--write-calibration] [--score-only]

Each pair's judge probability is cached in --cache (keyed by model, source
and claim), so a second run computes nothing the first did and the figures
come back in seconds; a model absent from the machine is skipped with a
message when the cache holds nothing for it. The pairs carry their passages
(exact excerpts), so no corpus is needed; a pair whose passage is missing is
skipped with a message.

Reported, for each scorer, on out-of-fold scores (GroupKFold by passage: no
passage, and so no claim about it, is on both sides of a fold):
- AUC; precision and recall at fixed thresholds of the scorer's own scale;
- the lowest threshold reaching precision >= 0.95 on the pooled out-of-fold
  scores and the recall there, and whether the issue's target (precision
  >= 0.95 at recall >= 0.85) is met;
- the ratio of each scorer's AUC to the baseline's: today's checker
  (SupportChecker, 0.5 lexical overlap + 0.5 MiniLM cosine of claim and
  passage).
--write-calibration stores the combination fitted on all pairs as
lib/readingroom/answer/judge_calibration.json (one entry per judge model).
"""
from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import math
import random
import sys
import time
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from readingroom.answer.entailment import (CALIBRATION_FILE, FEATURES, Calibration, EntailmentJudge,
                                           claim_features, load_calibrations, log_odds, quote_context,
                                           save_calibrations)
from readingroom.answer.quotes import locate_quote
from readingroom.evaluate.claims import (ClaimPair, auc, group_kfold, load_claim_pairs,
                                         precision_recall_at, threshold_for_precision)

ROOT = Path(__file__).resolve().parents[1]
PAIRS = ROOT / "data" / "benchmarks" / "claims.jsonl"
DEFAULT_MODELS = "qwen2.5-coder-1.5b-instruct-q4_k_m,qwen2.5-coder-0.5b-instruct-q4_k_m"
THRESHOLDS = (0.3, 0.5, 0.7, 0.8, 0.9)
TARGET_PRECISION, TARGET_RECALL = 0.95, 0.85
DEFAULT_FALLBACK_THRESHOLD = 0.9  # when no threshold reaches the precision


def source_of(pair: ClaimPair) -> str:
    """What the judge reads, exactly as answer/anchored.py gives it: the
    quote with its passage around it."""
    span = locate_quote(pair.quote, pair.passage)
    return quote_context(pair.passage, span.start, span.end) if span else " ".join(pair.passage.split())


def cache_key(source: str, claim: str) -> str:
    return hashlib.sha256(f"{source}\0{claim}".encode("utf-8")).hexdigest()[:20]


def load_cache(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}


def save_cache(path: Path, cache: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(cache, indent=0, sort_keys=True) + "\n", encoding="utf-8")
    tmp.replace(path)


def judge_probabilities(model: str, pairs, sources, cache: dict, cache_path: Path) -> list[float] | None:
    """The judge's raw P(yes) for each pair, from the cache where it is
    there, computed (and cached every few pairs) where not."""
    have = cache.setdefault(model, {})
    keys = [cache_key(s, p.claim) for s, p in zip(sources, pairs)]
    missing = [i for i, k in enumerate(keys) if k not in have]
    # In a fixed random order, so that a run cut short leaves a sample of
    # all passages and kinds rather than the first passages of the file.
    random.Random(0).shuffle(missing)
    if missing:
        from readingroom.models.generate import load_generator
        try:
            generator = load_generator(model)
        except Exception as e:  # a model not fetched here: skip it, say why
            print(f"skipped judge {model}: cannot load it ({e})", file=sys.stderr)
            return None
        judge = EntailmentJudge(generator)  # no calibration: the raw probability
        start = time.perf_counter()
        for n, i in enumerate(tqdm(missing, desc=f"judge {model}"), start=1):
            have[keys[i]] = judge.raw_probability(sources[i], pairs[i].claim)
            if n % 10 == 0:
                save_cache(cache_path, cache)
        save_cache(cache_path, cache)
        print(f"judge {model}: {len(missing)} pairs scored, "
              f"{(time.perf_counter() - start) / len(missing):.2f} s/pair", file=sys.stderr)
    return [have[k] for k in keys]


BASELINE = "today's checker (0.5 lexical + 0.5 cosine)"


def fit_logistic(X: np.ndarray, y: np.ndarray):
    """A plain L2-regularised logistic regression on the raw features (so
    the stored coefficients apply to them as they are)."""
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(C=1.0, max_iter=1000)
    model.fit(X, y)
    return model


def out_of_fold(X: np.ndarray, y: np.ndarray, folds) -> tuple[np.ndarray, np.ndarray]:
    """(out-of-fold scores, for each pair the threshold reaching precision
    0.95 chosen on its fold's training pairs alone): nothing about a test
    pair's passage is seen when its score or its threshold is set."""
    scores, thresholds = np.zeros(len(y)), np.zeros(len(y))
    for train, test in folds:
        model = fit_logistic(X[train], y[train])
        scores[test] = model.predict_proba(X[test])[:, 1]
        fold = threshold_for_precision(model.predict_proba(X[train])[:, 1], y[train], TARGET_PRECISION)
        thresholds[test] = fold[0] if fold else 1.0
    return scores, thresholds


def describe(name: str, scores, labels, nested_thresholds=None, baseline_auc=None) -> dict:
    scores, labels = np.asarray(scores, dtype=float), np.asarray(labels, dtype=bool)
    row = {"scorer": name, "auc": auc(scores, labels)}
    for t in THRESHOLDS:
        precision, recall, _ = precision_recall_at(scores, labels, t)
        row[f"P@{t}"], row[f"R@{t}"] = precision, recall
    at = threshold_for_precision(scores, labels, TARGET_PRECISION)
    row["t(P>=.95)"], row["R(P>=.95)"] = (at[0], at[2]) if at else (float("nan"), 0.0)
    if nested_thresholds is not None:
        # the threshold chosen inside each fold, applied to its test pairs
        kept = scores >= nested_thresholds
        row["nested P"] = float(labels[kept].mean()) if kept.any() else float("nan")
        row["nested R"] = float(kept[labels].mean())
    row["target met"] = bool(at and at[2] >= TARGET_RECALL)
    if baseline_auc:
        row["AUC / baseline"] = row["auc"] / baseline_auc
    return row


def print_table(rows: list[dict]) -> None:
    keys = list(rows[0])
    for row in rows:
        keys += [k for k in row if k not in keys]
    print("\t".join(keys))
    for row in rows:
        print("\t".join(f"{row[k]:.3f}" if isinstance(row.get(k), float) else str(row.get(k, "")) for k in keys))


def pair_features(pairs, sources, path: Path) -> list[dict]:
    """Each pair's judge-free features and today's checker's score
    ("baseline": SupportChecker on the claim and the whole passage, MiniLM
    vectors), cached in `path` so that a rerun needs no embedder."""
    cache = load_cache(path)
    keys = [cache_key(s, p.claim) for s, p in zip(sources, pairs)]
    if any(k not in cache for k in keys):
        from readingroom.answer.check import SupportChecker
        from readingroom.models.embed import load_embedder

        embedder = load_embedder()
        todo = [i for i, k in enumerate(keys) if k not in cache]
        # Batched (one encode per text, not per pair); the same figures as
        # claim_features and SupportChecker.score compute one pair at a time.
        claims = embedder.encode_documents([pairs[i].claim for i in todo])
        judged_sources = embedder.encode_documents([sources[i] for i in todo])
        passages = embedder.encode_documents([pairs[i].passage for i in todo])
        lexical, _, baseline = SupportChecker(embedder).scores([pairs[i].claim for i in todo],
                                                               [pairs[i].passage for i in todo], passages)
        for row, i in enumerate(todo):
            features = claim_features(sources[i], pairs[i].claim, 0.5)
            cache[keys[i]] = {"lexical": features["lexical"], "claim_words": features["claim_words"],
                              "cosine": float(np.clip(claims[row] @ judged_sources[row], 0.0, 1.0)),
                              "baseline": float(baseline[row, row])}
        save_cache(path, cache)
    return [cache[k] for k in keys]


def report(pairs, sources, judged, args) -> int:
    labels = np.array([p.supported for p in pairs])
    groups = [p.passage for p in pairs]
    folds = group_kfold(groups, args.folds)
    plain = pair_features(pairs, sources, args.features_cache)
    base = describe(BASELINE, [f["baseline"] for f in plain], labels)
    rows, fitted = [base], {}

    def candidate(name, features, model=None):
        feats = [dict(f, judge=j, judge_log_odds=log_odds(j)) for f, j in zip(plain, judged[model])] if model else plain
        X = np.array([[f[n] for n in features] for f in feats])
        scores, nested = out_of_fold(X, labels, folds)
        row = describe(name, scores, labels, nested, base["auc"])
        rows.append(row)
        return X, scores, row

    candidate("lexical+cosine (logistic)", ("lexical", "cosine"))
    for model, probabilities in judged.items():
        raw = np.asarray(probabilities)
        nested = np.ones(len(raw))
        for train, test in folds:  # the raw probability's threshold, too, chosen inside each fold
            fold = threshold_for_precision(raw[train], labels[train], TARGET_PRECISION)
            nested[test] = fold[0] if fold else 1.0
        rows.append(describe(f"judge {model} (raw P(yes))", raw, labels, nested, base["auc"]))
        for features in (("judge_log_odds",), ("judge_log_odds", "lexical"),
                         ("judge_log_odds", "lexical", "claim_words"),
                         ("judge_log_odds", "lexical", "cosine"),
                         ("judge_log_odds", "lexical", "cosine", "claim_words")):
            X, scores, row = candidate(f"{model} [{'+'.join(features)}]", features, model)
            fitted[(model, features)] = (X, scores, row)
    print(f"{len(pairs)} pairs ({int(labels.sum())} supported), {len(set(groups))} passages, "
          f"{args.folds} folds grouped by passage; out-of-fold figures")
    print_table(rows)

    ship = tuple(args.ship_features.split(","))
    calibrations = []
    for model in judged:
        if (model, ship) not in fitted:
            continue
        X, scores, row = fitted[(model, ship)]
        final = fit_logistic(X, labels)
        # The threshold is set on the final fit's scores of all pairs (for
        # one feature the same order as the raw probability); what it is
        # worth on unseen passages is the nested figure (threshold chosen
        # inside each fold), reported beside it.
        fitted_scores = final.predict_proba(X)[:, 1]
        at = threshold_for_precision(fitted_scores, labels, TARGET_PRECISION)
        threshold = at[0] if at else DEFAULT_FALLBACK_THRESHOLD
        precision, recall, _ = precision_recall_at(fitted_scores, labels, threshold)
        kinds = sorted({p.kind for p in pairs})
        kept = fitted_scores >= threshold
        by_kind = {k: round(float(np.mean([kk for kk, p in zip(kept, pairs) if p.kind == k])), 3) for k in kinds}
        print(f"\n{model} [{'+'.join(ship)}] at {threshold:.3f}: share judged supported by kind {by_kind}")
        calibrations.append(Calibration(
            model, round(float(threshold), 6), round(precision, 4), round(recall, 4), len(pairs),
            features=ship, coefficients=tuple(round(float(c), 6) for c in final.coef_[0]),
            intercept=round(float(final.intercept_[0]), 6), fitted=datetime.date.today().isoformat(),
            figures={"source": "data/benchmarks/claims.jsonl", "folds": args.folds, "grouped_by": "passage",
                     "oof_auc": round(row["auc"], 4), "nested_precision": round(row["nested P"], 4),
                     "nested_recall": round(row["nested R"], 4), "baseline_auc": round(base["auc"], 4),
                     "target_met": row["target met"], "share_supported_by_kind": by_kind}))
    if args.write_calibration and calibrations:
        # other models' calibrations in the file are kept
        kept = {c.model: c for c in load_calibrations(args.calibration_file).values()}
        kept.update({c.model: c for c in calibrations})
        save_calibrations(list(kept.values()), args.calibration_file)
        print(f"wrote {args.calibration_file} ({', '.join(c.model for c in calibrations)})")
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default=DEFAULT_MODELS)
    parser.add_argument("--pairs", type=Path, default=PAIRS)
    parser.add_argument("--cache", type=Path, default=ROOT / "bench" / "results" / "judge-claims.json")
    parser.add_argument("--extra-cache", type=Path, action="append", default=[])
    parser.add_argument("--features-cache", type=Path, default=ROOT / "bench" / "results" / "claim-features.json")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--cached-only", action="store_true",
                        help="compute nothing: report on the pairs the cache holds for every model")
    parser.add_argument("--score-only", action="store_true", help="fill the cache, report nothing")
    parser.add_argument("--write-calibration", action="store_true")
    parser.add_argument("--calibration-file", type=Path, default=CALIBRATION_FILE)
    parser.add_argument("--ship-features", default="judge_log_odds",
                        help="the features of the calibration written (measured: lexical, cosine and "
                             "claim length add nothing to the 1.5B judge's AUC)")
    args = parser.parse_args(argv)

    pairs = [p for p in load_claim_pairs(args.pairs) if p.passage.strip()]
    if not pairs:
        print(f"skipped: no pairs with their passage text in {args.pairs}")
        return 0
    sources = [source_of(p) for p in pairs]
    cache = load_cache(args.cache)
    for extra in args.extra_cache:  # caches filled by other runs (e.g. one model per process)
        for model, rows in load_cache(extra).items():
            cache.setdefault(model, {}).update(rows)
    models = [m for m in args.models.split(",") if m]
    if args.cached_only:
        held = [i for i, (s, p) in enumerate(zip(sources, pairs))
                if all(cache_key(s, p.claim) in cache.get(m, {}) for m in models)]
        print(f"--cached-only: {len(held)} of {len(pairs)} pairs have every judge's probability cached")
        pairs, sources = [pairs[i] for i in held], [sources[i] for i in held]
    judged = {}
    for model in models:
        probabilities = judge_probabilities(model, pairs, sources, cache, args.cache)
        if probabilities is not None:
            judged[model] = probabilities
    if args.score_only:
        pair_features(pairs, sources, args.features_cache)
        return 0
    return report(pairs, sources, judged, args)


if __name__ == "__main__":
    sys.exit(main())
