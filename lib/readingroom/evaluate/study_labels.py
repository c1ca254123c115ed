"""Claim precision from hand-labelled items: the study aids' items
(data/benchmarks/study-labels.jsonl) and the kept sentences of checked
answers (data/benchmarks/answer-claim-labels.jsonl).

A labels file is JSON Lines, one item a line, as a bench script wrote it
(`bench/study.py`, `bench/answer_rates.py`) and a person then judged it:

    {"kind": "guide", "statement": "...", "quote": "...", "passage": "the citation",
     "judge_p": 0.84, "label": true, "note": "why", "kept": true, "located": true,
     "section": "secJ2 J.2.1"}

- `statement`: what the item says about the text (as the judge read it);
- `label`: the person's verdict, whether the quote read in its passage
  supports the statement; `note`: one line saying why;
- `kept`: whether the checker kept the item (absent: true). Precision is
  counted over kept items only, since that is what a facilitator sees; the
  left-out ones show what the checker throws away;
- `located`: whether the quote was found in the passage it cites (absent:
  true, which every kept item is by construction).
- `question` and `answers_question` (optional, for answers): the question
  asked and the person's verdict whether the statement answers it. A
  statement can be supported and still not answer the question; precision
  counts support only, `answers_question` is reported beside it.

`label_report` counts, per kind, the kept items and how many of them are
supported, with a Wilson 95% interval, since the samples are small.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from readingroom.evaluate.metrics import wilson_interval
from readingroom.evaluate.questions import read_jsonl

REQUIRED = ("kind", "statement", "quote", "passage", "label", "note")


class StudyLabelsError(ValueError):
    pass


@dataclass(frozen=True)
class StudyLabel:
    kind: str
    statement: str
    quote: str
    passage: str
    label: bool  # a person's verdict: the quote in its passage supports the statement
    note: str
    judge_p: float | None = None
    kept: bool = True  # the checker kept it
    located: bool = True  # its quote was found in its passage
    section: str = ""
    question: str = ""
    answers_question: bool | None = None  # a person's verdict; None: not judged


def label_from_record(record) -> StudyLabel:
    if not isinstance(record, dict):
        raise StudyLabelsError("each line must be a JSON object")
    for name in REQUIRED:
        if name not in record:
            raise StudyLabelsError(f"missing {name!r}")
    for name in ("kind", "statement", "quote", "passage", "note"):
        if not isinstance(record[name], str) or not record[name].strip():
            raise StudyLabelsError(f"{name!r} must be a non-empty string")
    for name in ("label", "kept", "located"):
        if not isinstance(record.get(name, True), bool):
            raise StudyLabelsError(f"{name!r} must be true or false")
    if record.get("answers_question") is not None and not isinstance(record["answers_question"], bool):
        raise StudyLabelsError("'answers_question' must be true, false or absent")
    judge_p = record.get("judge_p")
    if judge_p is not None and (isinstance(judge_p, bool) or not isinstance(judge_p, (int, float))
                                or not 0 <= judge_p <= 1):
        raise StudyLabelsError("'judge_p' must be a probability between 0 and 1")
    return StudyLabel(record["kind"], record["statement"], record["quote"], record["passage"], record["label"],
                      record["note"], judge_p, record.get("kept", True), record.get("located", True),
                      str(record.get("section", "")), str(record.get("question", "")),
                      record.get("answers_question"))


def load_study_labels(path: str | Path) -> list[StudyLabel]:
    """Read a labels file; a bad line is reported as FILE:LINE and what is wrong."""
    return read_jsonl(path, label_from_record, error=StudyLabelsError, file_kind="claim labels",
                      items="labelled items")


@dataclass(frozen=True)
class PrecisionRow:
    kind: str  # or "all"
    n: int  # kept items labelled
    supported: int  # of those, labelled true
    located: int  # of those, whose quote was found in its passage
    low: float
    high: float
    left_out: int = 0  # items the checker dropped that were labelled too
    left_out_supported: int = 0  # of those, labelled true (what the checker threw away wrongly)
    judged_answering: int = 0  # kept items whose answers_question was judged
    answering: int = 0  # of those, judged to answer the question

    @property
    def precision(self) -> float | None:
        return self.supported / self.n if self.n else None

    @property
    def located_share(self) -> float | None:
        return self.located / self.n if self.n else None


def label_report(labels: list[StudyLabel]) -> list[PrecisionRow]:
    """One row per kind (in the order kinds first appear), then "all"."""
    groups: dict[str, list[StudyLabel]] = defaultdict(list)
    for label in labels:
        groups[label.kind].append(label)
    groups["all"] = list(labels)

    def row(kind, items):
        kept = [x for x in items if x.kept]
        left = [x for x in items if not x.kept]
        supported = sum(x.label for x in kept)
        judged = [x for x in kept if x.answers_question is not None]
        return PrecisionRow(kind, len(kept), supported, sum(x.located for x in kept),
                            *wilson_interval(supported, len(kept)), len(left), sum(x.label for x in left),
                            len(judged), sum(x.answers_question for x in judged))

    return [row(kind, items) for kind, items in groups.items()]


def format_report(rows: list[PrecisionRow]) -> str:
    """The report as a Markdown table (with a column for answering the
    question when any item was judged for it)."""
    answering = any(r.judged_answering for r in rows)
    lines = ["| kind | kept, labelled | supported | claim precision | Wilson 95% | quote located "
             "| left out, labelled | of those supported |" + (" answers the question |" if answering else ""),
             "|---|---|---|---|---|---|---|---|" + ("---|" if answering else "")]
    for r in rows:
        precision = "–" if r.precision is None else f"{r.precision:.2f}"
        located = "–" if r.located_share is None else f"{r.located} ({r.located_share:.0%})"
        interval = "–" if not r.n else f"{r.low:.2f}–{r.high:.2f}"
        line = (f"| {r.kind} | {r.n} | {r.supported} | {precision} | {interval} | {located} "
                f"| {r.left_out} | {r.left_out_supported} |")
        if answering:
            line += f" {r.answering}/{r.judged_answering} |" if r.judged_answering else " – |"
        lines.append(line)
    return "\n".join(lines)
