#!/usr/bin/env python3
"""Validate the hand-written benchmarks in data/benchmarks/.

Usage (from the repository root):

    python data/benchmarks/check_benchmarks.py [corpus_dir] [--faq DIR] [--sotu DIR] [--fortunes DIR]

corpus_dir defaults to ../shared/corpus/marx-engels relative to the repository
root. The schema of every benchmark file is always checked. The gold-span checks
(each gold occurs exactly once in the corpus, and in the file it names) need the
corpora, which are not shipped with the project: the Marx-Engels texts, An
Anarchist FAQ's Markdown (Debian `anarchism`) and the German quotations of
Debian `fortunes-de`. The last two are looked for where `readingroom corpus
fetch` unpacks them and where Debian installs them. When a corpus is absent the
script prints "skipped: ... absent" for its checks and exits 0. Any failure
exits 1.

The v2 files (answers.jsonl, unanswerable-v2.jsonl, claims.jsonl) are checked
the same way: schema and counts always; gold spans, quotes, passages and the
"absent from every corpus" greps only against the corpora that are present
(--sotu names the State of the Union folder).
"""

from __future__ import annotations

import argparse
import ast
import csv
import gzip
import json
import os
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

CROSS = HERE / "crosslingual.jsonl"
EN_TO_X = HERE / "crosslingual-en-to-x.jsonl"
CROSS_KEYS = ("q", "q_en", "lang", "direction", "gold", "corpus", "file", "answer")
EN_TO_X_KEYS = ("q", "q_native", "lang", "direction", "text_lang", "gold", "corpus", "file", "answer")
CROSS_LANGS = ("de", "fr", "es")
MIN_PER_LANG = 30
MIN_EN_TO_X = 30
FAQ_EDITION = "anarchist-faq-15.3-3"
FORTUNES_EDITION = "fortunes-de-0.35-1"


