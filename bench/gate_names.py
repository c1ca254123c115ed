"""The answer's gate with and without its rule on names
(search.relevance.unknown_names): how many answerable questions each lets
through, and how many unanswerable ones each stops, on every question set in
data/benchmarks that the library can be asked. No model is asked; only the
search and the gate run (the library's embedder, on CPU).

    python bench/gate_names.py [--db FILE] [-k 5] [--faq 150] [--rows rows.jsonl]

The gate before: the best passage's strength reaches GATE_THRESHOLD. After:
that, and every name the question uses is one the library uses (in a
passage, an author's name, or the title of one of the k passages found). The rule has no parameter of its own; the
threshold is the one calibrated at stop 12 on marx-engels.jsonl and
unanswerable.jsonl (so those two sets are not held out from the threshold;
the v2 sets and the FAQ's questions are).

Answerable questions are those of a set whose gold span the library holds
(evaluate.questions.GoldFinder); the rest of an answerable set is skipped.
For every question the new rule stops it prints the names the library
never uses, and whether a gold passage was among the k (a question stopped
whose gold was not given would not have been answered from its gold anyway).

Measured 2026-12-02 11:26 UTC (benchmark library: the default library, State
of the Union + An Anarchist FAQ, plus the seven Marx-Engels texts, 29,995
passages, MiniLM; k=5; about 80 s on the 2 cores, load 1.3 at 10:30 and
2.9 at 11:26 with a notebook running, the same figures both times; rows in
bench/results/gate-names-rows.jsonl):

  | set                   | questions          | before          | with names      |
  | answers.jsonl         | answerable, passed | 115/117 = 0.98  | 114/117 = 0.97  |
  | anarchist-faq.jsonl   | answerable, passed | 150/150 = 1.00  | 150/150 = 1.00  |
  | marx-engels.jsonl     | answerable, passed |  77/77  = 1.00  |  77/77  = 1.00  |
  | unanswerable-v2.jsonl | near-domain, stopped | 17/38 = 0.45  |  29/38 = 0.76 [0.61, 0.87] |
  | unanswerable-v2.jsonl | off-topic, stopped |  18/19 = 0.95   |  18/19 = 0.95   |
  | unanswerable.jsonl    | off-topic, stopped |  15/25 = 0.60   |  20/25 = 0.80   |

The one answerable question stopped names "the Habsburg lands" (the text
never uses the name; its gold was not among the passages either). A rule on
the k passages instead of the library (a name none of them mentions) was
tried first: it stopped 33 of 38 near-domain questions, but also 11 of the
117 answerable ones and 9 of the 77 Marx-Engels ones ("Britain",
"February", "the Manifesto", "the Preface": names the library uses, beside
the question's point).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "lib"))

from readingroom.evaluate.metrics import wilson_interval  # noqa: E402
from readingroom.evaluate.questions import load_questions  # noqa: E402

BENCHMARKS = ROOT / "data/benchmarks"
# (file, answerable, held out from the gate's threshold)
SETS = [("answers.jsonl", True, True), ("anarchist-faq.jsonl", True, True), ("marx-engels.jsonl", True, False),
        ("unanswerable-v2.jsonl", False, True), ("unanswerable.jsonl", False, False)]


def evenly(items: list, n: int) -> list:
    """n items spread evenly along the list (all of them when n >= len)."""
    if n >= len(items):
        return list(items)
    return [items[i * len(items) // n] for i in range(n)]


def rate(part: int, whole: int) -> str:
    if not whole:
        return "-"
    low, high = wilson_interval(part, whole)
    return f"{part}/{whole} = {part / whole:.2f} [{low:.2f}, {high:.2f}]"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", default=None, help="library file [default: the default library]")
    parser.add_argument("-k", type=int, default=5)
    parser.add_argument("--faq", type=int, default=150, help="FAQ questions taken, evenly spaced (of 592)")
    parser.add_argument("--rows", default=None, help="write each question's gate here as JSON Lines")
    args = parser.parse_args()

    from readingroom import open_library
    from readingroom.evaluate.questions import GoldFinder
    from readingroom.search.relevance import GATE_THRESHOLD, passages_for, retrieval_evidence, unknown_names
    from readingroom.search.searcher import searcher_for

    lib = open_library(args.db, read_only=True)
    finder = GoldFinder(lib)
    searcher = searcher_for(lib)
    print(f"library {lib.path}: {lib.stats()['passages']} passages; k={args.k}; threshold {GATE_THRESHOLD}; "
          f"load {' '.join(f'{x:.1f}' for x in os.getloadavg())}", flush=True)
    rows = []
    out = open(args.rows, "w", encoding="utf-8") if args.rows else None
    summary = []
    for name, answerable, held_out in SETS:
        questions = load_questions(BENCHMARKS / name, require_gold=answerable)
        if name == "anarchist-faq.jsonl":
            questions = evenly(questions, args.faq)
        kinds: dict[str, list[dict]] = {}
        for q in questions:
            gold = finder.passages(q) if answerable else set()
            if answerable and not gold:
                continue  # its text is not in this library
            hits = passages_for(searcher, q.q, args.k, None)
            language = searcher.query_language(q.q)
            evidence = retrieval_evidence(searcher, q.q, hits, language)
            unknown = unknown_names(searcher, q.q, language, hits)
            strong = bool(hits) and evidence["strength"] >= GATE_THRESHOLD
            row = {"set": name, "kind": q.extra.get("kind") or ("answerable" if answerable else "off-topic"),
                   "q": q.q, "strength": evidence["strength"], "unknown_names": unknown,
                   "passed_before": strong, "passed_after": strong and not unknown,
                   "gold_given": bool(gold & {h.passage_id for h in hits}) if answerable else None}
            kinds.setdefault(row["kind"], []).append(row)
            rows.append(row)
            if out:
                out.write(json.dumps(row, ensure_ascii=False) + "\n")
        for kind, mine in kinds.items():
            summary.append((name, kind, answerable, held_out, mine))
    print("\n| set | questions | held out | gate before | gate with names |")
    print("|---|---|---|---|---|")
    for name, kind, answerable, held_out, mine in summary:
        what = "passed" if answerable else "stopped"
        count = (lambda key: sum(r[key] for r in mine)) if answerable else (lambda key: sum(not r[key] for r in mine))
        print(f"| {name} | {kind} ({len(mine)}, {what}) | {'yes' if held_out else 'no'} "
              f"| {rate(count('passed_before'), len(mine))} | {rate(count('passed_after'), len(mine))} |")
    print("\nstopped by the names alone:")
    for r in rows:
        if r["passed_before"] and not r["passed_after"]:
            gold = "" if r["gold_given"] is None else (" (gold given)" if r["gold_given"] else " (gold not given)")
            print(f"  {r['kind']:11} {', '.join(r['unknown_names'])}{gold}: {r['q']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
