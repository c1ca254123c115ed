"""Would the judge have caught what the default check kept wrongly? The
hand-labelled sentences of data/benchmarks/answer-claim-labels.jsonl (real
answers of the 1.5B, each kept by the default word-and-cosine check, each
labelled supported or not by a reader) put to the entailment judge, as
answer.pipeline's meaning check puts them (check.steps.judged_claim: the
sentence without its [n] markers and its leading "According to ..."),
against its passage around the sentence of the passage that shares most
words with it.

    python bench/judge_kept.py [--db FILE] [--model NAME] [--labels FILE]

The labels were never used to fit the judge's calibration (that is
data/benchmarks/claims.jsonl, bench/judge.py), so this is a held-out test
of it on the sentences the default path actually keeps. The passages come
from --db by passage id: a library holding the default corpora and the
Marx-Engels texts (the labels' own library); a row whose passage is not
there is skipped, and the script skips cleanly when none is.

Reported: the kept sentences' precision as the default check left them
(the baseline) and after the judge, with Wilson 95% intervals; how many
wrong sentences the judge caught and how many right ones it dropped; the
judge's seconds per sentence (median) and the machine's load.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

from tqdm.auto import tqdm

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "lib"))

from readingroom import open_library  # noqa: E402
from readingroom.answer.check.steps import judged_claim  # noqa: E402
from readingroom.answer.entailment import meaning_source  # noqa: E402
from readingroom.answer.pipeline import load_judge  # noqa: E402
from readingroom.evaluate.metrics import wilson_interval  # noqa: E402
from readingroom.models.catalogue import DEFAULT_GENERATOR  # noqa: E402

LABELS = ROOT / "data/benchmarks/answer-claim-labels.jsonl"


def load() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def share(hits: int, n: int) -> str:
    low, high = wilson_interval(hits, n)
    return f"{hits}/{n} = {hits / n:.2f} [{low:.2f}-{high:.2f}]" if n else "-"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", default=None, help="library holding the labels' passages [default: the default one]")
    parser.add_argument("--model", default=DEFAULT_GENERATOR, help="the judge")
    parser.add_argument("--labels", type=Path, default=LABELS)
    parser.add_argument("--out", type=Path, default=None, help="write each sentence's verdict here (JSON Lines)")
    args = parser.parse_args()

    rows = [json.loads(line) for line in args.labels.read_text(encoding="utf-8").splitlines() if line.strip()]
    lib = open_library(args.db, read_only=True)
    texts = dict(lib.con.execute("SELECT passage_id, text FROM passages WHERE passage_id IN (SELECT unnest(?))",
                                 [[r["passage_id"] for r in rows]]).fetchall())
    usable = [r for r in rows if r["passage_id"] in texts]
    if not usable:
        print(f"skipped: none of the {len(rows)} labelled sentences' passages is in {lib.path}")
        return 0
    print(f"load average {load()}; {len(usable)} of {len(rows)} labelled sentences have their passage in {lib.path}")
    judge = load_judge(args.model)
    print(f"judge {args.model}, threshold {judge.threshold:.3f} "
          f"({'calibrated' if judge.calibration else 'raw probability'})")
    results, seconds = [], []
    for row in tqdm(usable, desc="judging"):
        claim = judged_claim(row["statement"])  # as the meaning check asks it
        source = meaning_source(texts[row["passage_id"]], claim)
        started = time.perf_counter()
        kept, probability = judge.supports(source, claim)
        seconds.append(time.perf_counter() - started)
        results.append((row["label"], kept, probability, claim))
    right = [r for r in results if r[0]]
    wrong = [r for r in results if not r[0]]
    after = [r for r in results if r[1]]
    print(f"\nkept by the default check: precision {share(len(right), len(results))}")
    print(f"kept after the judge too:   precision {share(sum(r[0] for r in after), len(after))}")
    print(f"wrong sentences the judge left out: {sum(not r[1] for r in wrong)}/{len(wrong)}")
    print(f"right sentences the judge left out: {sum(not r[1] for r in right)}/{len(right)}")
    print(f"judge seconds per sentence: median {statistics.median(seconds):.1f}, max {max(seconds):.1f}")
    # Other thresholds, for the record only: the one in use is the calibration's, set on
    # data/benchmarks/claims.jsonl, never on these labels.
    for threshold in (0.3, 0.5, 0.7, judge.threshold, 0.9):
        passed = [r for r in results if r[2] >= threshold]
        print(f"  at {threshold:.3f}: precision {share(sum(r[0] for r in passed), len(passed))}, "
              f"right sentences kept {sum(r[0] for r in passed)}/{len(right)}")
    if args.out:
        with open(args.out, "w", encoding="utf-8") as f:
            for (label, kept, probability, claim), row in zip(results, usable):
                f.write(json.dumps({"passage_id": row["passage_id"], "claim": claim, "label": label,
                                    "probability": round(probability, 4), "kept": kept}, ensure_ascii=False) + "\n")
    print("\nwrong sentences the judge kept:")
    for label, kept, probability, claim in wrong:
        if kept:
            print(f"  {probability:.2f}  {claim[:120]}")
    print(f"load average {load()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
