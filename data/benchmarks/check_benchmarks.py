#!/usr/bin/env python3
"""Validate the hand-written retrieval benchmarks in data/benchmarks/.

Usage (from the repository root):

    python data/benchmarks/check_benchmarks.py [corpus_dir]

corpus_dir defaults to ../shared/corpus/marx-engels relative to the repository
root. The schema of every benchmark file is always checked. The gold-span checks
(each gold occurs exactly once in the corpus, and in the file it names) need the
Marx-Engels corpus, which is not shipped with the project: when the folder is
absent the script prints "skipped: corpus absent" and exits 0. Any failure exits 1.
"""

from __future__ import annotations

import csv
import json
import re
import sys
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parents[1]
DEFAULT_CORPUS = REPO_ROOT.parent / "shared" / "corpus" / "marx-engels"

MAIN = HERE / "marx-engels.jsonl"
DEFR = HERE / "marx-engels-de-fr.jsonl"
UNANSWERABLE = HERE / "unanswerable.jsonl"

MIN_WORDS, MAX_WORDS = 8, 40
MIN_PER_TEXT = 5
MIN_MAIN = 48
EXPECTED_LANGS = {"de": 5, "fr": 5}
MIN_UNANSWERABLE = 25

_WS = re.compile(r"\s+")


def collapse(text: str) -> str:
    """Collapse every whitespace run to one space (what the matcher does)."""
    return _WS.sub(" ", text).strip()


def count_occurrences(haystack: str, needle: str) -> int:
    """Count occurrences of needle in haystack, overlapping ones included."""
    n, start = 0, 0
    while True:
        i = haystack.find(needle, start)
        if i < 0:
            return n
        n += 1
        start = i + 1


def load_jsonl(path: Path, errors: list[str]) -> list[dict]:
    rows = []
    if not path.is_file():
        errors.append(f"{path.name}: file missing")
        return rows
    with path.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                errors.append(f"{path.name}:{lineno}: blank line")
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                errors.append(f"{path.name}:{lineno}: invalid JSON ({exc})")
                continue
            if not isinstance(obj, dict):
                errors.append(f"{path.name}:{lineno}: not a JSON object")
                continue
            obj["_line"] = lineno
            rows.append(obj)
    return rows


def check_keys(path: Path, rows: list[dict], required: dict[str, type], errors: list[str]) -> None:
    for row in rows:
        where = f"{path.name}:{row['_line']}"
        for key in required:
            value = row.get(key)
            if not isinstance(value, str) or not value.strip():
                errors.append(f"{where}: missing or empty '{key}'")
        extra = set(row) - set(required) - {"_line"}
        if extra:
            errors.append(f"{where}: unexpected keys {sorted(extra)}")
    dup_q = [q for q, n in Counter(collapse(r.get("q", "")) for r in rows).items() if n > 1]
    for q in dup_q:
        errors.append(f"{path.name}: duplicate question {q!r}")


def check_gold(path: Path, rows: list[dict], manifest_files: list[str],
               texts: dict[str, str] | None, corpus_all: str | None,
               errors: list[str]) -> None:
    for row in rows:
        where = f"{path.name}:{row['_line']}"
        gold = row.get("gold")
        fname = row.get("file")
        if not isinstance(gold, str) or not isinstance(fname, str):
            continue
        if fname not in manifest_files:
            errors.append(f"{where}: file {fname!r} not in manifest")
        g = collapse(gold)
        words = len(g.split(" "))
        if not MIN_WORDS <= words <= MAX_WORDS:
            errors.append(f"{where}: gold has {words} words (want {MIN_WORDS}-{MAX_WORDS})")
        if texts is None or corpus_all is None:
            continue
        n = count_occurrences(corpus_all, g)
        if n != 1:
            errors.append(f"{where}: gold occurs {n} times in the corpus (want 1): {g[:70]!r}")
        if fname in texts and g not in texts[fname]:
            errors.append(f"{where}: gold not found in {fname}: {g[:70]!r}")


def main(argv: list[str]) -> int:
    corpus_dir = Path(argv[1]) if len(argv) > 1 else DEFAULT_CORPUS
    errors: list[str] = []

    main_rows = load_jsonl(MAIN, errors)
    defr_rows = load_jsonl(DEFR, errors)
    unans_rows = load_jsonl(UNANSWERABLE, errors)
    check_keys(MAIN, main_rows, {"q": str, "gold": str, "file": str}, errors)
    check_keys(DEFR, defr_rows, {"q": str, "gold": str, "file": str, "lang": str}, errors)
    check_keys(UNANSWERABLE, unans_rows, {"q": str, "why": str}, errors)

    if len(main_rows) < MIN_MAIN:
        errors.append(f"{MAIN.name}: {len(main_rows)} questions (want >= {MIN_MAIN})")
    langs = Counter(r.get("lang") for r in defr_rows)
    if dict(langs) != EXPECTED_LANGS:
        errors.append(f"{DEFR.name}: languages {dict(langs)} (want {EXPECTED_LANGS})")
    main_gold = {(collapse(r.get("gold", "")), r.get("file")) for r in main_rows}
    for r in defr_rows:
        if (collapse(r.get("gold", "")), r.get("file")) not in main_gold:
            errors.append(f"{DEFR.name}:{r['_line']}: gold/file pair not taken from {MAIN.name}")
    if len(unans_rows) < MIN_UNANSWERABLE:
        errors.append(f"{UNANSWERABLE.name}: {len(unans_rows)} questions (want >= {MIN_UNANSWERABLE})")

    corpus_present = corpus_dir.is_dir()
    texts = corpus_all = None
    manifest_files: list[str] = []
    if corpus_present:
        manifest = corpus_dir / "manifest.csv"
        with manifest.open(encoding="utf-8-sig", newline="") as fh:
            manifest_files = [row["file"] for row in csv.DictReader(fh)]
        texts = {}
        for name in manifest_files:
            texts[name] = collapse((corpus_dir / name).read_text(encoding="utf-8-sig"))
        corpus_all = " ".join(texts[name] for name in manifest_files)
    else:
        manifest_files = sorted({r.get("file") for r in main_rows if isinstance(r.get("file"), str)})

    check_gold(MAIN, main_rows, manifest_files, texts, corpus_all, errors)
    check_gold(DEFR, defr_rows, manifest_files, texts, corpus_all, errors)

    per_file = Counter(r.get("file") for r in main_rows)
    if corpus_present:
        for name in manifest_files:
            if per_file[name] < MIN_PER_TEXT:
                errors.append(f"{MAIN.name}: {per_file[name]} questions for {name} (want >= {MIN_PER_TEXT})")

    print(f"{MAIN.name}: {len(main_rows)} questions")
    for name in sorted(per_file):
        print(f"  {per_file[name]:3d}  {name}")
    words = [len(collapse(r.get('gold', '')).split(' ')) for r in main_rows]
    if words:
        print(f"  gold length: {min(words)}-{max(words)} words, mean {sum(words) / len(words):.1f}")
    print(f"{DEFR.name}: {len(defr_rows)} questions {dict(sorted(langs.items(), key=str))}")
    print(f"{UNANSWERABLE.name}: {len(unans_rows)} questions")

    if errors:
        print(f"FAILED: {len(errors)} problem(s)")
        for e in errors:
            print("  " + e)
        return 1
    if not corpus_present:
        print(f"schema OK; gold checks skipped: corpus absent ({corpus_dir})")
        return 0
    print("OK: every gold span occurs exactly once in the corpus, in its named file")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
