"""The hand-labelled kept sentences of checked answers
(data/benchmarks/answer-claim-labels.jsonl), read by the claim-labels reader
the study aids use; no model: the labels are a person's, the report counts."""
import json
from pathlib import Path

from readingroom.evaluate.study_labels import format_report, label_report, load_study_labels

LABELS = Path(__file__).resolve().parents[1] / "data" / "benchmarks" / "answer-claim-labels.jsonl"


def test_the_file_reads_and_every_sentence_says_whether_it_answers_its_question():
    lines = [json.loads(line) for line in LABELS.read_text(encoding="utf-8").splitlines() if line.strip()]
    labels = load_study_labels(LABELS)
    assert len(labels) == len(lines) >= 50  # issue 15 asks for at least 50
    assert {x.kind for x in labels} <= {"anarchist-faq", "marx-engels"}
    for label, line in zip(labels, lines):
        assert label.question and isinstance(label.answers_question, bool)
        assert line["passage_id"] and line["writer"] and line["check"] in ("default", "anchored")
        assert label.kept and label.note.strip()


def test_precision_and_answering_are_counted_from_the_labels():
    labels = load_study_labels(LABELS)
    rows = {row.kind: row for row in label_report(labels)}
    everything = rows["all"]
    assert (everything.n, everything.supported) == (len(labels), sum(x.label for x in labels))
    assert everything.judged_answering == len(labels)
    assert everything.answering == sum(x.answers_question for x in labels)
    assert everything.low <= everything.precision <= everything.high
    table = format_report(list(rows.values()))
    assert "answers the question" in table.splitlines()[0]
    assert f"| all | {everything.n} | {everything.supported} |" in table
