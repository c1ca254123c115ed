"""Anchored answers: seconds to the first checked claim and to the whole
answer, claims kept and left out, against today's answers (the baseline:
answer() with the same writer, same passages) in one run.

    nice -n 10 python bench/anchored.py --db LIBRARY [--questions 10] [--skip 0] [-k 5]
        [--writer qwen2.5-coder-1.5b-instruct-q4_k_m] [--judge qwen2.5-coder-0.5b-instruct-q4_k_m]
        [--no-baseline] [--out claims.jsonl]

The questions are the first --questions of data/benchmarks/answers.jsonl
whose gold words stand in the library. Both models are loaded (and warmed
by one short call) before any timing. Per question it prints the seconds,
the claims kept and left out (with the reasons); --out writes every claim
with its quote and passage, for judging by hand whether the quote supports
the claim. llama.cpp keeps the writer's prompt cache between the two runs
of a question; the anchored run goes first, so any cache favours the
baseline.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "lib"))

from readingroom import open_library  # noqa: E402
from readingroom.answer.pipeline import answer, load_judge  # noqa: E402
from readingroom.models.generate import load_generator  # noqa: E402
from readingroom.search.searcher import searcher_for  # noqa: E402


def squeeze(text: str) -> str:
    return " ".join(text.split()).lower()


def reason_kind(reason: str) -> str:
    """"repeats claim 3" and "repeats claim 1" are one kind of leaving out."""
    return "repeats an earlier claim" if reason.startswith("repeats claim") else reason


def questions_in(lib, limit: int) -> list[dict]:
    texts = [squeeze(t) for (t,) in lib.con.execute("SELECT text FROM passages").fetchall()]
    chosen = []
    with open(ROOT / "data/benchmarks/answers.jsonl", encoding="utf-8") as f:
        for line in f:
            row = json.loads(line)
            gold = squeeze(row["gold"])[:80]
            if any(gold in t for t in texts):
                chosen.append(row)
            if len(chosen) == limit:
                break
    return chosen


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", required=True)
    parser.add_argument("--questions", type=int, default=10)
    parser.add_argument("--skip", type=int, default=0, help="leave out the first SKIP of those questions")
    parser.add_argument("-k", type=int, default=5)
    parser.add_argument("--writer", default="qwen2.5-coder-1.5b-instruct-q4_k_m")
    parser.add_argument("--judge", default="qwen2.5-coder-0.5b-instruct-q4_k_m")
    parser.add_argument("--no-baseline", action="store_true")
    parser.add_argument("--out", default=None, help="JSONL of every claim, for judging by hand")
    args = parser.parse_args()

    with open_library(args.db, read_only=True) as lib:
        searcher = searcher_for(lib)
        questions = questions_in(lib, args.skip + args.questions)[args.skip:]
        if not questions:
            sys.exit(f"no question of data/benchmarks/answers.jsonl has its gold words in {args.db}")
        writer, judge = load_generator(args.writer), load_judge(args.judge)
        for model in (writer, judge.generator):  # warm: the first call pays for loading pages
            model.generate([{"role": "user", "content": "Say yes."}], max_tokens=2)
        rows, out = [], open(args.out, "w", encoding="utf-8") if args.out else None
        for i, row in enumerate(questions, start=1):
            started, checked_at = time.perf_counter(), []
            ours = answer(searcher, row["q"], generator=writer, k=args.k, anchored=True, judge=judge,
                          on_claim=lambda claim: checked_at.append(time.perf_counter() - started))
            total = time.perf_counter() - started
            base = None
            if not args.no_baseline:
                started = time.perf_counter()
                today = answer(searcher, row["q"], generator=writer, k=args.k)
                base = time.perf_counter() - started
            kept, dropped = ours.kept_claims, ours.dropped_claims
            gold = squeeze(row["gold"])[:80]
            gold_cited = any(gold in squeeze(ours.passages[n - 1].text) for n in {c.passage for c in kept})
            rows.append({"first": ours.first_claim_seconds, "checked": checked_at[0] if checked_at else None, "total": total, "base": base, "kept": len(kept),
                         "dropped": len(dropped), "gate": ours.gate.get("passed"), "gold_cited": gold_cited,
                         "reasons": Counter(reason_kind(c.reason) for c in dropped),
                         "base_abstained": today.abstained if base is not None else None})
            first = f"{ours.first_claim_seconds:.1f}" if ours.first_claim_seconds is not None else "-"
            checked = f"{checked_at[0]:.1f}" if checked_at else "-"
            print(f"[{i}] first claim checked {checked} s, first kept {first} s, whole {total:.1f} s"
                  + (f", today's answer {base:.1f} s" if base is not None else "")
                  + f"; kept {len(kept)}, left out {len(dropped)} {dict(rows[-1]['reasons'])}"
                  + f"; gate {'passed' if ours.gate.get('passed') else 'stopped'}; gold cited {gold_cited}",
                  flush=True)
            if out:
                for c in ours.claims:
                    out.write(json.dumps({"question": row["q"], "gold": row["gold"], **c.to_dict(),
                                          "passage_text": ours.passages[c.passage - 1].text
                                          if 1 <= c.passage <= len(ours.passages) else ""},
                                         ensure_ascii=False) + "\n")
                out.flush()
        if out:
            out.close()

    answered = [r for r in rows if r["kept"]]
    firsts = [r["first"] for r in rows if r["first"] is not None]
    print(f"\n{len(rows)} questions, writer {args.writer}, judge {args.judge}, k={args.k}")
    print(f"answered (a claim kept): {len(answered)}; gate stopped: {sum(not r['gate'] for r in rows)}; "
          f"gold passage among the kept claims' passages: {sum(r['gold_cited'] for r in rows)}")
    print(f"claims kept {sum(r['kept'] for r in rows)}, left out {sum(r['dropped'] for r in rows)}: "
          f"{dict(sum((r['reasons'] for r in rows), Counter()))}")
    checked = [r["checked"] for r in rows if r["checked"] is not None]
    if checked:
        print(f"first claim checked (kept or not): median {statistics.median(checked):.1f} s "
              f"(over {len(checked)} answers)")
    if firsts:
        print(f"first claim kept: median {statistics.median(firsts):.1f} s (over {len(firsts)} answers)")
    print(f"whole anchored answer: median {statistics.median(r['total'] for r in rows):.1f} s")
    if not args.no_baseline:
        base = statistics.median(r["base"] for r in rows)
        print(f"baseline, today's answer (same writer): median {base:.1f} s; "
              f"anchored / baseline = {statistics.median(r['total'] for r in rows) / base:.2f}; "
              f"baseline abstained {sum(r['base_abstained'] for r in rows)} of {len(rows)}")


if __name__ == "__main__":
    main()
