"""Search latency: a hybrid top-10 query at 10k, 100k and 1M passages, with
the memory it takes, against plain numpy brute force plus bm25s on the same
data.

    python bench/search.py [--sizes 10000,100000,1000000] [--queries 50] [--dims 384]
                           [--seed 0] [--quick]

Data (synthetic, deterministic from --seed; no library file):
- texts: 120-180 words (150 on average) drawn from a Zipf (s=1) vocabulary:
  bm25s's 33 English stop words at the top ranks (so that, as in English,
  about a third of the words are dropped by the tokeniser), then ~50k made-up
  words of 2-4 random syllables. Built vectorised, 20k passages at a time.
- vectors: random normal float32 rows of --dims, normalised to unit length.
- documents: one per 100 passages, with authors, years (1800-1999),
  languages and sources filled.
- queries: --queries of 4-8 words from the same vocabulary (at least one
  word the index knows), each with a query vector: a passage's vector plus
  noise (cosine ~0.7 with it), normalised.

Compared, each on every query, interleaved (one of each per query, in a
rotating order) after a warm-up, so that load from other processes falls on
all of them alike; p50 and p95 over the queries, time.perf_counter:
- baseline: the same work done plainly: `search.tokenize`, `bm25.get_scores`
  on the same bm25s index, `matrix @ q` (numpy float32), argpartition top 100
  of each, a plain RRF (k=60, our default weights) in Python over the two
  lists, top 10.
- ours: `Searcher(lib=None, index=SearchIndex(...)).rank(query, k=10,
  mode="hybrid", query_vector=q)` with default settings (100 candidates each,
  RRF, MMR with mmr_lambda 0.8) except same_language_bm25=False: that setting
  runs a language detector (lingua) on the query, and this times search, not
  language detection. Also with mmr_lambda=1.0 (no MMR; its top 10 is
  checked against the baseline's), with the vectors in bfloat16
  (precision="bfloat16"), and float32 with a year filter that keeps about
  half of the documents.

Reported per size: the time to build BM25 (tokenise + index), the vector
matrix size, the process RSS once everything is built (texts freed,
malloc_trim'd) and its peak so far, p50/p95 per variant and the ratio of
p50s over the baseline; the baseline's p50 split into its steps shows where
the time goes. Targets (printed as a verdict): p50 under 50 ms at 1M
passages, and ours no slower than the baseline (p50 ratio <= 1.00 at every
size).
"""
from __future__ import annotations

import argparse
import ctypes
import gc
import os
import resource
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "lib"))

from readingroom.text import tokenize  # noqa: E402
from readingroom.search.searcher import (  # noqa: E402
    DocumentTable, Filters, SearchIndex, Searcher, Settings, as_precision, build_bm25,
)

VOCABULARY = 50_000
ZIPF_S = 1.0
WORDS = (120, 181)  # passage length in words, [low, high)
QUERY_WORDS = (4, 9)
PASSAGES_PER_DOC = 100
CANDIDATES = 100
RRF_K = 60
BM25_WEIGHT, VECTOR_WEIGHT = Settings().bm25_weight, Settings().vector_weight
K = 10
WARMUP = 5
CHUNK = 20_000
TARGET_MS = 50.0
TARGET_SIZE = 1_000_000


# --- data ----------------------------------------------------------------------
def vocabulary(rng: np.random.Generator, size: int) -> list[str]:
    """The stop words first (most frequent), then made-up words of 2-4 syllables."""
    from bm25s.stopwords import STOPWORDS_EN

    stop = list(dict.fromkeys(STOPWORDS_EN))
    onsets = ["", "b", "br", "c", "ch", "d", "dr", "f", "g", "gr", "h", "j", "k", "kl", "l", "m", "n",
              "p", "pl", "qu", "r", "s", "sh", "st", "t", "th", "tr", "v", "w", "z"]
    nuclei = ["a", "e", "i", "o", "u", "ai", "ea", "ou", "y"]
    codas = ["", "", "", "n", "r", "l", "m", "k", "x"]
    syllables = np.array([o + v + c for o in onsets for v in nuclei for c in codas if o or c or len(v) > 1])
    words = dict.fromkeys(stop)
    while len(words) < len(stop) + size:
        count = rng.integers(2, 5, size=size)
        parts = syllables[rng.integers(0, len(syllables), size=(size, 4))]
        for row, n in zip(parts.tolist(), count.tolist()):
            words.setdefault("".join(row[:n]))
    return list(words)[:len(stop) + size]


