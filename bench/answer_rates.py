"""Answer rates on a stratified sample of the v2 benchmarks, with Wilson 95%
intervals: answered, gold cited, abstention (overall and near the domain) and
citations pointing to a given passage (issue 15's figures, for a sample that
fits a session on the shared 2-core machine).

    python bench/answer_rates.py [--db FILE] [--model NAME] [--answerable 30] [--unanswerable 20]
                                 [--near-domain 14] [-k 5] [--anchored | --words-only] [--out rows.jsonl]
                                 [--context whole excerpt]
    python bench/answer_rates.py --report rows.jsonl [rows2.jsonl ...]

The sample (deterministic, no randomness): of data/benchmarks/answers.jsonl,
--answerable questions split evenly between the corpora whose gold the
library holds (the FAQ in the default library; the Marx-Engels texts only in
a library that holds them), each corpus's questions taken evenly spaced
along the file (which is ordered by text and section, so every text or
section part is drawn); of data/benchmarks/unanswerable-v2.jsonl,
--near-domain near-domain questions and the rest off-topic, evenly spaced.
The questions are asked in turn (FAQ, Marx-Engels, near-domain, off-topic,
FAQ, ...) so that a run stopped early still covers each stratum.

Each question is answered by the full pipeline (answer.pipeline.answer,
greedy, k passages) and its row (evaluate.answers.answer_detail: what was
cited, what was kept, the gold passages) is appended to --out as soon as it
is done, with the machine's load average. The report counts (answer_metrics'
definitions):
- answered: answerable questions not abstained on;
- gold cited: answerable questions whose checked answer cites a passage
  holding the gold span (next to gold given: such a passage was among the k);
- abstention: unanswerable questions answered "the sources do not answer"
  (overall, near-domain, off-topic; by the gate alone);
- citations valid: answers (not abstentions) whose every [n] points to a
  passage the model was given (the default check's "quote verified": it has
  no quotes, only the passage a sentence cites), and the same over markers.
Seconds are printed with the load; on the shared machine they are an upper
bound, not the product's speed.

With `--context whole excerpt` every question is answered twice, once from
whole passages and once from their excerpts (answer.excerpt), one right
after the other and in alternating order (whole first on odd questions), so
the machine's load and llama.cpp's prompt cache favour neither arm. Each row
records its arm, prompt tokens (and those the cache skipped), seconds to the
first word of the model's text, and total seconds; the report gives each
arm's tables and the ratios excerpt / whole.

Measured 2026-12-02 02:48-03:30 UTC, `--answerable 14 --unanswerable 6
--near-domain 4 --context whole excerpt` (default library: State of the
Union + An Anarchist FAQ, 27,357 passages, MiniLM; Qwen2.5-Coder-1.5B,
default check, k=5; excerpts of at most 500 characters a passage; rows in
bench/results/answer-context-qwen15.jsonl, report beside it), load average
5.0-10.1 on the 2 shared cores (the lead's benchmark running), so seconds
are upper bounds; medians over the 16 questions the model wrote for:
  prompt tokens             1460 whole, 1047 excerpt  (0.72)
  prompt tokens read        1161 whole,  729 excerpt  (0.63; the rest cached)
  answer tokens written      115 whole,   48 excerpt  (0.41)
  seconds to first word     48.0 whole, 34.1 excerpt  (0.71)
  seconds in all            82.6 whole, 46.4 excerpt  (0.56)
  answered (of 14)            12 whole,   12 excerpt  (1 question each way)
  gold cited (of 14)           4 whole,    5 excerpt  (1 better, 0 worse)
  abstained (of 6)             4 whole,    4 excerpt  (the same questions)
  claim sentences kept     38/54 whole, 24/32 excerpt
Quality was judged on the paired questions: the arms differ on answered in
one question each way and on gold cited in one (excerpt better), within
the noise of 14 questions (a sign test on 1-vs-1 or 1-vs-0 discordant pairs
is nowhere near significance), so excerpts became the default (answer.
prompt.CONTEXT). Excerpt answers are shorter: 2.0 claim sentences an
answer against 3.4, 1.7 kept against 2.7.

Measured 2026-12-01 23:29-00:48 UTC (benchmark library: the default library,
State of the Union + An Anarchist FAQ, plus the seven Marx-Engels texts,
29,994 passages, MiniLM; Qwen2.5-Coder-1.5B, default check, k=5; two
processes, one from the start of the 50-question sample and one from its
26th, stopped at the deadline: 40 of 50 asked; rows in
bench/results/answer-rates-qwen15-default*.jsonl):
  answered           18/23 = 0.78 [0.58, 0.90] (FAQ 9/11, Marx-Engels 9/12)
  gold cited          9/23 = 0.39 [0.22, 0.59] (FAQ 5/11, Marx-Engels 4/12)
  gold given         12/23 = 0.52 [0.33, 0.71]
  abstention         13/17 = 0.76 [0.53, 0.90]; near-domain 7/11 = 0.64
                     [0.35, 0.85]; off-topic 6/6 (all by the gate)
  citations valid    22/22 answers, 28/28 markers [0.88, 1.00]
  claim precision    46/58 hand-labelled kept sentences = 0.79 [0.67, 0.88]
                     (data/benchmarks/answer-claim-labels.jsonl)
Load average 5-17 on the 2 shared cores (other helpers' tests); median 191 s
per answer the model wrote, an upper bound.

Measured 2026-12-02 11:00-11:25 UTC, after the gate learnt names (search.
relevance.unknown_names) and with the meaning check on by default (its
judge asked about each claim without its opening "According to X,"),
excerpts, the same library, `--answerable 30 --unanswerable 0` and
`--answerable 0 --unanswerable 57 --near-domain 38`, each also with
--words-only (the same greedy text, checked without the judge); load
1.3-2.7, nothing else running; rows in
bench/results/answer-rates-{answerable,unanswerable}-{judged,words-only}.jsonl:
                     words only            meaning check
  answered           23/30 = 0.77          12/30 = 0.40 [0.25, 0.58]
  gold cited         11/30 = 0.37          8/30 = 0.27 [0.14, 0.44]
  gold given         17/30 = 0.57          17/30 (the same passages)
  abstention, near-domain 34/38 = 0.89    35/38 = 0.92 [0.79, 0.97] (29 by the gate)
  abstention, off-topic   18/19           19/19 (18 by the gate)
  citations valid    all                   all
The judge turned 11 answers into refusals, 3 of which cited the gold
passage and were right; median 15 s per answer the model wrote (14 s words only).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "lib"))

from readingroom.evaluate.metrics import answer_metrics, wilson_interval  # noqa: E402
from readingroom.answer.prompt import CONTEXT, CONTEXTS  # noqa: E402
from readingroom.evaluate.questions import load_questions  # noqa: E402

ANSWERS = ROOT / "data/benchmarks/answers.jsonl"
UNANSWERABLE = ROOT / "data/benchmarks/unanswerable-v2.jsonl"
CORPORA = ("anarchist-faq", "marx-engels")


def load() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def evenly(items: list, n: int) -> list:
    """n items spread evenly along the list (all of them when n >= len)."""
    if n >= len(items):
        return list(items)
    return [items[i * len(items) // n] for i in range(n)]


def in_turn(*groups: list) -> list:
    out = []
    for i in range(max((len(g) for g in groups), default=0)):
        out += [g[i] for g in groups if i < len(g)]
    return out


def sample(finder, answerable: int, unanswerable: int, near_domain: int) -> list[tuple]:
    """[(question, answerable, stratum)] in the order they are asked."""
    questions = load_questions(ANSWERS)
    held = [c for c in CORPORA if any(finder.passages(q) for q in questions if q.extra.get("corpus") == c)]
    groups = []
    for number, corpus in enumerate(held):
        n = answerable // len(held) + (1 if number < answerable % len(held) else 0)
        of_corpus = [q for q in questions if q.extra.get("corpus") == corpus]
        groups.append([(q, True, corpus) for q in evenly(of_corpus, n)])
    others = load_questions(UNANSWERABLE, require_gold=False)
    near = [q for q in others if q.extra.get("kind") == "near-domain"]
    off = [q for q in others if q.extra.get("kind") != "near-domain"]
    groups.append([(q, False, "near-domain") for q in evenly(near, min(near_domain, unanswerable))])
    groups.append([(q, False, "off-topic") for q in evenly(off, max(0, unanswerable - near_domain))])
    return in_turn(*groups)


def rate(part: int, whole: int) -> str:
    if not whole:
        return "-"
    low, high = wilson_interval(part, whole)
    return f"{part}/{whole} = {part / whole:.2f} [{low:.2f}, {high:.2f}]"


def report(rows: list[dict]) -> None:
    arms = sorted({r.get("context", "whole") for r in rows})
    if len(arms) > 1:
        for arm in arms:
            print(f"\n===== context: {arm} =====")
            report_arm([r for r in rows if r.get("context", "whole") == arm])
        compare_arms(rows, arms)
        return
    report_arm(rows)


def compare_arms(rows: list[dict], arms: list[str]) -> None:
    """Speed and quality of each arm on the questions both answered, and
    the ratios of the second to the first ("whole", the baseline)."""
    by_question = {}
    for r in rows:
        by_question.setdefault(r["q"], {})[r.get("context", "whole")] = r
    pairs = [v for v in by_question.values() if all(a in v for a in arms)]
    base, other = ("whole", [a for a in arms if a != "whole"][0]) if "whole" in arms else arms[:2]
    print(f"\n===== {other} against {base}, on the {len(pairs)} questions both arms answered =====")

    def median(arm, key):
        values = [key(p[arm]) for p in pairs if p[arm]["asked"] and key(p[arm]) is not None]
        return statistics.median(values) if values else None

    figures = {
        "prompt tokens": lambda r: (r.get("tokens") or {}).get("prompt"),
        "prompt tokens read (not cached)": lambda r: (r.get("tokens") or {}).get("read"),
        "answer tokens written": lambda r: (r.get("tokens") or {}).get("completion"),
        "seconds to first word": lambda r: r.get("first_word"),
        "seconds in all": lambda r: r["seconds"],
    }
    print(f"| median (questions the model wrote for) | {base} | {other} | {other} / {base} |")
    print("|---|---|---|---|")
    for name, key in figures.items():
        a, b = median(base, key), median(other, key)
        ratio = f"{b / a:.2f}" if a and b is not None else "-"
        print(f"| {name} | {a if a is None else round(a, 1)} | {b if b is None else round(b, 1)} | {ratio} |")
    answerable = [p for p in pairs if p[base]["answerable"]]
    unanswerable = [p for p in pairs if not p[base]["answerable"]]
    counts = {
        "answered (answerable)": (answerable, lambda r: not r["abstained"]),
        "gold cited (answerable)": (answerable, lambda r: r["gold_cited"]),
        "abstained (unanswerable)": (unanswerable, lambda r: r["abstained"]),
    }
    print(f"\n| count | {base} | {other} | questions where they differ ({other} better / worse) |")
    print("|---|---|---|---|")
    for name, (group, test) in counts.items():
        better = sum(test(p[other]) and not test(p[base]) for p in group)
        worse = sum(test(p[base]) and not test(p[other]) for p in group)
        print(f"| {name} | {rate(sum(test(p[base]) for p in group), len(group))} "
              f"| {rate(sum(test(p[other]) for p in group), len(group))} | {better} / {worse} |")
    for arm in (base, other):
        print(f"claim sentences kept by the check ({arm}): {sum(p[arm]['kept_claims'] for p in pairs)} of "
              f"{sum(p[arm]['claims'] for p in pairs)}")


def report_arm(rows: list[dict]) -> None:
    answerable = [r for r in rows if r["answerable"]]
    unanswerable = [r for r in rows if not r["answerable"]]
    answered = [r for r in rows if not r["abstained"]]
    print(f"{len(rows)} questions: {len(answerable)} answerable, {len(unanswerable)} unanswerable "
          f"(Wilson 95% intervals in brackets)\n")
    print(f"| stratum | n | answered | gold cited | gold given | citations valid (answers) |")
    print("|---|---|---|---|---|---|")
    for name in [c for c in CORPORA if any(r.get("stratum") == c for r in rows)] + ["all answerable"]:
        mine = [r for r in answerable if name == "all answerable" or r.get("stratum") == name]
        said = [r for r in mine if not r["abstained"]]
        print(f"| {name} | {len(mine)} | {rate(sum(not r['abstained'] for r in mine), len(mine))} "
              f"| {rate(sum(r['gold_cited'] for r in mine), len(mine))} "
              f"| {rate(sum(r['gold_given'] for r in mine), len(mine))} "
              f"| {rate(sum(r['valid_markers'] == r['markers'] for r in said), len(said))} |")
    print(f"\n| stratum | n | abstained | by the gate alone |")
    print("|---|---|---|---|")
    for name in ("near-domain", "off-topic", "all unanswerable"):
        mine = [r for r in unanswerable if name == "all unanswerable" or r.get("stratum") == name]
        print(f"| {name} | {len(mine)} | {rate(sum(r['abstained'] for r in mine), len(mine))} "
              f"| {rate(sum(not r['asked'] for r in mine), len(mine))} |")
    markers = sum(r["markers"] for r in rows)
    print(f"\ncitation markers pointing to a given passage: {rate(sum(r['valid_markers'] for r in rows), markers)}")
    print(f"answers (not abstentions) whose every [n] is valid: "
          f"{rate(sum(r['valid_markers'] == r['markers'] for r in answered), len(answered))}")
    kept = sum(r["kept_claims"] for r in rows)
    print(f"claim sentences kept by the check: {kept} of {sum(r['claims'] for r in rows)}")
    metrics = answer_metrics(rows)
    print("answer_metrics: " + json.dumps({k: metrics[k] for k in (
        "answered_rate", "gold_citation_rate", "gold_in_passages", "abstention_accuracy",
        "near_domain_abstention", "citation_validity", "answers_all_citations_valid")}))
    asked = [r["seconds"] for r in rows if r["asked"]]
    if asked:
        loads = [float(r["load"].split()[0]) for r in rows if r.get("load")]
        print(f"seconds per answer the model wrote: median {statistics.median(asked):.0f} (n={len(asked)}), "
              f"under 1-minute load {min(loads):.1f}-{max(loads):.1f} on the shared 2 cores: "
              "an upper bound, not the product's speed")


def ask(searcher, generator, finder, question, answerable: bool, stratum: str, number: int, context: str,
        args) -> dict:
    """One question through the full pipeline, as a row (answer_detail's
    fields, and the arm, the first word's time, the prompt tokens read)."""
    from readingroom.answer.pipeline import answer
    from readingroom.evaluate.answers import answer_detail

    started = time.perf_counter()
    first = []

    def on_piece(piece: str) -> None:
        if not first and piece.strip():
            first.append(round(time.perf_counter() - started, 2))

    result = answer(searcher, question.q, generator=generator, k=args.k, anchored=args.anchored,
                    meaning_check=False if args.words_only else None,
                    stream=on_piece, context=context)
    row = {"n": number, "stratum": stratum, "context": context,
           **answer_detail(result, question, answerable, finder),
           "first_word": first[0] if first else None, "model": generator.name, "anchored": args.anchored,
           "wall": round(time.perf_counter() - started, 1), "load": load()}
    usage = getattr(generator, "last_usage", None)
    if row["asked"] and row.get("tokens") and usage is not None and usage.cached_tokens is not None:
        row["tokens"]["read"] = usage.prompt_tokens - usage.cached_tokens
    return row


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", default=None, help="library file [default: the default library]")
    parser.add_argument("--model", default=None, help="generator [default: the catalogue's default]")
    parser.add_argument("--answerable", type=int, default=30)
    parser.add_argument("--unanswerable", type=int, default=20)
    parser.add_argument("--near-domain", type=int, default=14)
    parser.add_argument("-k", type=int, default=5)
    parser.add_argument("--anchored", action="store_true", help="quote-anchored claims, each judged")
    parser.add_argument("--words-only", action="store_true",
                        help="the default check without its meaning check (the judge asks nothing)")
    parser.add_argument("--context", nargs="+", choices=CONTEXTS, default=[CONTEXT],
                        help="what of each passage the model reads; two arms: each question answered in both, "
                             f"interleaved [default: {CONTEXT}]")
    parser.add_argument("--skip", type=int, default=0, help="skip the first N of the sample (resume a run)")
    parser.add_argument("--out", default=None, help="append each question's row here as JSON Lines, as it comes")
    parser.add_argument("--report", nargs="+", default=None, metavar="ROWS",
                        help="only print the tables of runs' --out files (a run stopped early included)")
    args = parser.parse_args()
    if args.report:
        report([json.loads(line) for path in args.report
                for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()])
        return 0

    from readingroom import open_library
    from readingroom.evaluate.questions import GoldFinder
    from readingroom.models.generate import load_generator
    from readingroom.search.searcher import searcher_for

    lib = open_library(args.db, read_only=True)
    finder = GoldFinder(lib)
    questions = sample(finder, args.answerable, args.unanswerable, args.near_domain)[args.skip:]
    searcher = searcher_for(lib)
    generator = load_generator(args.model) if args.model else load_generator()
    searcher.search("warm up the embedder and the BM25 index", 3)
    print(f"library {lib.path}: {lib.stats()['passages']} passages; model {generator.name}; k={args.k}; "
          f"{'anchored' if args.anchored else 'words only' if args.words_only else 'default check'}; context {' and '.join(args.context)}; "
          f"{len(questions)} questions; load {load()}",
          flush=True)
    out = open(args.out, "a", encoding="utf-8") if args.out else None
    rows = []
    for number, (question, answerable, stratum) in enumerate(questions, start=args.skip + 1):
        arms = args.context if number % 2 else args.context[::-1]  # alternate which arm goes first
        for context in arms:
            row = ask(searcher, generator, finder, question, answerable, stratum, number, context, args)
            rows.append(row)
            print(f"{number:3d} {context:7} {stratum:13} {'abstained' if row['abstained'] else 'answered':9} "
                  f"gold {'cited' if row['gold_cited'] else 'given' if row['gold_given'] else '-':5} "
                  f"kept {row['kept_claims']}/{row['claims']} prompt {(row['tokens'] or {}).get('prompt', '-')} "
                  f"first {row['first_word'] if row['first_word'] is not None else '-'}s {row['wall']:5.0f}s "
                  f"(load {row['load']}) {question.q[:50]}", flush=True)
            if out:
                out.write(json.dumps(row, ensure_ascii=False) + "\n")
                out.flush()
    report(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
