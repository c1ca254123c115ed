"""The judge's calibration: the shipped file loads and its coefficients are
applied as stored; a judge model without one gets the raw probability; the
cross-validation of bench/judge.py never puts a passage on both sides."""
from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from readingroom.answer.entailment import (CALIBRATION_FILE, DEFAULT_THRESHOLD, FEATURES, Calibration,
                                           EntailmentJudge, claim_features, default_calibration,
                                           load_calibrations)
from readingroom.evaluate.claims import (group_kfold, load_claim_pairs, precision_recall_at,
                                         threshold_for_precision)

ROOT = Path(__file__).resolve().parents[1]
SHIPPED_JUDGE = "qwen2.5-coder-1.5b-instruct-q4_k_m"
TEST_GENERATOR = "smollm2-135m-instruct-q4_1"


def test_shipped_calibration_loads_and_is_complete():
    calibrations = load_calibrations()
    assert SHIPPED_JUDGE in calibrations, f"{CALIBRATION_FILE} has no calibration for {SHIPPED_JUDGE}"
    c = calibrations[SHIPPED_JUDGE]
    assert c.combined and set(c.features) <= set(FEATURES) and len(c.features) == len(c.coefficients)
    assert 0.0 < c.threshold < 1.0 and c.pairs >= 100 and c.fitted
    assert c.figures["grouped_by"] == "passage" and 0.5 < c.figures["oof_auc"] <= 1.0
    # data, not code: the file is plain JSON
    assert json.loads(CALIBRATION_FILE.read_text(encoding="utf-8"))["calibrations"]


def test_stored_coefficients_give_their_output():
    c = default_calibration(SHIPPED_JUDGE)
    features = {"judge": 0.9, "judge_log_odds": math.log(0.9 / 0.1), "lexical": 0.5, "cosine": 0.6,
                "claim_words": math.log(6)}
    z = c.intercept + sum(w * features[name] for name, w in zip(c.features, c.coefficients))
    assert c.score(features) == pytest.approx(1 / (1 + math.exp(-z)), abs=1e-12)
    # written by hand for one combination, so a change of formula shows
    hand = Calibration("m", 0.5, 1.0, 1.0, 10, features=("judge_log_odds", "lexical"),
                       coefficients=(2.0, -1.0), intercept=0.5)
    assert hand.score({"judge_log_odds": 1.0, "lexical": 0.5}) == pytest.approx(1 / (1 + math.exp(-2.0)))
    # a higher judge probability never lowers the calibrated one when its weight is positive
    assert hand.score({"judge_log_odds": 3.0, "lexical": 0.5}) > hand.score({"judge_log_odds": 1.0, "lexical": 0.5})


def test_threshold_only_calibration_keeps_the_raw_probability():
    c = Calibration(TEST_GENERATOR, 0.7, 1.0, 1.0, 0)  # the old form, as study/ builds it
    assert not c.combined and c.score({"judge": 0.42}) == 0.42


def test_features_of_a_pair():
    f = claim_features("The workers own the factories.", "Workers own factories.", 0.8)
    assert f["lexical"] == 1.0 and f["judge_log_odds"] == pytest.approx(math.log(4))
    assert "cosine" not in f  # no embedder, no cosine
    assert claim_features("Nothing alike here.", "Workers own factories.", 0.5)["lexical"] == 0.0


def test_model_without_calibration_has_none():
    assert default_calibration(TEST_GENERATOR) is None
    assert default_calibration("no-such-model") is None


def test_bad_calibration_file_names_the_file(tmp_path):
    bad = tmp_path / "judge_calibration.json"
    bad.write_text('{"calibrations": [{"model": "m", "threshold": 0.5}]}', encoding="utf-8")
    with pytest.raises(ValueError, match="judge_calibration.json"):
        load_calibrations(bad)
    bad.write_text('{"calibrations": [{"model": "m", "threshold": 0.5, "precision": 1, "recall": 1, "pairs": 1, '
                   '"features": ["shoe size"], "coefficients": [1.0]}]}', encoding="utf-8")
    with pytest.raises(ValueError, match="shoe size"):
        load_calibrations(bad)
    assert load_calibrations(tmp_path / "absent.json") == {}


@pytest.mark.slow
def test_judge_uses_raw_probability_without_calibration_and_stored_one_with():
    from readingroom.models.generate import load_generator

    generator = load_generator(TEST_GENERATOR)
    source = "The bourgeoisie has stripped of its halo every occupation hitherto honoured."
    claim = "The bourgeoisie took the halo from honoured occupations."
    raw_judge = EntailmentJudge(generator)
    assert raw_judge.calibration is None and raw_judge.threshold == DEFAULT_THRESHOLD
    raw = raw_judge.raw_probability(source, claim)
    assert raw_judge.probability(source, claim) == pytest.approx(raw, abs=1e-6)

    calibration = Calibration(TEST_GENERATOR, 0.6, 1.0, 1.0, 10, features=("judge_log_odds", "lexical"),
                              coefficients=(1.5, 2.0), intercept=-1.0)
    judge = EntailmentJudge(generator, calibration)
    lexical = claim_features(source, claim, raw)["lexical"]
    p = min(max(raw, 1e-6), 1 - 1e-6)
    z = -1.0 + 1.5 * math.log(p / (1 - p)) + 2.0 * lexical
    assert judge.probability(source, claim) == pytest.approx(1 / (1 + math.exp(-z)), abs=1e-4)
    assert judge.supports(source, claim)[0] == (judge.probability(source, claim) >= 0.6)


@pytest.mark.parametrize("folds", [2, 5])
def test_group_kfold_never_splits_a_group(folds):
    groups = [f"passage {i % 13}" for i in range(100)] + ["big"] * 20
    splits = group_kfold(groups, folds)
    assert len(splits) == folds
    seen_in_test = []
    for train, test in splits:
        train_groups, test_groups = {groups[i] for i in train}, {groups[i] for i in test}
        assert not train_groups & test_groups
        assert sorted(list(train) + list(test)) == list(range(len(groups)))
        seen_in_test += sorted(test_groups)
    assert sorted(seen_in_test) == sorted(set(groups))  # each group tested exactly once
    assert [list(t) for _, t in group_kfold(groups, folds)] == [list(t) for _, t in splits]  # same every run


def test_group_kfold_on_the_labelled_pairs():
    pairs = load_claim_pairs(ROOT / "data" / "benchmarks" / "claims.jsonl")
    groups = [p.passage for p in pairs]
    sizes = []
    for train, test in group_kfold(groups, 5):
        assert not {groups[i] for i in train} & {groups[i] for i in test}
        sizes.append(len(test))
    assert max(sizes) - min(sizes) <= 15  # balanced folds
    with pytest.raises(ValueError, match="folds"):
        group_kfold(groups, len(set(groups)) + 1)


def test_precision_recall_and_threshold_for_precision():
    scores = [0.9, 0.8, 0.7, 0.6, 0.4, 0.2]
    labels = [True, True, False, True, False, False]
    assert precision_recall_at(scores, labels, 0.65) == (pytest.approx(2 / 3), pytest.approx(2 / 3), 3)
    assert threshold_for_precision(scores, labels, 0.95) == (0.8, 1.0, pytest.approx(2 / 3))
    assert threshold_for_precision([0.5, 0.4], [False, True], 0.95) is None