class Zipf:
    """Word ranks with p ~ 1/rank^s, drawn through a 2^22-entry lookup table
    (one random integer and one gather per word)."""

    def __init__(self, size: int, s: float = ZIPF_S, table_bits: int = 22):
        p = 1.0 / np.arange(1, size + 1) ** s
        cdf = np.cumsum(p / p.sum())
        points = (np.arange(1 << table_bits) + 0.5) / (1 << table_bits)
        self.table = np.minimum(np.searchsorted(cdf, points), size - 1).astype(np.int32)

    def __call__(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return self.table[rng.integers(0, len(self.table), size=n)]


def passage_texts(rng: np.random.Generator, n: int, words: list[str], zipf: Zipf) -> list[str]:
    word_array = np.array(words, dtype=object)
    texts: list[str] = []
    for start in range(0, n, CHUNK):
        lengths = rng.integers(*WORDS, size=min(CHUNK, n - start))
        ends = np.cumsum(lengths).tolist()
        drawn = word_array[zipf(rng, ends[-1])].tolist()
        begin = 0
        for end in ends:
            texts.append(" ".join(drawn[begin:end]))
            begin = end
    return texts


def unit_vectors(rng: np.random.Generator, n: int, dims: int) -> np.ndarray:
    matrix = np.empty((n, dims), dtype=np.float32)
    for start in range(0, n, CHUNK):
        block = matrix[start:start + CHUNK]
        rng.standard_normal(out=block, dtype=np.float32)
        block /= np.linalg.norm(block, axis=1, keepdims=True)
    return matrix


def document_table(rng: np.random.Generator, n_docs: int) -> DocumentTable:
    return DocumentTable(
        doc_ids=np.array([f"doc{i:07d}" for i in range(n_docs)], dtype=object),
        authors=[[f"Author {i % 997}"] + ([f"Editor {i % 13}"] if i % 5 == 0 else []) for i in range(n_docs)],
        years=rng.integers(1800, 2000, size=n_docs).astype(float),
        languages=rng.choice(np.array(["en", "de", "fr", ""], dtype=object), size=n_docs, p=[0.7, 0.15, 0.1, 0.05]),
        sources=rng.choice(np.array(["gutenberg", "marxists.org", "wikisource"], dtype=object), size=n_docs),
    )


def make_queries(rng, count, words, zipf, matrix, bm25):
    texts, vectors = [], []
    while len(texts) < count:
        text = " ".join(words[i] for i in zipf(rng, int(rng.integers(*QUERY_WORDS))))
        if not any(t in bm25.vocab_dict for t in tokenize([text])[0]):
            continue  # only stop words: no query anyone types
        q = matrix[rng.integers(0, len(matrix))] + rng.standard_normal(matrix.shape[1]).astype(np.float32) / np.sqrt(matrix.shape[1])
        texts.append(text)
        vectors.append((q / np.linalg.norm(q)).astype(np.float32))
    return texts, vectors


# --- memory --------------------------------------------------------------------
def rss_mb() -> tuple[float, float]:
    """(current RSS, peak RSS) of this process in MB."""
    current = peak = 0.0
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                current = int(line.split()[1]) / 1024
            elif line.startswith("VmHWM:"):
                peak = int(line.split()[1]) / 1024
    return current, peak or resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def release_memory() -> None:
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)  # give freed heap back, so RSS means what is held
    except (OSError, AttributeError):
        pass