def cache_dir() -> Path:
    """Where Reading Room unpacks fetched corpora (as readingroom.paths does)."""
    if os.environ.get("READINGROOM_CACHE"):
        return Path(os.environ["READINGROOM_CACHE"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "readingroom"


def first_dir(candidates: list[Path]) -> Path | None:
    return next((c for c in candidates if c.is_dir()), None)


def default_faq_dir() -> Path | None:
    return first_dir([cache_dir() / "corpora" / FAQ_EDITION / "usr/share/doc/anarchism/markdown",
                      Path("/usr/share/doc/anarchism/markdown")])


def default_fortunes_dir() -> Path | None:
    return first_dir([cache_dir() / "corpora" / FORTUNES_EDITION / "usr/share/games/fortunes/de",
                      Path("/usr/share/games/fortunes/de")])

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


def check_keys(path: Path, rows: list[dict], required: dict[str, type], errors: list[str],
               unique: str | None = "q") -> None:
    for row in rows:
        where = f"{path.name}:{row['_line']}"
        for key in required:
            value = row.get(key)
            if not isinstance(value, str) or not value.strip():
                errors.append(f"{where}: missing or empty '{key}'")
        extra = set(row) - set(required) - {"_line"}
        if extra:
            errors.append(f"{where}: unexpected keys {sorted(extra)}")
    if unique is None:
        return
    dup_q = [q for q, n in Counter(collapse(r.get(unique, "")) for r in rows).items() if n > 1]
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


def read_faq_files(folder: Path) -> dict[str, str]:
    """Each FAQ section file ('secA1.md') as collapsed raw Markdown. Gold spans
    are chosen free of Markdown markup, so they read the same in the raw file
    and in the library's passages."""
    texts = {}
    for path in sorted(folder.iterdir()):
        if path.name.endswith(".md.gz"):
            with gzip.open(path, "rt", encoding="utf-8") as fh:
                texts[path.name[:-3]] = collapse(fh.read())
        elif path.name.endswith(".md"):
            texts[path.name] = collapse(path.read_text(encoding="utf-8"))
    return texts


def read_fortunes(folder: Path) -> dict[str, str]:
    """Each fortune file (not the .dat indexes, not the .u8 links) collapsed."""
    return {p.name: collapse(p.read_text(encoding="utf-8"))
            for p in sorted(folder.iterdir())
            if p.is_file() and not p.is_symlink() and "." not in p.name}


def check_cross_schema(path: Path, rows: list[dict], keys: tuple[str, ...], errors: list[str]) -> None:
    check_keys(path, rows, {k: str for k in keys}, errors)
    for row in rows:
        where = f"{path.name}:{row['_line']}"
        gold = row.get("gold")
        if isinstance(gold, str):
            words = len(collapse(gold).split(" "))
            if not MIN_WORDS <= words <= MAX_WORDS:
                errors.append(f"{where}: gold has {words} words (want {MIN_WORDS}-{MAX_WORDS})")
    golds = Counter(collapse(r.get("gold", "")) for r in rows)
    for g, n in golds.items():
        if n > 1:
            errors.append(f"{path.name}: gold used {n} times: {g[:60]!r}")


def check_cross_gold(path: Path, rows: list[dict], corpus: str, texts: dict[str, str] | None,
                     errors: list[str]) -> str:
    """Exact-once gold checks for the rows of one corpus; 'checked' or 'skipped'."""
    mine = [r for r in rows if r.get("corpus") == corpus]
    if texts is None:
        return "skipped"
    everything = " ".join(texts.values())
    for row in mine:
        where = f"{path.name}:{row['_line']}"
        g = collapse(row.get("gold", ""))
        fname = row.get("file")
        if fname not in texts:
            errors.append(f"{where}: file {fname!r} not in the {corpus} corpus")
            continue
        n = count_occurrences(everything, g)
        if n != 1:
            errors.append(f"{where}: gold occurs {n} times in {corpus} (want 1): {g[:70]!r}")
        if g not in texts[fname]:
            errors.append(f"{where}: gold not found in {fname}: {g[:70]!r}")
    return "checked"


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("corpus_dir", nargs="?", type=Path, default=DEFAULT_CORPUS,
                        help="the Marx-Engels corpus folder")
    parser.add_argument("--faq", type=Path, default=None,
                        help="An Anarchist FAQ markdown/ folder (default: fetched or installed copy)")
    parser.add_argument("--sotu", type=Path, default=None, help="folder of the SOTU .txt files")
    parser.add_argument("--fortunes", type=Path, default=None,
                        help="fortunes-de's de/ folder (default: fetched or installed copy)")
    args = parser.parse_args(argv[1:])
    corpus_dir = args.corpus_dir
    faq_dir = args.faq or default_faq_dir()
    fortunes_dir = args.fortunes or default_fortunes_dir()
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

    cross_rows = load_jsonl(CROSS, errors)
    en_rows = load_jsonl(EN_TO_X, errors)
    check_cross_schema(CROSS, cross_rows, CROSS_KEYS, errors)
    check_cross_schema(EN_TO_X, en_rows, EN_TO_X_KEYS, errors)
    cross_langs = Counter(r.get("lang") for r in cross_rows)
    for lang in CROSS_LANGS:
        if cross_langs[lang] < MIN_PER_LANG:
            errors.append(f"{CROSS.name}: {cross_langs[lang]} '{lang}' questions (want >= {MIN_PER_LANG})")
    for r in cross_rows:
        where = f"{CROSS.name}:{r['_line']}"
        if r.get("lang") not in CROSS_LANGS:
            errors.append(f"{where}: lang {r.get('lang')!r} (want one of {CROSS_LANGS})")
        if r.get("direction") != f"{r.get('lang')}->en":
            errors.append(f"{where}: direction {r.get('direction')!r} (want '{r.get('lang')}->en')")
        if r.get("corpus") not in ("marx-engels", "anarchist-faq"):
            errors.append(f"{where}: corpus {r.get('corpus')!r} (want marx-engels or anarchist-faq)")
    if len(en_rows) < MIN_EN_TO_X:
        errors.append(f"{EN_TO_X.name}: {len(en_rows)} questions (want >= {MIN_EN_TO_X})")
    for r in en_rows:
        where = f"{EN_TO_X.name}:{r['_line']}"
        if r.get("lang") != "en" or r.get("direction") != f"en->{r.get('text_lang')}":
            errors.append(f"{where}: lang/direction {r.get('lang')!r}/{r.get('direction')!r} "
                          f"(want 'en' and 'en->' + text_lang)")
        if r.get("corpus") != "fortunes-de":
            errors.append(f"{where}: corpus {r.get('corpus')!r} (want fortunes-de)")
    dup_en = [q for q, n in Counter(collapse(r.get("q_en", "")) for r in cross_rows).items() if n > 1]
    for q in dup_en:
        errors.append(f"{CROSS.name}: duplicate q_en {q!r}")
    # The Marx-Engels rows go through the same exact-once check as the main file.
    me_rows = [r for r in cross_rows if r.get("corpus") == "marx-engels"]
    check_gold(CROSS, me_rows, manifest_files, texts, corpus_all, errors)
    faq_state = check_cross_gold(CROSS, cross_rows, "anarchist-faq",
                                 read_faq_files(faq_dir) if faq_dir else None, errors)
    fortunes_state = check_cross_gold(EN_TO_X, en_rows, "fortunes-de",
                                      read_fortunes(fortunes_dir) if fortunes_dir else None, errors)

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
    by_corpus = Counter((r.get("lang"), r.get("corpus")) for r in cross_rows)
    print(f"{CROSS.name}: {len(cross_rows)} questions "
          + ", ".join(f"{k[0]}/{k[1]} {n}" for k, n in sorted(by_corpus.items(), key=str)))
    print(f"{EN_TO_X.name}: {len(en_rows)} questions {dict(Counter(r.get('direction') for r in en_rows))}")
    print(f"  An Anarchist FAQ gold: {faq_state}" + ("" if faq_dir else " (FAQ markdown absent)"))
    print(f"  fortunes-de gold: {fortunes_state}" + ("" if fortunes_dir else " (fortunes-de absent)"))

    v2_skipped = check_v2(texts, find_faq(args.faq), find_sotu(args.sotu), errors)

    if errors:
        print(f"FAILED: {len(errors)} problem(s)")
        for e in errors:
            print("  " + e)
        return 1
    for line in v2_skipped:
        print(f"skipped: {line}")
    if not corpus_present:
        print(f"schema OK; gold checks skipped: corpus absent ({corpus_dir})")
        return 0
    skipped = [name for name, state in (("An Anarchist FAQ", faq_state), ("fortunes-de", fortunes_state))
               if state == "skipped"]
    print("OK: every gold span occurs exactly once in the corpus, in its named file"
          + (f"; skipped: {', '.join(skipped)} absent" if skipped else ""))
    return 0


# ---------------------------------------------------------------------------
# v2: answers.jsonl, unanswerable-v2.jsonl, claims.jsonl

ANSWERS = HERE / "answers.jsonl"
UNANSWERABLE_V2 = HERE / "unanswerable-v2.jsonl"
CLAIMS = HERE / "claims.jsonl"

CORPORA = ("marx-engels", "anarchist-faq")
MIN_ANSWERS, MIN_ANSWERS_PER_CORPUS = 110, 45
MIN_UNANSWERABLE_V2, MIN_NEAR_DOMAIN = 45, 25
MIN_CLAIMS, MIN_PER_UNSUPPORTED_KIND, MIN_FAQ_CLAIMS = 220, 25, 15
PASSAGE_WORDS = (60, 250)
SUPPORTED_KINDS = {"verbatim", "paraphrase"}
UNSUPPORTED_KINDS = {"negation", "swapped-roles", "wrong-claim-right-topic", "other-passage", "overreach"}
FAQ_VERSION = "anarchist-faq-15.3-3"
# Files the FAQ reader leaves out (index pages, link lists, bibliography), as
# readingroom.sources.anarchist_faq.NAVIGATION: their words never reach the library.
FAQ_NAVIGATION = {"index", "links", "alinks", "arlinks", "contact", "pdf", "book",
                  "translations", "supplementary", "new", "biblio"}
SOTU_VERSION = "sotu-0.2.3"
# Markdown that a heading carries in the FAQ's source but not in the reader's section path.
_MD_MARKUP = re.compile(r"[*_`]|\\(?=\S)")


def _cache_dir() -> Path:
    """Where readingroom keeps downloads (same rule as readingroom.paths.cache_dir)."""
    if os.environ.get("READINGROOM_CACHE"):
        return Path(os.environ["READINGROOM_CACHE"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base).expanduser() / "readingroom"


def find_faq(explicit: Path | None) -> Path | None:
    candidates = [explicit] if explicit else [
        _cache_dir() / "corpora" / FAQ_VERSION / "usr/share/doc/anarchism/markdown",
        Path("/usr/share/doc/anarchism/markdown"),
    ]
    return next((c for c in candidates if c is not None and c.is_dir()), None)


def find_sotu(explicit: Path | None) -> Path | None:
    candidates = [explicit] if explicit else [_cache_dir() / "corpora" / SOTU_VERSION / "package/data"]
    return next((c for c in candidates if c is not None and c.is_dir()), None)


def read_faq(folder: Path) -> dict[str, str]:
    """'secA1.md' -> the file's Markdown, whitespace collapsed."""
    texts = {}
    for path in sorted(folder.glob("*.md")) + sorted(folder.glob("*.md.gz")):
        if path.name.split(".")[0] in FAQ_NAVIGATION:
            continue
        raw = path.read_bytes()
        if path.name.endswith(".gz"):
            raw = gzip.decompress(raw)
        texts[path.name.split(".")[0] + ".md"] = collapse(raw.decode("utf-8"))
    return texts


def _unmarked(text: str) -> str:
    return collapse(_MD_MARKUP.sub("", text))


def check_answers(rows: list[dict], corpus_texts: dict[str, dict[str, str] | None],
                  errors: list[str]) -> None:
    name = ANSWERS.name
    for row in rows:
        where = f"{name}:{row['_line']}"
        corpus = row.get("corpus")
        required = {"q", "gold", "corpus", "file", "answer"} | ({"section"} if corpus == "anarchist-faq" else set())
        for key in required:
            if not isinstance(row.get(key), str) or not row[key].strip():
                errors.append(f"{where}: missing or empty '{key}'")
        extra = set(row) - required - {"_line"}
        if extra:
            errors.append(f"{where}: unexpected keys {sorted(extra)}")
        if corpus not in CORPORA:
            errors.append(f"{where}: corpus {corpus!r} (want one of {CORPORA})")
            continue
        gold = collapse(row.get("gold", ""))
        words = len(gold.split(" "))
        if not MIN_WORDS <= words <= MAX_WORDS:
            errors.append(f"{where}: gold has {words} words (want {MIN_WORDS}-{MAX_WORDS})")
        texts = corpus_texts[corpus]
        if texts is None:
            continue
        fname = row.get("file")
        if fname not in texts:
            errors.append(f"{where}: file {fname!r} not in the {corpus} corpus")
            continue
        # Unique across both corpora that are present, so a hit cannot come from elsewhere.
        n = sum(count_occurrences(t, gold) for c in CORPORA if corpus_texts[c] for t in corpus_texts[c].values())
        if n != 1:
            errors.append(f"{where}: gold occurs {n} times in the corpora (want 1): {gold[:70]!r}")
        if gold not in texts[fname]:
            errors.append(f"{where}: gold not found in {fname}: {gold[:70]!r}")
        if corpus == "anarchist-faq" and _unmarked(row.get("section", "")) not in _unmarked(texts[fname]):
            errors.append(f"{where}: section {row.get('section')!r} is not a heading of {fname}")
    for label, values in (("question", [collapse(r.get("q", "")) for r in rows]),
                          ("gold", [collapse(r.get("gold", "")) for r in rows])):
        for value, n in Counter(values).items():
            if n > 1:
                errors.append(f"{name}: duplicate {label} {value[:70]!r}")
    old = {collapse(json.loads(line)["q"]) for line in MAIN.read_text(encoding="utf-8").splitlines() if line.strip()}
    for row in rows:
        if collapse(row.get("q", "")) in old:
            errors.append(f"{name}:{row['_line']}: question copied from {MAIN.name}")
    per_corpus = Counter(r.get("corpus") for r in rows)
    if len(rows) < MIN_ANSWERS:
        errors.append(f"{name}: {len(rows)} questions (want >= {MIN_ANSWERS})")
    for corpus in CORPORA:
        if per_corpus[corpus] < MIN_ANSWERS_PER_CORPUS:
            errors.append(f"{name}: {per_corpus[corpus]} questions on {corpus} (want >= {MIN_ANSWERS_PER_CORPUS})")


def grepped_terms(why: str) -> list[str]:
    """The quoted terms after 'SOTU:' or 'corpora:' in a `why` line."""
    _, sep, tail = why.partition("SOTU:")
    if not sep:
        _, sep, tail = why.partition("corpora:")
    return [ast.literal_eval(t) for t in re.findall(r"'[^']*'|\"[^\"]*\"", tail)] if sep else []


def check_unanswerable_v2(rows: list[dict], everything: list[str] | None, errors: list[str]) -> None:
    name = UNANSWERABLE_V2.name
    check_keys(UNANSWERABLE_V2, rows, {"q": str, "kind": str, "why": str}, errors)
    old = {collapse(json.loads(line)["q"]) for line in UNANSWERABLE.read_text(encoding="utf-8").splitlines() if line.strip()}
    lowered = [t.lower() for t in everything] if everything is not None else None
    for row in rows:
        where = f"{name}:{row['_line']}"
        if row.get("kind") not in ("near-domain", "off-topic"):
            errors.append(f"{where}: kind {row.get('kind')!r} (want near-domain or off-topic)")
        if collapse(row.get("q", "")) in old:
            errors.append(f"{where}: question copied from {UNANSWERABLE.name}")
        terms = grepped_terms(row.get("why", ""))
        if not terms:
            errors.append(f"{where}: 'why' names no grepped terms")
        if lowered is None:
            continue
        for term in terms:
            hits = sum(t.count(term.lower()) for t in lowered)
            if hits:
                errors.append(f"{where}: {term!r} occurs {hits} times in the corpora")
    kinds = Counter(r.get("kind") for r in rows)
    if len(rows) < MIN_UNANSWERABLE_V2:
        errors.append(f"{name}: {len(rows)} questions (want >= {MIN_UNANSWERABLE_V2})")
    if kinds["near-domain"] < MIN_NEAR_DOMAIN:
        errors.append(f"{name}: {kinds['near-domain']} near-domain questions (want >= {MIN_NEAR_DOMAIN})")


def check_claims(rows: list[dict], corpus_texts: dict[str, dict[str, str] | None], errors: list[str]) -> None:
    name = CLAIMS.name
    check_keys(CLAIMS, rows, {k: str for k in ("claim", "quote", "label", "kind", "corpus", "file", "passage")},
               errors, unique=None)
    for row in rows:
        where = f"{name}:{row['_line']}"
        kind, label = row.get("kind"), row.get("label")
        if kind in SUPPORTED_KINDS:
            want = "supported"
        elif kind in UNSUPPORTED_KINDS:
            want = "unsupported"
        else:
            errors.append(f"{where}: kind {kind!r} unknown")
            continue
        if label != want:
            errors.append(f"{where}: label {label!r} for kind {kind!r} (want {want})")
        passage, quote = collapse(row.get("passage", "")), collapse(row.get("quote", ""))
        words = len(passage.split(" "))
        if not PASSAGE_WORDS[0] <= words <= PASSAGE_WORDS[1]:
            errors.append(f"{where}: passage has {words} words (want {PASSAGE_WORDS[0]}-{PASSAGE_WORDS[1]})")
        if quote not in passage:
            errors.append(f"{where}: quote not in passage: {quote[:70]!r}")
        corpus = row.get("corpus")
        if corpus not in CORPORA:
            errors.append(f"{where}: corpus {corpus!r} (want one of {CORPORA})")
            continue
        texts = corpus_texts[corpus]
        if texts is not None and passage not in texts.get(row.get("file"), ""):
            errors.append(f"{where}: passage not found in {corpus}/{row.get('file')}: {passage[:60]!r}")
    pairs = Counter((collapse(r.get("claim", "")), collapse(r.get("passage", ""))) for r in rows)
    for (claim, _), n in pairs.items():
        if n > 1:
            errors.append(f"{name}: duplicate (claim, passage) pair {claim[:60]!r}")
    kinds = Counter(r.get("kind") for r in rows)
    supported = sum(kinds[k] for k in SUPPORTED_KINDS)
    if len(rows) < MIN_CLAIMS:
        errors.append(f"{name}: {len(rows)} pairs (want >= {MIN_CLAIMS})")
    for kind in sorted(UNSUPPORTED_KINDS):
        if kinds[kind] < MIN_PER_UNSUPPORTED_KIND:
            errors.append(f"{name}: {kinds[kind]} pairs of kind {kind} (want >= {MIN_PER_UNSUPPORTED_KIND})")
    if rows and not 0.4 <= supported / len(rows) <= 0.6:
        errors.append(f"{name}: {supported}/{len(rows)} supported (want 40-60%)")
    faq = sum(r.get("corpus") == "anarchist-faq" for r in rows)
    if faq < MIN_FAQ_CLAIMS:
        errors.append(f"{name}: {faq} pairs from the FAQ (want >= {MIN_FAQ_CLAIMS})")


def check_v2(me_texts: dict[str, str] | None, faq_dir: Path | None, sotu_dir: Path | None,
             errors: list[str]) -> list[str]:
    """Check the v2 files; returns what had to be skipped for want of a corpus."""
    faq_texts = read_faq(faq_dir) if faq_dir else None
    sotu_texts = ([collapse(p.read_text(encoding="utf-8")) for p in sorted(sotu_dir.glob("*.txt"))]
                  if sotu_dir else None)
    corpus_texts = {"marx-engels": me_texts, "anarchist-faq": faq_texts}
    answers = load_jsonl(ANSWERS, errors)
    unanswerable = load_jsonl(UNANSWERABLE_V2, errors)
    claims = load_jsonl(CLAIMS, errors)
    check_answers(answers, corpus_texts, errors)
    everything = None
    if me_texts is not None and faq_texts is not None and sotu_texts is not None:
        everything = list(me_texts.values()) + list(faq_texts.values()) + sotu_texts
    check_unanswerable_v2(unanswerable, everything, errors)
    check_claims(claims, corpus_texts, errors)

    per_corpus = Counter(r.get("corpus") for r in answers)
    print(f"{ANSWERS.name}: {len(answers)} questions {dict(sorted(per_corpus.items(), key=str))}")
    kinds = Counter(r.get("kind") for r in unanswerable)
    print(f"{UNANSWERABLE_V2.name}: {len(unanswerable)} questions {dict(sorted(kinds.items(), key=str))}")
    claim_kinds = Counter(r.get("kind") for r in claims)
    labels = Counter(r.get("label") for r in claims)
    print(f"{CLAIMS.name}: {len(claims)} pairs {dict(sorted(labels.items(), key=str))}")
    for kind in sorted(claim_kinds, key=str):
        print(f"  {claim_kinds[kind]:3d}  {kind}")

    skipped = []
    for corpus, texts in corpus_texts.items():
        if texts is None:
            skipped.append(f"{corpus} absent: its gold spans and claim passages were not located")
    if everything is None:
        skipped.append("not every corpus present: unanswerable-v2 greps not re-run")
    return skipped


if __name__ == "__main__":
    sys.exit(main(sys.argv))
