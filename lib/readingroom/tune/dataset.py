"""Training examples in one JSONL schema, so that groups can share them.

One example a line, a JSON object with exactly these fields:

    {"instruction": "Why do anarchists oppose the state?",
     "response": "The FAQ argues that the state ... [1]",
     "sources": [{"passage_id": "...", "citation": "An Anarchist FAQ, B.2", "text": "..."}],
     "provenance": {"kind": "question", "passage_id": "...", "generator": "smollm2-...", ...}}

- instruction: what the model is asked (a question; for a continuation, the
  start of a passage);
- response: what it should answer (with [n] citations of `sources`, numbered
  from 1; for a continuation, the rest of the passage);
- sources: the passages the instruction comes with, their text included, so
  a dataset is usable by a group whose library does not hold them;
- provenance: where the example came from; "kind" is "question",
  "continuation" or "manual", the rest is free.

`read_examples` reports every problem with the file name, the line number
and what is wrong; nothing in a file is executed or unpickled.
"""
from __future__ import annotations

import hashlib
import json
import random
from dataclasses import asdict, dataclass, field
from pathlib import Path

from readingroom.evaluate.questions import read_jsonl

FIELDS = ("instruction", "response", "sources", "provenance")
SOURCE_FIELDS = ("passage_id", "citation", "text")
KINDS = ("question", "continuation", "manual")
MAX_LINE_CHARS = 200_000


class DatasetError(ValueError):
    pass


@dataclass
class Example:
    instruction: str
    response: str
    sources: list[dict] = field(default_factory=list)
    provenance: dict = field(default_factory=dict)

    @property
    def kind(self) -> str:
        return self.provenance.get("kind", "manual")

    def to_dict(self) -> dict:
        return asdict(self)


def check_record(record) -> Example:
    """An Example from one decoded line; a DatasetError saying what is wrong."""
    if not isinstance(record, dict):
        raise DatasetError("each line must be a JSON object")
    missing = [f for f in FIELDS if f not in record]
    if missing:
        raise DatasetError(f"missing field{'s' if len(missing) > 1 else ''}: {', '.join(missing)}")
    unknown = sorted(set(record) - set(FIELDS))
    if unknown:
        raise DatasetError(f"unknown field{'s' if len(unknown) > 1 else ''}: {', '.join(unknown)} "
                           f"(the fields are {', '.join(FIELDS)})")
    for name in ("instruction", "response"):
        if not isinstance(record[name], str) or not record[name].strip():
            raise DatasetError(f"'{name}' must be a non-empty string")
    sources = record["sources"]
    if not isinstance(sources, list):
        raise DatasetError("'sources' must be a list of passages")
    for i, source in enumerate(sources, start=1):
        if not isinstance(source, dict) or not all(isinstance(source.get(f), str) for f in SOURCE_FIELDS):
            raise DatasetError(f"source {i} must be an object with string fields {', '.join(SOURCE_FIELDS)}")
        if not source["text"].strip():
            raise DatasetError(f"source {i} has no text")
    provenance = record["provenance"]
    if not isinstance(provenance, dict) or provenance.get("kind") not in KINDS:
        raise DatasetError(f"'provenance' must be an object whose 'kind' is one of {', '.join(KINDS)}")
    if provenance["kind"] == "question" and not sources:
        raise DatasetError("a question example needs the passage it was asked of in 'sources'")
    return Example(record["instruction"], record["response"], sources, provenance)


def read_examples(path: str | Path) -> list[Example]:
    return read_jsonl(path, check_record, error=DatasetError, file_kind="dataset", items="examples",
                      max_line_chars=MAX_LINE_CHARS)


def write_examples(examples, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    with open(partial, "w", encoding="utf-8") as f:
        for example in examples:
            f.write(json.dumps(example.to_dict(), ensure_ascii=False, sort_keys=True) + "\n")
    partial.replace(path)
    return path


def dataset_sha256(examples) -> str:
    """The hash of the examples' content (as written by write_examples), so
    that a model card names exactly what it was trained on."""
    hasher = hashlib.sha256()
    for example in examples:
        hasher.update((json.dumps(example.to_dict(), ensure_ascii=False, sort_keys=True) + "\n").encode())
    return hasher.hexdigest()


def split(examples, held_out: float = 0.2, seed: int = 0) -> tuple[list[Example], list[Example]]:
    """(train, held out), with every example of one passage on the same side,
    so held-out examples test passages the model has not been trained on."""
    if not 0 < held_out < 1:
        raise ValueError(f"held_out must be between 0 and 1, not {held_out}")
    groups: dict[str, list[Example]] = {}
    for example in examples:
        key = example.provenance.get("passage_id") or (example.sources[0]["passage_id"] if example.sources
                                                        else example.instruction)
        groups.setdefault(key, []).append(example)
    keys = sorted(groups)
    random.Random(seed).shuffle(keys)
    n_held = max(1, round(len(keys) * held_out)) if len(keys) > 1 else 0
    held = [e for k in keys[:n_held] for e in groups[k]]
    train = [e for k in keys[n_held:] for e in groups[k]]
    if not train:
        raise DatasetError("too few examples to hold some out: give more")
    return train, held