def bm25_mb(bm25) -> float:
    return sum(a.nbytes for a in bm25.scores.values() if isinstance(a, np.ndarray)) / 2**20


# --- the baseline ---------------------------------------------------------------
def top(scores: np.ndarray, n: int) -> np.ndarray:
    part = np.argpartition(-scores, n - 1)[:n]
    return part[np.argsort(-scores[part], kind="stable")]


def baseline(bm25, matrix, query: str, q: np.ndarray, steps: dict | None = None) -> list[int]:
    t0 = time.perf_counter()
    tokens = [t for t in tokenize([query])[0] if t in bm25.vocab_dict]
    bm25_scores = np.asarray(bm25.get_scores(tokens), dtype=np.float32)
    t1 = time.perf_counter()
    cosines = matrix @ q
    t2 = time.perf_counter()
    lexical = top(bm25_scores, CANDIDATES)
    lexical = lexical[bm25_scores[lexical] > 0]  # rows without a query word are no BM25 match
    semantic = top(cosines, CANDIDATES)
    t3 = time.perf_counter()
    fused: dict[int, float] = {}
    # The same weights as our default fusion (Settings: BM25 0.5, vectors 1).
    for rows, weight in ((lexical, BM25_WEIGHT), (semantic, VECTOR_WEIGHT)):
        for rank, row in enumerate(rows.tolist(), start=1):
            fused[row] = fused.get(row, 0.0) + weight / (RRF_K + rank)
    best = sorted(fused, key=lambda r: (-fused[r], r))[:K]
    if steps is not None:
        t4 = time.perf_counter()
        for name, dt in (("bm25", t1 - t0), ("matmul", t2 - t1), ("top100", t3 - t2), ("rrf", t4 - t3)):
            steps.setdefault(name, []).append(dt)
    return best


# --- one size -------------------------------------------------------------------
def percentiles(times: list[float]) -> tuple[float, float]:
    return float(np.percentile(times, 50) * 1000), float(np.percentile(times, 95) * 1000)


