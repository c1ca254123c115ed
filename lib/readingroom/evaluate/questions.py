"""Questions with known answers, and the one JSON Lines reader.

A questions file is JSON Lines, one question a line:

    {"q": "How did Bonaparte win over the peasants?", "gold": "an exact piece of the text"}

The gold names what answers the question in one of three ways:
- "gold": a substring of a document's text. Runs of whitespace match any
  whitespace, so a span copied from a hard-wrapped file still matches. Every
  passage that overlaps a place where it occurs answers the question, so a
  span that straddles two passages is found in either.
- "gold_doc": a document, by doc_id, key or exact title: any of its passages.
- "gold_section": a heading: any passage under it (at any depth).

`read_jsonl` reads every JSON Lines file of the project (questions here,
training examples in tune.dataset): each problem is reported as FILE:LINE
and what is wrong; nothing in a file is executed or unpickled.
"""
from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TypeVar

from readingroom.hashing import file_sha256
from readingroom.library.store import Library

GOLD_KEYS = ("gold", "gold_doc", "gold_section")

Record = TypeVar("Record")


class QuestionsError(ValueError):
    pass


def read_jsonl(path: str | Path, read_record: Callable[[object], Record], *, error: type[ValueError],
               file_kind: str, items: str, max_line_chars: int | None = None) -> list[Record]:
    """Each non-blank line of a JSON Lines file, decoded and passed through
    `read_record`. Any problem is raised as `error` with the file, and the
    line number where there is one: a missing file, text that is not UTF-8,
    a line longer than `max_line_chars`, a line that is not JSON, what
    `read_record` raises (an `error` saying what is wrong with the record),
    or a file with no records (`items` names them: "no questions in it")."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()
    except FileNotFoundError:
        raise error(f"{path}: no such {file_kind} file") from None
    except UnicodeDecodeError as e:
        raise error(f"{path}: not UTF-8 text ({e})") from None
    records = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        if max_line_chars is not None and len(line) > max_line_chars:
            raise error(f"{path}:{number}: line longer than {max_line_chars} characters")
        try:
            record = json.loads(line)
        except json.JSONDecodeError as e:
            raise error(f"{path}:{number}: not valid JSON ({e.msg})") from None
        try:
            records.append(read_record(record))
        except error as e:
            raise error(f"{path}:{number}: {e}") from None
    if not records:
        raise error(f"{path}: no {items} in it")
    return records


@dataclass
class Question:
    q: str
    gold: str | None = None
    gold_doc: str | None = None
    gold_section: str | None = None
    extra: dict = field(default_factory=dict)  # any other fields of the line (lang, file, why ...)


def question_from_record(record, require_gold: bool = True) -> Question:
    """A Question from one decoded line; a QuestionsError saying what is wrong."""
    if not isinstance(record, dict):
        raise QuestionsError("each line must be a JSON object")
    q = record.get("q")
    if not isinstance(q, str) or not q.strip():
        raise QuestionsError("'q' (the question) must be a non-empty string")
    golds = {k: record.get(k) for k in GOLD_KEYS if record.get(k) is not None}
    for key, value in golds.items():
        if not isinstance(value, str) or not value.strip():
            raise QuestionsError(f"{key!r} must be a non-empty string")
    if require_gold and not golds:
        raise QuestionsError(f"give one of {', '.join(GOLD_KEYS)} (what answers it)")
    extra = {k: v for k, v in record.items() if k != "q" and k not in GOLD_KEYS}
    return Question(q.strip(), **golds, extra=extra)


def load_questions(path: str | Path, require_gold: bool = True) -> list[Question]:
    """Read a questions file; a bad line is reported with the file, the line
    number and what is wrong with it."""
    return read_jsonl(path, lambda record: question_from_record(record, require_gold),
                      error=QuestionsError, file_kind="questions", items="questions")


def gold_pattern(gold: str) -> re.Pattern:
    """The gold text with each run of whitespace matching any run of it."""
    return re.compile(r"\s+".join(re.escape(word) for word in gold.split()))


class GoldFinder:
    """The passages that answer each question, found once per library."""

    def __init__(self, lib: Library):
        self.lib = lib
        self._texts = None

    def passages(self, question: Question) -> set[str]:
        found: set[str] = set()
        if question.gold:
            found |= self._spans(question.gold)
        if question.gold_doc:
            found |= {r[0] for r in self.lib.con.execute(
                "SELECT p.passage_id FROM passages p JOIN documents d USING (doc_id) "
                "WHERE d.doc_id = $g OR d.key = $g OR d.title = $g", {"g": question.gold_doc}).fetchall()}
        if question.gold_section:
            found |= {r[0] for r in self.lib.con.execute(
                "SELECT passage_id FROM passages WHERE list_contains(section, ?)",
                [question.gold_section]).fetchall()}
        return found

    def _spans(self, gold: str) -> set[str]:
        if self._texts is None:
            self._texts = self.lib.con.execute("SELECT doc_id, text FROM documents").fetchall()
        pattern = gold_pattern(gold)
        found = set()
        for doc_id, text in self._texts:
            for match in pattern.finditer(text):
                found |= {r[0] for r in self.lib.con.execute(
                    "SELECT passage_id FROM passages WHERE doc_id = ? AND char_start < ? AND char_end > ?",
                    [doc_id, match.end(), match.start()]).fetchall()}
        return found


def dataset_of(questions) -> tuple[list[Question], str, str]:
    """(questions, name, sha256) of a questions file or of a list of Questions."""
    if isinstance(questions, (str, Path)):
        return load_questions(questions), str(questions), file_sha256(Path(questions))
    questions = list(questions)
    digest = hashlib.sha256(json.dumps([asdict(q) for q in questions], sort_keys=True).encode()).hexdigest()
    return questions, f"{len(questions)} questions given inline", digest
