"""Ingestion speed: MB of text per second from files to stored passages.

    python bench/ingest.py [--repeat 3]

Corpora: ../shared/corpus/marx-engels (plain text with a manifest; skipped
when absent) and An Anarchist FAQ (Markdown; skipped when not fetched: run
`readingroom corpus fetch anarchist-faq`).

Steady-state speed: one untimed warm-up run first loads the libraries and
the language-detection models (about 2 s, once per process).

Baseline, in the same run on the same files: the least any ingester must do,
i.e. read and decode each file, cut it at blank lines into chunks, and insert
the chunks into a DuckDB table in one transaction. The ratio is our speed over
that floor; it says what structure, sentence-aware splitting, citations, ids
and change detection cost. The issue's aim is 20 MB/s.
"""
from __future__ import annotations

import argparse
import gzip
import statistics
import sys
import tempfile
import time
from pathlib import Path

import duckdb
import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "lib"))

from readingroom import open_library  # noqa: E402
from readingroom.corpus import corpora  # noqa: E402
from readingroom.library.ingest import ingest, ingest_paths  # noqa: E402
from readingroom.corpus.sources.anarchist_faq import faq_files  # noqa: E402

MARX_ENGELS = Path(__file__).resolve().parent.parent.parent / "shared" / "corpus" / "marx-engels"


def naive_baseline(files: list[Path], db: Path) -> float:
    start = time.perf_counter()
    chunks = []
    for f in files:
        data = gzip.decompress(f.read_bytes()) if f.suffix == ".gz" else f.read_bytes()
        text = data.decode("utf-8-sig").replace("\r\n", "\n")
        chunks.extend(p for p in text.split("\n\n") if p.strip())
    con = duckdb.connect(str(db))
    con.execute("CREATE TABLE chunks (id INTEGER, text VARCHAR)")
    con.register("new_chunks", pa.table({"id": list(range(len(chunks))), "text": chunks}))
    con.execute("BEGIN")
    con.execute("INSERT INTO chunks SELECT * FROM new_chunks")
    con.execute("COMMIT")
    con.close()
    return time.perf_counter() - start


def ours(run, db: Path) -> tuple[float, int]:
    start = time.perf_counter()
    with open_library(db) as lib:
        report = run(lib)
    return time.perf_counter() - start, report.characters


def measure(name: str, files: list[Path], run, repeat: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:  # warm-up: imports, language models
        ours(run, Path(tmp) / "warm-up.duckdb")
    mb = sum(len(gzip.decompress(f.read_bytes()) if f.suffix == ".gz" else f.read_bytes()) for f in files) / 1e6
    ours_s, base_s = [], []
    for _ in range(repeat):
        with tempfile.TemporaryDirectory() as tmp:
            seconds, characters = ours(run, Path(tmp) / "ours.duckdb")
            ours_s.append(seconds)
            base_s.append(naive_baseline(files, Path(tmp) / "naive.duckdb"))
    o, b = statistics.median(ours_s), statistics.median(base_s)
    print(f"{name}: {len(files)} files, {mb:.1f} MB")
    print(f"  readingroom ingest        {mb / o:6.1f} MB/s  ({o:.2f} s, median of {repeat})")
    print(f"  naive read+chunk+insert   {mb / b:6.1f} MB/s  ({b:.2f} s)")
    print(f"  ratio ours/naive          {b / o:6.2f}")
    print(f"  against the 20 MB/s aim   {mb / o / 20:6.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    if MARX_ENGELS.is_dir():
        files = sorted(MARX_ENGELS.glob("*.txt"))
        measure("marx-engels (plain text + manifest)", files,
                lambda lib: ingest_paths(lib, [MARX_ENGELS], progress=False), args.repeat)
    else:
        print(f"marx-engels: skipped, {MARX_ENGELS} is absent")

    corpus = corpora.get("anarchist-faq")
    try:
        folder = corpora.fetch(corpus, download=False)
    except corpora.CorpusError as e:
        print(f"anarchist-faq: skipped, {e}")
        return
    measure("anarchist-faq (Markdown)", faq_files(folder),
            lambda lib: ingest(lib, corpora.read(corpus, folder), progress=False), args.repeat)


if __name__ == "__main__":
    main()