def bench_size(n: int, args, words: list[str], zipf: Zipf) -> dict:
    seed = [args.seed, n]
    started = time.perf_counter()
    texts = passage_texts(np.random.default_rng(seed + [1]), n, words, zipf)
    texts_s = time.perf_counter() - started
    mean_chars = sum(map(len, texts)) / n

    started = time.perf_counter()
    bm25 = build_bm25(texts)
    bm25_s = time.perf_counter() - started
    del texts
    release_memory()

    started = time.perf_counter()
    matrix = unit_vectors(np.random.default_rng(seed + [2]), n, args.dims)
    vectors_s = time.perf_counter() - started

    n_docs = -(-n // PASSAGES_PER_DOC)
    docs = document_table(np.random.default_rng(seed + [3]), n_docs)
    passage_ids = np.array([f"{i:016x}" for i in range(n)], dtype=object)
    doc_index = (np.arange(n) // PASSAGES_PER_DOC).astype(np.int32)
    started = time.perf_counter()
    index = SearchIndex(passage_ids, doc_index, docs, bm25=bm25, vectors=as_precision(matrix, "float32"))
    index_s = time.perf_counter() - started
    assert index.vectors is matrix  # float32 shares the baseline's matrix: no copy
    queries, query_vectors = make_queries(np.random.default_rng(seed + [4]), args.queries, words, zipf, matrix, bm25)
    release_memory()
    rss_f32, _ = rss_mb()

    started = time.perf_counter()
    index_bf16 = SearchIndex(passage_ids, doc_index, docs, bm25=bm25, vectors=as_precision(matrix, "bfloat16"))
    bf16_s = time.perf_counter() - started
    bf16_mb = index_bf16.vectors.numel() * index_bf16.vectors.element_size() / 2**20
    release_memory()
    rss_all, rss_peak = rss_mb()

    settings = Settings(same_language_bm25=False)
    no_mmr = Settings(same_language_bm25=False, mmr_lambda=1.0)
    ours, ours_bf16 = Searcher(None, index=index, settings=settings), Searcher(None, index=index_bf16, settings=settings)
    year_filter = Filters.of(year_from=1800, year_to=1899)
    kept = float(year_filter.document_mask(docs).mean())

    steps: dict[str, list[float]] = {}

    def run_baseline(i, timed=True):
        return baseline(bm25, matrix, queries[i], query_vectors[i], steps if timed else None)

    no_mmr_top10: dict[int, list[int]] = {}

    def run_no_mmr(i, timed=True):
        rows = ours.rank(queries[i], k=K, mode="hybrid", query_vector=query_vectors[i], settings=no_mmr)[0]
        no_mmr_top10[i] = rows.tolist()  # checked against the baseline after the timing
        return rows

    variants = {
        "baseline: numpy f32 @ + bm25s + RRF": run_baseline,
        "ours f32 (mmr 0.8, default)": lambda i, timed=True: ours.rank(
            queries[i], k=K, mode="hybrid", query_vector=query_vectors[i]),
        "ours f32, mmr_lambda=1.0": run_no_mmr,
        "ours bf16 (mmr 0.8)": lambda i, timed=True: ours_bf16.rank(
            queries[i], k=K, mode="hybrid", query_vector=query_vectors[i]),
        f"ours f32, years 1800-1899 ({kept:.0%} docs)": lambda i, timed=True: ours.rank(
            queries[i], k=K, filters=year_filter, mode="hybrid", query_vector=query_vectors[i]),
    }
    for i in range(min(WARMUP, len(queries))):
        for run in variants.values():
            run(i, timed=False)
    times: dict[str, list[float]] = {name: [] for name in variants}
    names = list(variants)
    for i in range(len(queries)):
        for j in range(len(names)):
            name = names[(i + j) % len(names)]  # rotate who goes first
            start = time.perf_counter()
            variants[name](i)
            times[name].append(time.perf_counter() - start)

    same_top10 = sum(no_mmr_top10[i] == baseline(bm25, matrix, q, v) for i, (q, v) in enumerate(zip(queries, query_vectors)))
    result = dict(
        n=n, n_docs=n_docs, mean_chars=mean_chars, texts_s=texts_s, bm25_s=bm25_s, vectors_s=vectors_s,
        index_s=index_s, bf16_s=bf16_s, bm25_mb=bm25_mb(bm25), vocab=len(bm25.vocab_dict),
        matrix_mb=matrix.nbytes / 2**20, bf16_mb=bf16_mb, rss_f32=rss_f32, rss_all=rss_all, rss_peak=rss_peak,
        times={name: percentiles(t) for name, t in times.items()},
        steps={name: float(np.median(t) * 1000) for name, t in steps.items()},
        same_top10=same_top10, queries=len(queries),
    )
    del ours, ours_bf16, index, index_bf16, matrix, bm25, variants
    release_memory()
    return result


def report(r: dict) -> None:
    print(f"\n{r['n']:,} passages ({r['n_docs']:,} documents, {r['mean_chars']:.0f} characters each); "
          f"build: texts {r['texts_s']:.1f} s, BM25 {r['bm25_s']:.1f} s ({r['vocab']:,} terms, {r['bm25_mb']:.0f} MB), "
          f"vectors {r['vectors_s']:.1f} s, SearchIndex {r['index_s']:.1f} s, bf16 copy {r['bf16_s']:.1f} s")
    print(f"  memory: matrix {r['matrix_mb']:.0f} MB float32 / {r['bf16_mb']:.0f} MB bfloat16; RSS "
          f"{r['rss_f32']:.0f} MB with the float32 index, {r['rss_all']:.0f} MB with the bf16 one too, "
          f"peak {r['rss_peak']:.0f} MB")
    base = r["times"]["baseline: numpy f32 @ + bm25s + RRF"][0]
    print(f"  {'':44} {'p50 ms':>8} {'p95 ms':>8} {'p50/baseline':>13}")
    for name, (p50, p95) in r["times"].items():
        print(f"  {name:44} {p50:8.1f} {p95:8.1f} {p50 / base:13.2f}")
    s = r["steps"]
    print(f"  baseline steps, p50 ms: tokenise+bm25s {s['bm25']:.1f}, matmul {s['matmul']:.1f}, "
          f"top-100 x2 {s['top100']:.1f}, RRF {s['rrf']:.2f}; "
          f"ours mmr_lambda=1.0 top 10 = baseline's on {r['same_top10']}/{r['queries']} queries")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--queries", type=int, default=50)
    parser.add_argument("--dims", type=int, default=384)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="sizes 10000,100000 only")
    args = parser.parse_args()
    sizes = [10_000, 100_000] if args.quick else [int(s) for s in args.sizes.split(",")]

    import torch

    words = vocabulary(np.random.default_rng([args.seed, 0]), VOCABULARY)
    zipf = Zipf(len(words))
    print(f"hybrid top-{K}, {args.queries} queries, {args.dims} dims, {len(words):,}-word Zipf vocabulary, "
          f"seed {args.seed}; {os.cpu_count()} CPU cores, numpy {np.__version__}, torch {torch.__version__} "
          f"({torch.get_num_threads()} threads); load average {os.getloadavg()[0]:.1f}")
    results = []
    for n in sizes:
        results.append(bench_size(n, args, words, zipf))
        report(results[-1])

    print(f"\nload average at the end {os.getloadavg()[0]:.1f} (other processes on {os.cpu_count()} cores "
          "slow threaded BLAS calls down, baseline and ours alike)")
    base_name, ours_name = "baseline: numpy f32 @ + bm25s + RRF", "ours f32 (mmr 0.8, default)"
    print(f"\n{'passages':>10} {'BM25 build s':>12} {'matrix MB':>9} {'RSS MB':>7} "
          f"{'baseline p50/p95':>17} {'ours f32 p50/p95':>17} {'bf16 p50/p95':>13} {'no-MMR p50':>10} "
          f"{'filtered p50':>12}")
    for r in results:
        t = list(r["times"].values())
        print(f"{r['n']:>10,} {r['bm25_s']:12.1f} {r['matrix_mb']:9.0f} {r['rss_f32']:7.0f} "
              f"{t[0][0]:8.1f}/{t[0][1]:<8.1f} {t[1][0]:8.1f}/{t[1][1]:<8.1f} {t[3][0]:6.1f}/{t[3][1]:<6.1f} "
              f"{t[2][0]:10.1f} {t[4][0]:12.1f}")
    print("\nRATIOS, p50 over the baseline (numpy f32 brute force + bm25s + RRF):")
    for r in results:
        base = r["times"][base_name][0]
        t = list(r["times"].values())
        print(f"  {r['n']:>10,}: ours f32 {t[1][0] / base:.2f}, mmr_lambda=1.0 {t[2][0] / base:.2f}, "
              f"bf16 {t[3][0] / base:.2f}, filtered {t[4][0] / base:.2f}")

    at_target = [r for r in results if r["n"] == TARGET_SIZE]
    if at_target:
        p50 = at_target[0]["times"][ours_name][0]
        verdict = f"{'PASS' if p50 < TARGET_MS else 'MISS'} (ours f32 p50 {p50:.1f} ms)"
    else:
        verdict = f"not measured ({TARGET_SIZE:,} not in the sizes)"
    print(f"\nVERDICT: p50 under {TARGET_MS:.0f} ms at {TARGET_SIZE:,} passages: {verdict}")
    ratios = [(r["n"], r["times"][ours_name][0] / r["times"][base_name][0]) for r in results]
    slower = all(ratio <= 1.0 for _, ratio in ratios)
    print(f"VERDICT: ours no slower than brute force plus BM25: {'PASS' if slower else 'MISS'} "
          f"(p50 ours/baseline: {', '.join(f'{n:,} {ratio:.2f}' for n, ratio in ratios)})")


if __name__ == "__main__":
    main()
