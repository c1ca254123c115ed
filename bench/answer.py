"""Answer speed: time to first token and total time per checked answer, and
the share of the time spent outside the model, against the model alone.

    python bench/answer.py [--db FILE] [--model NAME] [--backend llama.cpp]
                           [--questions 4] [-k 5]

The baseline is the model alone: `Generator.stream()` on the very prompt our
answer gave it (same model object, same passages, greedy, same max tokens).
Ours is `answer.answer_stream()`: the language check, hybrid search, the
retrieval gate, building the prompt, the same model call, then the support
check, attribution and the reading list. For each question, ours runs first
(which also yields the prompt), then the baseline on that prompt; llama.cpp
is told to forget its cache before each call, so both read the whole prompt.

Reported per question and as medians:
- first token: seconds from the call to the first piece of model text
  (ours includes the search and the gate before the model starts);
- checked: seconds to the first claim checked and kept while the model
  still writes (answer.check.early), or to the finished answer's check when
  none was complete before the end (issue 15's target: 8 s);
- total: seconds to the checked answer (ours) or the last token (baseline);
- outside the model: (ours total - time inside the model's stream) / ours
  total, measured within our run; the aim is under 10%;
- ours / baseline: total time ratio.

The questions are the first --questions of data/benchmarks/anarchist-faq.jsonl
whose section is in the library, so it runs on the default library (`bash
setup.sh` builds and embeds it). Without vectors, search is BM25 only.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "lib"))

from readingroom import open_library  # noqa: E402
from readingroom.answer.check import Sentence  # noqa: E402
from readingroom.answer.pipeline import Answer, answer_stream  # noqa: E402
from readingroom.evaluate.questions import GoldFinder, load_questions  # noqa: E402
from readingroom.models.generate import load_generator  # noqa: E402
from readingroom.models.catalogue import DEFAULT_GENERATOR  # noqa: E402
from readingroom.search.searcher import searcher_for  # noqa: E402


class TimedGenerator:
    """The generator, with the time spent inside its stream() counted."""

    def __init__(self, generator):
        self.generator = generator
        self.seconds = 0.0
        self.messages = None

    def __getattr__(self, name):
        return getattr(self.generator, name)

    def stream(self, messages, **settings):
        self.messages = messages
        forget_cache(self.generator)
        started = time.perf_counter()
        try:
            for piece in self.generator.stream(messages, **settings):
                self.seconds += time.perf_counter() - started
                yield piece
                started = time.perf_counter()
        finally:
            self.seconds += time.perf_counter() - started


def forget_cache(generator) -> None:
    """llama.cpp keeps the last prompt's KV cache; a new question never
    shares it, so neither run may reuse it."""
    llama = getattr(generator, "llama", None)  # the llama.cpp backend's Llama
    reset = getattr(llama, "reset", None)
    if callable(reset):
        reset()


def ours(searcher, generator, question, k):
    timed = TimedGenerator(generator)
    started = time.perf_counter()
    first = checked = None
    result = None
    for item in answer_stream(searcher, question, generator=timed, k=k):
        if isinstance(item, Answer):
            result = item
        elif isinstance(item, Sentence):  # a claim checked and kept while the model writes
            checked = checked or time.perf_counter() - started
        elif first is None:
            first = time.perf_counter() - started
    total = time.perf_counter() - started
    if checked is None and result is not None and result.supported:
        checked = total  # nothing was complete before the end: the finished answer's check
    return {"first": first, "checked": checked, "total": total, "model": timed.seconds,
            "messages": timed.messages, "result": result}


def baseline(generator, messages, max_tokens):
    forget_cache(generator)
    started = time.perf_counter()
    first = None
    for _ in generator.stream(messages, max_tokens=max_tokens, temperature=0.0):
        if first is None:
            first = time.perf_counter() - started
    return {"first": first, "total": time.perf_counter() - started}


def main() -> None:
    from readingroom.answer.pipeline import MAX_ANSWER_TOKENS

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", default=None, help="library file [default: the default library]")
    parser.add_argument("--model", default=DEFAULT_GENERATOR)
    parser.add_argument("--backend", default="llama.cpp", choices=["llama.cpp", "transformers"])
    parser.add_argument("--questions", type=int, default=4)
    parser.add_argument("-k", type=int, default=5)
    args = parser.parse_args()

    lib = open_library(args.db, read_only=True)
    searcher = searcher_for(lib)
    finder = GoldFinder(lib)
    questions = [q for q in load_questions(ROOT / "data/benchmarks/anarchist-faq.jsonl")
                 if len(q.q.split()) >= 5 and finder.passages(q)][:args.questions]
    if not questions:
        sys.exit(f"no benchmark question has its section in {lib.path}: add the Anarchist FAQ")
    generator = load_generator(args.model, backend=args.backend)
    searcher.search("warm up the embedder and the BM25 index", 3)  # loading is not per answer
    print(f"library {lib.path}: {lib.stats()['passages']} passages, vectors: "
          f"{searcher.index.embedder.name if searcher.index.embedder else 'none (BM25 only)'}")
    print(f"model {generator.name} ({args.backend}), k={args.k}, {len(questions)} questions\n")
    print(f"{'question':48} {'ours 1st':>8} {'base 1st':>8} {'checked':>8} {'ours':>7} {'base':>7} {'outside':>8} "
          f"{'gate':>5}")
    rows = []
    for q in questions:
        o = ours(searcher, generator, q.q, args.k)
        if o["messages"] is None:  # the gate stopped it: no model call to compare
            print(f"{q.q[:48]:48} {'(gate: not asked)':>26} {o['total']:7.2f}")
            continue
        b = baseline(generator, o["messages"], MAX_ANSWER_TOKENS)
        outside = (o["total"] - o["model"]) / o["total"]
        rows.append({"ours_first": o["first"], "base_first": b["first"], "ours": o["total"], "base": b["total"],
                     "outside": outside, "ratio": o["total"] / b["total"], "checked": o["checked"]})
        checked = f"{o['checked']:8.2f}" if o["checked"] is not None else f"{'-':>8}"
        print(f"{q.q[:48]:48} {o['first']:8.2f} {b['first']:8.2f} {checked} {o['total']:7.2f} {b['total']:7.2f} "
              f"{outside:8.1%} {'pass':>5}")
    if not rows:
        return
    med = {key: statistics.median(r[key] for r in rows) for key in rows[0] if key != "checked"}
    checked = [r["checked"] for r in rows if r["checked"] is not None]
    print(f"\nmedians: first token ours {med['ours_first']:.2f} s, model alone {med['base_first']:.2f} s; "
          f"total ours {med['ours']:.2f} s, model alone {med['base']:.2f} s")
    if checked:
        print(f"first checked claim (ours; {len(checked)} of {len(rows)} answers kept one): median "
              f"{statistics.median(checked):.2f} s (target 8 s); whole answer {med['ours']:.2f} s (target 20 s)")
    print(f"ours / baseline (model alone), total time: {med['ratio']:.3f}")
    print(f"share of our time outside the model: {med['outside']:.1%} (aim: under 10%)")


if __name__ == "__main__":
    main()
