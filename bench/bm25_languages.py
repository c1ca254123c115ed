"""BM25 recall with each text read in its own language (text.index_tokens:
German stop words and stemmer for German passages), against the baseline of
every text read as English (what BM25 did before texts had languages).

    python bench/bm25_languages.py [--k 5]

Library: Debian's fortunes-de quotations ("zitate", one document, German),
ingested into a temporary DuckDB library as `readingroom ingest` does.
Questions: the German questions (`q_native`) of
data/benchmarks/crosslingual-en-to-x.jsonl, each with its gold quotation;
a question counts as found at k when a passage among BM25's k best holds
the gold text (its first 60 characters, spaces collapsed); also R@1 and
MRR@10. Also the English
questions (`q`): BM25 has no words in common across languages, so those
stay near zero either way; the vectors are for that.

Baseline: the same library with its document's language unset, which reads
every passage and query as English (byte for byte the old tokenisation).
Then read in German twice: with German stop words dropped, and kept (the
default, text.BM25_STOP_WORD_LANGUAGES).
Needs fortunes-de fetched (`readingroom corpus fetch fortunes-de`).
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "lib"))


DEPTH = 10  # MRR@10


def norm(text: str) -> str:
    return " ".join(text.split()).lower()


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--k", type=int, default=5)
    args = parser.parse_args()

    from readingroom import ingest, open_library
    from readingroom.corpus import corpora
    import readingroom.search.index as index_module
    from readingroom.search.searcher import Searcher
    from readingroom.text import BM25_STOP_WORD_LANGUAGES

    try:
        folder = corpora.fetch(corpora.get("fortunes-de"), download=False)
    except corpora.CorpusError as e:
        print(f"skipped: {e}")
        return 0
    rows = [json.loads(line) for line in (ROOT / "data/benchmarks/crosslingual-en-to-x.jsonl").open()]
    rows = [r for r in rows if r.get("corpus") == "fortunes-de"]
    with tempfile.TemporaryDirectory() as tmp:
        index_module.cache_dir = lambda: Path(tmp) / "cache"  # no saved index of the user's is read or left
        with open_library(Path(tmp) / "fortunes.duckdb") as lib:
            ingest(lib, [d for d in corpora.read(corpora.get("fortunes-de"), folder)
                         if not hasattr(d, "severity")], progress=False)
            (passages,) = lib.con.execute("SELECT count(*) FROM passages").fetchone()
            (language,) = lib.con.execute("SELECT any_value(language) FROM documents").fetchone()
            print(f"fortunes-de: {passages} passages, language {language!r}; {len(rows)} questions, k={args.k}")
            results = {}
            settings = (("baseline: all read as English", None, False),
                        ("in its language, stop words out", language, True),
                        ("in its language (the default)", language, False))
            for name, setting, drop in settings:
                lib.con.execute("UPDATE documents SET language = ?", [setting])
                if drop:
                    BM25_STOP_WORD_LANGUAGES.add(language)
                else:
                    BM25_STOP_WORD_LANGUAGES.discard(language)
                shutil.rmtree(Path(tmp) / "cache", ignore_errors=True)
                started = time.perf_counter()
                searcher = Searcher(lib, vectors=False)
                built = time.perf_counter() - started
                for field in ("q_native", "q"):
                    ranks = []
                    for r in rows:
                        gold = norm(r["gold"])[:60]
                        hits = searcher.search(r[field], DEPTH, mode="bm25")
                        ranks.append(next((i for i, h in enumerate(hits, 1) if gold in norm(h.text)), None))
                    results[(name, field)] = sum(1 for x in ranks if x and x <= args.k) / len(rows)
                    results[(name, field, "r1")] = sum(1 for x in ranks if x == 1) / len(rows)
                    results[(name, field, "mrr")] = sum(1 / x for x in ranks if x) / len(rows)
                print(f"{name:32s} index {built:4.1f} s | German questions R@1 {results[(name, 'q_native', 'r1')]:.3f}"
                      f" R@{args.k} {results[(name, 'q_native')]:.3f} MRR@{DEPTH} {results[(name, 'q_native', 'mrr')]:.3f}"
                      f" | English questions R@{args.k} {results[(name, 'q')]:.3f}")
            base, new = results[(settings[0][0], "q_native")], results[(settings[-1][0], "q_native")]
            print(f"German questions: recall@{args.k} {new:.3f} against {base:.3f} (x{new / base:.2f})" if base
                  else f"German questions: recall@{args.k} {new:.3f} against {base:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
