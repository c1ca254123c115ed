"""The hand-labelled sample of study-aid items and the precision report
read from it (no model: the labels are a person's, the report is counting)."""
import json
import math
from pathlib import Path

import pytest

from readingroom.evaluate.study_labels import (
    REQUIRED, StudyLabelsError, format_report, label_report, load_study_labels, wilson_interval)

LABELS = Path(__file__).resolve().parents[1] / "data" / "benchmarks" / "study-labels.jsonl"


def raw_lines():
    return [json.loads(line) for line in LABELS.read_text(encoding="utf-8").splitlines() if line.strip()]


def test_every_labelled_item_has_its_fields_and_a_note():
    lines = raw_lines()
    assert load_study_labels(LABELS)  # parses with the one reader
    for number, line in enumerate(lines, start=1):
        for name in REQUIRED:
            assert name in line, f"line {number} lacks {name}"
        assert isinstance(line["label"], bool), f"line {number}: label not true/false"
        assert line["note"].strip(), f"line {number}: empty note"
        assert line["quote"].strip() and line["statement"].strip()


def test_the_sample_spans_sections_and_shows_what_the_checker_left_out():
    labels = load_study_labels(LABELS)
    kept = [x for x in labels if x.kept]
    assert len({x.section for x in kept}) >= 2
    assert any(not x.kept for x in labels)
    assert all(x.section for x in labels)
    # Every kept item had its quote found in its passage: the checker keeps no other.
    assert all(x.located for x in kept)


def test_the_report_counts_what_the_file_says():
    lines = raw_lines()
    rows = {row.kind: row for row in label_report(load_study_labels(LABELS))}
    kinds = {line["kind"] for line in lines}
    assert set(rows) == kinds | {"all"}
    for kind in kinds:
        kept = [x for x in lines if x["kind"] == kind and x.get("kept", True)]
        left = [x for x in lines if x["kind"] == kind and not x.get("kept", True)]
        row = rows[kind]
        assert (row.n, row.supported) == (len(kept), sum(x["label"] for x in kept))
        assert (row.left_out, row.left_out_supported) == (len(left), sum(x["label"] for x in left))
        if kept:
            assert row.low <= row.precision <= row.high
    everything = rows["all"]
    assert everything.n == sum(rows[k].n for k in kinds)
    assert everything.supported == sum(rows[k].supported for k in kinds)
    table = format_report(list(rows.values()))
    assert f"| all | {everything.n} | {everything.supported} |" in table


def test_wilson_interval_against_known_values():
    # 4 of 5: 0.376-0.964; 0 of 10: 0-0.278; 10 of 10: 0.722-1 (the textbook values).
    low, high = wilson_interval(4, 5)
    assert math.isclose(low, 0.3755, abs_tol=1e-3) and math.isclose(high, 0.9638, abs_tol=1e-3)
    assert wilson_interval(0, 10)[0] == 0 and math.isclose(wilson_interval(0, 10)[1], 0.2775, abs_tol=1e-3)
    assert math.isclose(wilson_interval(10, 10)[0], 0.7225, abs_tol=1e-3)
    assert wilson_interval(0, 0) == (0.0, 1.0)


@pytest.mark.parametrize("line, problem", [
    ('{"kind": "guide", "statement": "s", "quote": "q", "passage": "p", "label": true}', "missing 'note'"),
    ('{"kind": "guide", "statement": "s", "quote": "q", "passage": "p", "label": "yes", "note": "n"}',
     "'label' must be true or false"),
    ('{"kind": "guide", "statement": "s", "quote": "q", "passage": "p", "label": true, "note": " "}',
     "'note' must be a non-empty string"),
    ('{"kind": "guide", "statement": "s", "quote": "q", "passage": "p", "label": true, "note": "n", '
     '"judge_p": 2}', "'judge_p' must be a probability"),
    ('{"kind": "marx-engels", "statement": "s", "quote": "q", "passage": "p", "label": true, "note": "n", '
     '"answers_question": "partly"}', "'answers_question' must be true, false or absent"),
    ("not json", "not valid JSON"),
])
def test_a_bad_line_is_named_with_its_file_and_line(tmp_path, line, problem):
    good = '{"kind": "quiz", "statement": "s", "quote": "q", "passage": "p", "label": false, "note": "n"}'
    path = tmp_path / "labels.jsonl"
    path.write_text(good + "\n" + line + "\n")
    with pytest.raises(StudyLabelsError, match=f"labels.jsonl:2: .*{problem}"):
        load_study_labels(path)
