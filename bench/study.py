"""Study aids, measured: for each kind of aid on one section of the default
library, the time it takes (and the share of it that is checking, against
drafting alone as the baseline), how many items the model drafted, how many
had their quote found, how many were kept. The machine's load is printed
with the figures: it is shared.

    python bench/study.py [--doc secH2 --section H.2.6] [--passages 6] [--model NAME] [--out DIR]
    python bench/study.py --labels data/benchmarks/study-labels.jsonl

Each aid is also written to DIR as JSON and as Markdown, and as
KIND.to-label.jsonl: one line per item in the form of
data/benchmarks/study-labels.jsonl (the kept items, then the ones the
checker left out, "kept": false), with "label" and "note" empty for a
person to fill in (read the quote and the passage it cites). `--sheet`
writes those files again from the JSON in DIR (same --doc, --section,
--skip and --passages). `--labels FILE` prints the claim precision of a
labelled file by kind, with a Wilson 95% interval
(readingroom.evaluate.study_labels).
"""
from __future__ import annotations

import argparse
import json
import os
import re
import time
from pathlib import Path

from readingroom import open_library
from readingroom.answer.quotes import locate_quote
from readingroom.evaluate.study_labels import format_report, label_report, load_study_labels
from readingroom.study import KINDS, SPECS, Material, Selection, make_aid, select_material


def label_sheet(aid: dict, material: Material) -> list[dict]:
    """The aid's items as lines to hand-label: kept items first, then the
    drafts the checker left out for their quote or their statement (a
    wrong option dropped from a kept quiz item, or a further anchor, is not
    an item of its own and is not listed)."""
    spec = SPECS[aid["kind"]]
    rows = []
    for item in aid["items"]:
        quote = item["quote"]
        passage = material.passage(quote["n"])
        rows.append({"kind": aid["kind"], "statement": spec.statements(item)[0], "quote": quote["text"],
                     "passage": quote["citation"], "judge_p": round(item["probability"], 3),
                     "kept": True, "located": passage.text[quote["start"]:quote["end"]] == quote["text"],
                     "section": material.title, "label": None, "note": ""})
    for dropped in aid["dropped"]:
        draft, reason = dropped["draft"], dropped["reason"]
        if "wrong option" in draft or "also" in draft and reason.startswith("further anchor"):
            continue
        number = draft.get("passage")
        passage = material.passage(number) if isinstance(number, int) else None
        words = draft.get("quote") if isinstance(draft.get("quote"), str) else ""
        statements = spec.statements(draft)
        probability = re.search(r"\(p=([0-9.]+)\)$", reason)
        rows.append({"kind": aid["kind"], "statement": statements[0] if statements else "", "quote": words,
                     "passage": passage.citation if passage else f"[{number}] (no such passage)",
                     "judge_p": float(probability.group(1)) if probability else None,
                     "kept": False, "located": bool(passage and words.strip() and locate_quote(words, passage.text)),
                     "section": material.title, "why_left_out": reason, "label": None, "note": ""})
    return rows


def write_sheet(path: Path, aid: dict, material: Material) -> None:
    path.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in label_sheet(aid, material)))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--doc", default="secH2")
    parser.add_argument("--section", default="H.2.6")
    parser.add_argument("--passages", type=int, default=3)
    parser.add_argument("--skip", type=int, default=0, help="Start after this many passages of the section.")
    parser.add_argument("--model", default="qwen2.5-coder-1.5b-instruct-q4_k_m")
    parser.add_argument("--kinds", default=",".join(KINDS))
    parser.add_argument("--out", type=Path, default=Path("/tmp/study-bench"))
    parser.add_argument("--sheet", action="store_true",
                        help="Only write KIND.to-label.jsonl again from the aids' JSON in --out.")
    parser.add_argument("--labels", type=Path, help="Only print the claim precision of this labelled file.")
    args = parser.parse_args()
    if args.labels:
        labels = load_study_labels(args.labels)
        print(f"{args.labels}: {len(labels)} labelled items "
              f"({len({x.section for x in labels})} sections)")
        print(format_report(label_report(labels)))
        return
    args.out.mkdir(parents=True, exist_ok=True)
    lib = open_library(read_only=True)
    material = select_material(lib, Selection(args.doc, args.section), max_passages=args.skip + args.passages)
    material = Material(material.title, material.passages[args.skip:], material.cut)
    if args.sheet:
        for kind in args.kinds.split(","):
            if (args.out / f"{kind}.json").exists():
                aid = json.loads((args.out / f"{kind}.json").read_text())
                write_sheet(args.out / f"{kind}.to-label.jsonl", aid, material)
        return
    from readingroom.models.generate import load_generator

    generator = load_generator(args.model)
    print(f"{material.title}: {len(material.passages)} passages; model {args.model}; "
          f"{os.cpu_count()} cores; load average before {os.getloadavg()}")
    rows = []
    for kind in args.kinds.split(","):
        load_before = os.getloadavg()[0]
        started, cpu_started = time.perf_counter(), time.process_time()
        aid = make_aid(kind, lib, material, generator, progress=False)
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu_started
        (args.out / f"{kind}.json").write_text(json.dumps(aid.to_dict(), indent=1, default=str))
        (args.out / f"{kind}.md").write_text(aid.to_markdown())
        write_sheet(args.out / f"{kind}.to-label.jsonl", aid.to_dict(), material)
        # On a shared machine the wall time mostly measures the others' load;
        # the process's CPU time over its 2 threads is what an idle 2-core
        # machine would take (llama.cpp keeps both threads busy).
        row = {"kind": kind, "seconds": round(seconds, 1), "cpu_seconds": round(cpu, 1),
               "idle_estimate_seconds": round(cpu / min(os.cpu_count(), 2), 1), "draft_seconds": round(aid.draft_seconds, 1),
               "check_ratio": round(seconds / aid.draft_seconds, 2) if aid.draft_seconds else None,
               "drafted": aid.drafted, "located": aid.located, "kept": len(aid.items),
               "load_1min": round((load_before + os.getloadavg()[0]) / 2, 1)}
        rows.append(row)
        print(json.dumps(row), flush=True)
    (args.out / "timings.json").write_text(json.dumps(rows, indent=1))
    print("ratio: time of the aid / time of drafting alone (baseline), i.e. 1 + the check's share")


if __name__ == "__main__":
    main()
