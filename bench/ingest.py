"""Ingestion speed: MB of text per second from files to stored passages.

    python bench/ingest.py [--repeat 3]
    python bench/ingest.py --identity [--reference-lib ../main/lib]

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

--identity: what a faster ingestion stores must be what the plain one
stored. The same corpora (and the test fixtures) are ingested by the code of
`--reference-lib` (another checkout's lib/, e.g. main's, in a process of its
own) and by this checkout's, with 1 and 2 worker processes; every column of
documents and passages (but the time of ingestion) and the reports must be
equal.
"""
from __future__ import annotations

import argparse
import gzip
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb
import pyarrow as pa

# READINGROOM_BENCH_LIB: the lib/ whose code runs (--identity's reference run).
sys.path.insert(0, os.environ.get("READINGROOM_BENCH_LIB") or str(Path(__file__).resolve().parent.parent / "lib"))

from readingroom import open_library  # noqa: E402
from readingroom.corpus import corpora  # noqa: E402
from readingroom.library.ingest import ingest, ingest_paths  # noqa: E402
from readingroom.corpus.sources.anarchist_faq import faq_files  # noqa: E402

MARX_ENGELS = Path(__file__).resolve().parent.parent.parent / "shared" / "corpus" / "marx-engels"
FIXTURES = Path(__file__).resolve().parent.parent / "data" / "fixtures"
FIXTURE_FORMATS = ("text", "markdown", "html", "mediawiki", "articles", "epub", "pdf")


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


# --- identity -----------------------------------------------------------------
def store_all(db: Path, workers: int) -> list[str]:
    """Ingest the test fixtures, the Marx-Engels texts and the FAQ (those
    present) into `db`; the reports' summaries."""
    summaries = []
    with open_library(db) as lib:
        for name in FIXTURE_FORMATS:
            summaries.append(ingest_paths(lib, [FIXTURES / name], progress=False, workers=workers).summary())
        if MARX_ENGELS.is_dir():
            summaries.append(ingest_paths(lib, [MARX_ENGELS], progress=False, workers=workers).summary())
        corpus = corpora.get("anarchist-faq")
        try:
            folder = corpora.fetch(corpus, download=False)
        except corpora.CorpusError:
            return summaries
        summaries.append(ingest(lib, corpora.read(corpus, folder), progress=False, workers=workers).summary())
    return summaries


def stored_rows(db: Path) -> dict[str, list[tuple]]:
    """Every row of documents and passages, every column but the time of ingestion."""
    import duckdb

    with duckdb.connect(str(db), read_only=True) as con:
        return {
            "documents": con.execute("SELECT * EXCLUDE (ingested_at) FROM documents ORDER BY doc_id").fetchall(),
            "passages": con.execute("SELECT * FROM passages ORDER BY passage_id").fetchall(),
        }


def identity(reference_lib: Path) -> bool:
    with tempfile.TemporaryDirectory() as tmp:
        reference_db = Path(tmp) / "reference.duckdb"
        run = subprocess.run(
            [sys.executable, __file__, "--store-into", str(reference_db)], capture_output=True, text=True,
            env={**os.environ, "READINGROOM_BENCH_LIB": str(reference_lib)}, check=True)
        reference = (run.stdout, stored_rows(reference_db))
        same = True
        for workers in (1, 2):
            db = Path(tmp) / f"ours-{workers}.duckdb"
            ours = ("\n".join(store_all(db, workers)) + "\n", stored_rows(db))
            for table in ("documents", "passages"):
                a, b = reference[1][table], ours[1][table]
                differing = sum(x != y for x, y in zip(a, b)) + abs(len(a) - len(b))
                print(f"  {workers} process{'es' if workers > 1 else ''}: {table:9} {len(b):6} rows, "
                      f"{differing} differ from {reference_lib}'s {len(a)}")
                same &= differing == 0
            if ours[0] != reference[0]:
                print("  the reports differ:\n" + reference[0] + "\n---\n" + ours[0])
                same = False
    print("identical" if same else "NOT IDENTICAL")
    return same


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--identity", action="store_true", help="compare what is stored with --reference-lib's")
    parser.add_argument("--reference-lib", type=Path, default=Path(__file__).resolve().parent.parent.parent
                        / "main" / "lib")
    parser.add_argument("--store-into", type=Path, help=argparse.SUPPRESS)  # --identity's reference run
    args = parser.parse_args()
    if args.store_into:
        print("\n".join(store_all(args.store_into, 1)))
        return
    if args.identity:
        sys.exit(0 if identity(args.reference_lib) else 1)

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
