"""Ways of searching that were tried to find more gold passages, against the
pipeline's own search, on the question sets where passages were missed. No
answer is written: only the generator's short texts (a translation, a
hypothetical passage), the search and the gate run.

    python bench/search_variants.py en-to-de [--db FILE] [--rows rows.jsonl]
    python bench/search_variants.py hyde     [--db FILE] [--questions 30] [--rows rows.jsonl]

en-to-de: the English questions of data/benchmarks/crosslingual-en-to-x.jsonl
over a library holding fortunes-de's German quotations (issue 16's weak
direction), each searched as the pipeline does (translated into German by
the generator, answer.pipeline.search_in_languages) and
  - translated with a prompt that asks for names as German writes them
    ("Friedrich der Große", not "Frederick"), in place of "keep names exactly";
  - the translation's results fused (reciprocal rank, c=60) with those of the
    English question as asked (MiniLM reads some English-German pairs);
  - the two translations' results fused;
against the German twin of each question (`q_native`), the baseline.
hyde: the answerable questions of bench/answer_rates.py's sample (the rows of
bench/results/answer-rates-answerable-judged.jsonl, looked up in
data/benchmarks/answers.jsonl) over the benchmark library (default library +
the Marx-Engels texts), each searched as asked, by a hypothetical passage the
generator writes for it (HyDE, Gao et al. 2022, arXiv:2212.10496), both fused,
and the two texts joined.

Reported: gold among the first k=5 (and, for en-to-de, with the gate passed).

Measured 2026-12-02 15:27-15:45 UTC, Qwen2.5-Coder-1.5B, MiniLM, nothing else
running but a short test run during en-to-de (load 0.1 at the start, 1.6-2.1
after); the fusions through search.fusion.rrf, as the searcher fuses; rows in
bench/results/search-variants-{en-to-de,hyde}-rows.jsonl:

  en-to-de, 40 questions (fortunes-de alone, 5,175 quotations)   gold@5  gold, gate passed
    German twin (baseline)                                        26      26
    translated, today's prompt                                    17      16
    translated, names as German writes them                       16      14
    today's translation + the English as asked, fused             19      17
    the two translations, fused                                   17      16
    the English question alone (gate never passes)                15       0

  hyde, 30 questions (29,995 passages)                            gold@5
    the question (today)                                          17
    the hypothetical passage                                      12
    both, fused                                                   17
    question and passage as one text                              15
  (median 4.7 s a hypothetical passage at load 1.8)

Two earlier runs (13:37-14:25, a fusion of the script's own, one beside a
set-up's embedding) gave the same figures within one question.

None was adopted: the differences are one or two questions of 40, inside
the noise, and the fusions cost a second search (and HyDE a generation of
about 5 s) on every question. The translation prompt did not even change
"Frederick der Große"; the English-to-German gap is the 1.5B coder
model's German ("die Ruling Ideen eines Gesellschafts", "Vergrößung des
Rulingpartys"), which no search around it repairs.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "lib"))

from readingroom import open_library  # noqa: E402
from readingroom.evaluate.questions import GoldFinder, load_questions  # noqa: E402
from readingroom.models import translate  # noqa: E402
from readingroom.models.catalogue import DEFAULT_GENERATOR  # noqa: E402
from readingroom.models.generate import load_generator  # noqa: E402
from readingroom.search.fusion import rrf  # noqa: E402
from readingroom.search.relevance import GATE_THRESHOLD, passages_for, retrieval_evidence  # noqa: E402
from readingroom.search.searcher import searcher_for  # noqa: E402

K = 5
# The translator's own prompt with one sentence changed: names as the target language writes them.
KEEP_NAMES = "Keep names, numbers and markers such as [1] exactly as they are."
assert KEEP_NAMES in translate.SYSTEM, "models.translate.SYSTEM changed: update the variant"
NAMES_SYSTEM = translate.SYSTEM.replace(KEEP_NAMES, "Write the names of people, places and works as {target} "
                                                    "writes them; keep numbers and markers such as [1] exactly "
                                                    "as they are.")
HYDE_SYSTEM = ("Write two sentences, as a passage of a book on politics, history or economics would, that answer "
               "the question. Write only the passage.")


def fused(lists: list[list], k: int = K) -> list:
    """Several result lists fused as the searcher fuses BM25 and vectors
    (search.fusion.rrf, equal weights), the best k."""
    hit_of = {h.passage_id: h for hits in lists for h in hits}
    number = {passage_id: n for n, passage_id in enumerate(hit_of)}  # rrf ranks rows: number the passages
    rows, _, _ = rrf({str(i): np.array([number[h.passage_id] for h in hits], dtype=np.int64)
                      for i, hits in enumerate(lists)}, {})
    ids = list(hit_of)
    return [hit_of[ids[row]] for row in rows[:k]]


def judged(searcher, hits, text: str, language: str, gold: set[str]) -> dict:
    strength = retrieval_evidence(searcher, text, hits, language)["strength"]
    found = bool({h.passage_id for h in hits} & gold)
    return {"gold": found, "passed": found and strength >= GATE_THRESHOLD, "strength": round(strength, 3)}


def translated(question: str, generator, system: str | None) -> str:
    if system is None:
        return translate.translate(question, "de", generator, source="en").text
    before, translate.SYSTEM = translate.SYSTEM, system
    try:
        return translate.translate(question, "de", generator, source="en").text
    finally:
        translate.SYSTEM = before


def en_to_de(lib, searcher, generator, out) -> list[dict]:
    finder, rows = GoldFinder(lib), []
    for q in load_questions(ROOT / "data/benchmarks/crosslingual-en-to-x.jsonl"):
        gold = finder.passages(q)
        if not gold:
            continue
        today, names = translated(q.q, generator, None), translated(q.q, generator, NAMES_SYSTEM)
        first = {text: searcher.search(text, 2 * K) for text in {today, names, q.q}}
        arms = {
            "twin": (passages_for(searcher, q.extra["q_native"], K, None), q.extra["q_native"], "de"),
            "translated": (passages_for(searcher, today, K, None), today, "de"),
            "names": (passages_for(searcher, names, K, None), names, "de"),
            "with-asked": (fused([first[today], first[q.q]]), today, "de"),
            "two-translations": (fused([first[today], first[names]]), today, "de"),
            "asked": (passages_for(searcher, q.q, K, None), q.q, "en"),
        }
        row = {"q": q.q, "translated": today, "names": names,
               **{arm: judged(searcher, hits, text, language, gold) for arm, (hits, text, language) in arms.items()}}
        rows.append(row)
        print(" ".join(f"{arm}={row[arm]['gold']:d}" for arm in arms), "|", today[:70], flush=True)
        if out:
            out.write(json.dumps(row, ensure_ascii=False) + "\n")
            out.flush()
    return rows


def hyde(lib, searcher, generator, n: int, out) -> list[dict]:
    finder, rows = GoldFinder(lib), []
    asked = [json.loads(line)["q"] for line in
             (ROOT / "bench/results/answer-rates-answerable-judged.jsonl").read_text(encoding="utf-8").splitlines()]
    by_text = {q.q: q for q in load_questions(ROOT / "data/benchmarks/answers.jsonl")}
    for text in asked[:n]:
        q = by_text.get(text)
        gold = finder.passages(q) if q else set()
        if not gold:
            continue
        started = time.perf_counter()
        passage = generator.generate([{"role": "system", "content": HYDE_SYSTEM}, {"role": "user", "content": q.q}],
                                     max_tokens=80, temperature=0.0)
        seconds = time.perf_counter() - started
        by_question, by_passage = searcher.search(q.q, 4 * K), searcher.search(passage, 4 * K)
        arms = {"question": by_question[:K], "passage": by_passage[:K], "fused": fused([by_question, by_passage]),
                "joined": searcher.search(f"{q.q} {passage}", K)}
        row = {"q": q.q, "passage": passage, "seconds": round(seconds, 1),
               **{arm: bool({h.passage_id for h in hits} & gold) for arm, hits in arms.items()}}
        rows.append(row)
        print(" ".join(f"{arm}={row[arm]:d}" for arm in arms), f"{seconds:.1f}s", q.q[:60], flush=True)
        if out:
            out.write(json.dumps(row, ensure_ascii=False) + "\n")
            out.flush()
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("variants", choices=["en-to-de", "hyde"])
    parser.add_argument("--db", default=None, help="library file [default: the default library]")
    parser.add_argument("--model", default=DEFAULT_GENERATOR)
    parser.add_argument("--questions", type=int, default=30, help="hyde: how many of the sample")
    parser.add_argument("--rows", default=None, help="write each question's row here as JSON Lines")
    args = parser.parse_args()
    print("load average", " ".join(f"{x:.1f}" for x in os.getloadavg()))
    lib = open_library(args.db, read_only=True)
    searcher = searcher_for(lib)
    generator = load_generator(args.model)
    out = open(args.rows, "w", encoding="utf-8") if args.rows else None
    if args.variants == "en-to-de":
        rows = en_to_de(lib, searcher, generator, out)
        arms = ["twin", "translated", "names", "with-asked", "two-translations", "asked"]
        if not rows:
            print(f"skipped: no question of crosslingual-en-to-x.jsonl has its gold span in {lib.path} "
                  "(readingroom corpus add fortunes-de --db FILE)")
            return 0
        for arm in arms:
            print(f"{arm:18} gold@{K} {sum(r[arm]['gold'] for r in rows):3d}   gate passed too "
                  f"{sum(r[arm]['passed'] for r in rows):3d}   of {len(rows)}")
    else:
        rows = hyde(lib, searcher, generator, args.questions, out)
        if not rows:
            print(f"skipped: the sample's gold spans are not in {lib.path}")
            return 0
        for arm in ["question", "passage", "fused", "joined"]:
            print(f"{arm:10} gold@{K} {sum(r[arm] for r in rows):3d} of {len(rows)}")
        print(f"median s per hypothetical passage {sorted(r['seconds'] for r in rows)[len(rows) // 2]:.1f}")
    print("load average", " ".join(f"{x:.1f}" for x in os.getloadavg()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
