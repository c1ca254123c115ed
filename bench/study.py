"""Study aids, measured: for each kind of aid on one section of the default
library, the time it takes (and the share of it that is checking, against
drafting alone as the baseline), how many items the model drafted, how many
had their quote found, how many were kept. The machine's load is printed
with the figures: it is shared.

    python bench/study.py [--doc secH2 --section H.2.6] [--passages 6] [--model NAME] [--out DIR]

Each aid is also written to DIR as JSON (for hand-labelling, see
data/benchmarks/study-labels.jsonl) and as Markdown.
"""
from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

from readingroom import open_library
from readingroom.models.generate import load_generator
from readingroom.study import KINDS, Material, Selection, make_aid, select_material


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--doc", default="secH2")
    parser.add_argument("--section", default="H.2.6")
    parser.add_argument("--passages", type=int, default=3)
    parser.add_argument("--skip", type=int, default=0, help="Start after this many passages of the section.")
    parser.add_argument("--model", default="qwen2.5-coder-1.5b-instruct-q4_k_m")
    parser.add_argument("--kinds", default=",".join(KINDS))
    parser.add_argument("--out", type=Path, default=Path("/tmp/study-bench"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    lib = open_library(read_only=True)
    material = select_material(lib, Selection(args.doc, args.section), max_passages=args.skip + args.passages)
    material = Material(material.title, material.passages[args.skip:], material.cut)
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
