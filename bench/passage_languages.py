"""What per-passage language detection costs ingestion
(corpus.language.passage_languages), against the baseline of what ingestion
already pays for languages: one lingua detection per document
(corpus.language.detect_language).

    python bench/passage_languages.py [--sample 300]

Corpus: An Anarchist FAQ (Debian's `anarchism`, English, ~150 documents),
read and split as `readingroom ingest` does (reading and splitting not
timed). For each document:
- baseline: detect_language (the document's language, 1,500 characters);
- screen: mixes_languages (up to 8 passages, 250 characters each, a
  detector of the 10 languages with a stemmer, trigrams only), which is
  all a document in one language costs;
- passage_languages: the screen, and for a document the screen finds
  mixed, every passage read by the all-language detector;
- every passage read (what detection without the screen would cost),
  timed on `--sample` passages and scaled to the corpus.
Also the mixed fixture (data/fixtures/mixed: English with German theses),
split as ingestion splits it: its passages' languages and the time. Each figure is also given in
seconds per MB of text, beside the 0.05 s per MB that ingestion at
20 MB/s leaves for everything.
Needs the FAQ fetched (`readingroom corpus fetch anarchist-faq`).
"""
from __future__ import annotations

import argparse
import os
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "lib"))


def load() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sample", type=int, default=300, help="passages read one by one for the full figure")
    args = parser.parse_args()

    from readingroom.corpus import corpora, language
    from readingroom.corpus.document import Document
    from readingroom.corpus.passages import Splitter
    from readingroom.corpus.sources import read_paths
    from readingroom.library.ingest import split as ingest_split

    try:
        corpus = corpora.get("anarchist-faq")
        folder = corpora.fetch(corpus, download=False)
    except corpora.CorpusError as e:
        print(f"skipped: {e}")
        return 0
    splitter = Splitter()
    docs = [d for d in corpora.read(corpus, folder) if isinstance(d, Document)]
    split = [[p.text for p in splitter.split(d)] for d in docs]
    megabytes = sum(len(d.text.encode()) for d in docs) / 1e6
    n_passages = sum(map(len, split))
    print(f"An Anarchist FAQ: {len(docs)} documents, {n_passages:,} passages, {megabytes:.1f} MB  [load {load()}]")

    # Warm: each detector's models load once per process (not counted).
    language.detect_language(docs[0].text)
    language.mixes_languages(split[0], "en")

    def timed(work) -> tuple[float, object]:
        start = time.perf_counter()
        result = work()
        return time.perf_counter() - start, result

    base, found = timed(lambda: [language.detect_language(d.text) for d in docs])
    screen, mixed = timed(lambda: [language.mixes_languages(p, code) for p, code in zip(split, found)])
    tagged_time, tagged = timed(lambda: [language.passage_languages(p, code) for p, code in zip(split, found)])
    flagged = [d.key for d, m in zip(docs, mixed) if m]
    other = sum(code != doc for codes, doc in zip(tagged, found) for code in codes)

    everything = [t for p in split for t in p if len(t) >= language.MIN_PASSAGE_CHARS]
    sample = random.Random(0).sample(everything, min(args.sample, len(everything)))
    detector = language._detector()
    [detector.detect_language_of(t) for t in sample]  # untimed: lingua loads a language's model when first needed
    one_by_one, _ = timed(lambda: [detector.detect_language_of(t) for t in sample])
    full = one_by_one / len(sample) * len(everything)

    def line(name: str, seconds: float) -> str:
        return (f"  {name:<34} {seconds:7.2f} s  {seconds / megabytes:6.3f} s/MB  "
                f"{seconds / len(docs) * 1000:7.1f} ms/document  ratio {seconds / base:5.2f}x")

    print(f"Documents' languages: {sorted(set(found), key=str)}; the screen finds {len(flagged)} mixed: "
          f"{flagged[:6]}{' ...' if len(flagged) > 6 else ''}")
    print(line("baseline: detect_language", base))
    print(line("screen: mixes_languages", screen))
    print(line("passage_languages (screen + mixed)", tagged_time))
    print(line(f"every passage read (from {len(sample)})", full))
    print(f"  passages tagged another language than their document's: {other}")
    print("  budget at 20 MB/s for all of ingestion: 0.050 s/MB")

    # As ingestion splits it (library.ingest.split): its language detected, its passages read.
    mixed_doc = next(d for d in read_paths([ROOT / "data/fixtures/mixed"]) if isinstance(d, Document))
    sampled = language.detect_language(mixed_doc.text)
    seconds, (named, passages) = timed(lambda: ingest_split(mixed_doc, splitter))
    codes = [p.language or named for p in passages]
    print(f"Mixed fixture ({len(passages)} passages; the document's sample says '{sampled}', most of its text "
          f"'{named}'): {codes}  {seconds * 1000:.1f} ms split and tagged  [load {load()}]")
    return 0


if __name__ == "__main__":
    sys.exit(main())
