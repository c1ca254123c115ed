"""Search: BM25 and vectors fused by reciprocal rank, with filters, MMR and
an optional rerank stage.

One `SearchIndex` per library holds, in memory and in the same row order
(documents by id, passages in reading order):
- a small table of what filters need (each passage's document, the
  documents' authors, years, languages and sources),
- a BM25 index of the passage texts (bm25s: sparse scores computed when the
  index is built, so a query is a sum of a few columns; saved in the cache
  per corpus, so the next process loads it instead of building it),
- the passages' unit vectors for one embedding model, as one contiguous
  float32 matrix: a query is one matrix-vector product. Exact, no
  approximate index: at a million passages that is ~0.1 s on two idle
  cores, more when they are busy (bench/search.py), and nothing is missed.

Each retriever proposes its best `candidates` rows; the union is ranked by
reciprocal rank fusion, score = sum of weight / (rrf_k + rank), which needs
no calibration between BM25 scores and cosines. A reranker (rerank.py) then
reorders the best few, and MMR picks the final k so that near-identical
passages (the overlap between neighbours, the same paragraph quoted twice)
do not fill the list.

A query in one language matches passages in another through the vectors
only: BM25 is limited to passages in the query's language when that can be
told, because shared spellings across languages ("die", "man") are noise.
"""
from __future__ import annotations

import os
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from readingroom.library.store import Library
from readingroom.paths import cache_dir
from readingroom.text import tokenize

# Bump when tokenising or BM25 settings change: old saved indexes are then
# not reused.
BM25_VERSION = "1"
MODES = ("hybrid", "bm25", "vector")
MMR_POOL_PER_RESULT, MMR_POOL_MIN = 3, 30


@dataclass(frozen=True)
class Filters:
    """Which passages a search may return. Empty means no restriction.

    authors match case-insensitively on any part of a name ("marx" finds
    "Karl Marx"); a passage passes if any of its document's authors does.
    Years are inclusive; with a year bound set, documents without a year are
    left out."""

    authors: tuple[str, ...] = ()
    year_from: int | None = None
    year_to: int | None = None
    languages: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()
    doc_ids: tuple[str, ...] = ()

    @classmethod
    def of(cls, author=None, year_from=None, year_to=None, language=None, source=None, doc_id=None) -> "Filters":
        """From single values or lists, as the CLI and widgets give them."""
        def many(value):
            if value is None or value == "":
                return ()
            return (value,) if isinstance(value, str) else tuple(value)

        return cls(many(author), year_from, year_to, many(language), many(source), many(doc_id))

    def __bool__(self) -> bool:
        return bool(self.authors or self.languages or self.sources or self.doc_ids
                    or self.year_from is not None or self.year_to is not None)

    def document_mask(self, docs: "DocumentTable") -> np.ndarray:
        keep = np.ones(len(docs.doc_ids), dtype=bool)
        if self.authors:
            wanted = [a.casefold() for a in self.authors]
            keep &= np.array([any(w in name.casefold() for name in names for w in wanted)
                              for names in docs.authors], dtype=bool)
        if self.year_from is not None:
            keep &= docs.years >= self.year_from  # NaN (no year) compares False
        if self.year_to is not None:
            keep &= docs.years <= self.year_to
        if self.languages:
            keep &= np.isin(docs.languages, [code.lower() for code in self.languages])
        if self.sources:
            keep &= np.isin(docs.sources, list(self.sources))
        if self.doc_ids:
            keep &= np.isin(docs.doc_ids, list(self.doc_ids))
        return keep


@dataclass
class DocumentTable:
    doc_ids: np.ndarray
    authors: list[list[str]]
    years: np.ndarray  # float, NaN where unknown
    languages: np.ndarray  # str, "" where unknown
    sources: np.ndarray


@dataclass
class Hit:
    """One passage found, with what a reader needs to find it in the original."""

    passage_id: str
    doc_id: str
    title: str
    author: str  # the authors joined with "; ", "" when unknown
    year: int | None
    citation: str
    anchor: str | None
    score: float  # the fused score in hybrid mode, else the BM25 score or the cosine
    text: str
    authors: list[str] = field(default_factory=list)
    language: str | None = None
    source: str = ""
    url: str | None = None
    section: list[str] = field(default_factory=list)
    ranks: dict[str, int] = field(default_factory=dict)  # 1-based rank in each stage that saw it

    def to_dict(self) -> dict:
        return asdict(self)


def corpus_fingerprint(lib: Library) -> str:
    """Changes when any passage is added, removed or changed (passage ids are
    hashes of their document and text)."""
    (digest,) = lib.con.execute(
        "SELECT sha256(coalesce(string_agg(passage_id, ',' ORDER BY doc_id, ordinal), '')) FROM passages"
    ).fetchone()
    return digest


class SearchIndex:
    """What searching one library needs, in memory; see the module's notes.
    `SearchIndex.load(lib)` reads it from a library; the constructor takes
    the parts (bench/search.py builds synthetic ones)."""

    def __init__(self, passage_ids: np.ndarray, doc_index: np.ndarray, docs: "DocumentTable", bm25,
                 vectors=None, has_vector: np.ndarray | None = None, embedder=None, fingerprint: str = ""):
        self.passage_ids = passage_ids
        self.doc_index = doc_index  # each passage's row in docs
        self.docs = docs
        self.bm25 = bm25
        self.vectors = vectors  # float32 ndarray or bfloat16 tensor, rows aligned with passage_ids
        self.has_vector = has_vector if has_vector is not None else np.full(len(passage_ids), vectors is not None)
        self.embedder = embedder  # encodes queries for the vectors
        self.fingerprint = fingerprint
        self.row_of = {pid: i for i, pid in enumerate(passage_ids.tolist())}

    @classmethod
    def load(cls, lib: Library, model=None, *, vectors: bool = True, progress: bool = False,
             precision: str = "float32") -> "SearchIndex":
        """`model`: the embedding model whose vectors to use (a catalogue name
        or folder); by default the one that has embedded most of the library.
        With `vectors=False`, or when nothing is embedded yet, only BM25 runs.
        `precision`: "float32" (exact) or "bfloat16" (half the memory, scores
        to ~3 digits, but not faster on CPUs: bench/search.py)."""
        if precision not in ("float32", "bfloat16"):
            raise ValueError(f"precision must be float32 or bfloat16, not {precision!r}")
        fingerprint = corpus_fingerprint(lib)
        table = lib.arrow("SELECT passage_id, doc_id FROM passages ORDER BY doc_id, ordinal")
        passage_ids = table.column("passage_id").to_numpy(zero_copy_only=False)
        docs = lib.con.execute(
            "SELECT doc_id, authors, year, coalesce(language, ''), source FROM documents ORDER BY doc_id"
        ).fetchall()
        docs = DocumentTable(
            doc_ids=np.array([d[0] for d in docs], dtype=object),
            authors=[list(d[1]) for d in docs],
            years=np.array([np.nan if d[2] is None else d[2] for d in docs], dtype=float),
            languages=np.array([d[3] for d in docs], dtype=object),
            sources=np.array([d[4] for d in docs], dtype=object),
        )
        doc_position = {d: i for i, d in enumerate(docs.doc_ids)}
        doc_index = np.array([doc_position[d] for d in table.column("doc_id").to_pylist()], dtype=np.int32)
        bm25 = _cached_bm25(lib, fingerprint, progress)
        index = cls(passage_ids, doc_index, docs, bm25, fingerprint=fingerprint)
        model = (model or preferred_embedder(lib)) if vectors else None
        if model is not None:
            index._load_vectors(lib, model, precision)
        return index

    def _load_vectors(self, lib: Library, model, precision: str) -> None:
        from readingroom.models.embed import load_embedder, load_matrix

        ids, matrix = load_matrix(lib, model)
        self.embedder = load_embedder(model)
        rows = np.array([self.row_of[i] for i in ids], dtype=np.int64)
        if len(rows) == len(self.passage_ids) and np.array_equal(rows, np.arange(len(rows))):
            aligned = matrix  # the usual case: every passage has a vector, same order
        else:
            aligned = np.zeros((len(self.passage_ids), matrix.shape[1]), dtype=np.float32)
            aligned[rows] = matrix
        self.has_vector = np.zeros(len(self.passage_ids), dtype=bool)
        self.has_vector[rows] = True
        self.vectors = as_precision(aligned, precision)

    def __len__(self) -> int:
        return len(self.passage_ids)

    # --- scoring ------------------------------------------------------------
    def bm25_scores(self, query: str) -> np.ndarray:
        if len(self) == 0:
            return np.zeros(0, dtype=np.float32)
        tokens = tokenize([query])[0]
        known = [t for t in tokens if t in self.bm25.vocab_dict]
        if not known:
            return np.zeros(len(self), dtype=np.float32)
        return np.asarray(self.bm25.get_scores(known), dtype=np.float32)

    def vector_scores(self, query: str, query_vector: np.ndarray | None = None) -> np.ndarray | None:
        """Cosine of every passage with the query; -inf for passages without a vector."""
        if self.vectors is None:
            return None
        q = self.embedder.encode_query(query) if query_vector is None else query_vector
        if isinstance(self.vectors, np.ndarray):
            scores = self.vectors @ q
        else:
            import torch

            with torch.inference_mode():
                scores = torch.nn.functional.linear(
                    torch.from_numpy(q).to(torch.bfloat16)[None], self.vectors)[0].float().numpy()
        if not self.has_vector.all():
            scores[~self.has_vector] = -np.inf
        return scores

    def mask(self, filters: Filters | None) -> np.ndarray | None:
        if not filters:
            return None
        return filters.document_mask(self.docs)[self.doc_index]

    def vector_of(self, rows: np.ndarray) -> np.ndarray | None:
        if self.vectors is None:
            return None
        if isinstance(self.vectors, np.ndarray):
            return self.vectors[rows]
        return self.vectors[rows].float().numpy()


def as_precision(matrix: np.ndarray, precision: str):
    if precision == "bfloat16":
        import torch

        return torch.from_numpy(matrix).to(torch.bfloat16)
    return np.ascontiguousarray(matrix, dtype=np.float32)


def build_bm25(texts: list[str], progress: bool = False):
    import bm25s

    retriever = bm25s.BM25()
    if texts:
        retriever.index(tokenize(texts), show_progress=progress)
    return retriever


def _cached_bm25(lib: Library, fingerprint: str, progress: bool):
    """The BM25 index of the library's passages, loaded from the cache when
    this corpus was indexed before (bm25s saves plain .npy and JSON; loaded
    with allow_pickle=False), else built and saved there."""
    import bm25s

    folder = cache_dir() / "bm25" / f"{fingerprint[:32]}-v{BM25_VERSION}"
    if (folder / "params.index.json").exists():
        try:
            return bm25s.BM25.load(str(folder), mmap=False, allow_pickle=False, load_corpus=False)
        except (OSError, ValueError, KeyError):
            shutil.rmtree(folder, ignore_errors=True)  # damaged: build it again below
    texts = lib.arrow("SELECT text FROM passages ORDER BY doc_id, ordinal").column("text").to_pylist()
    retriever = build_bm25(texts, progress)
    if texts:
        # Saved beside and renamed into place: a half-written index is never loaded.
        partial = folder.with_name(f"{folder.name}.partial-{os.getpid()}")
        retriever.save(str(partial), allow_pickle=False)
        folder.parent.mkdir(parents=True, exist_ok=True)
        try:
            partial.rename(folder)
        except OSError:  # another process saved the same index first
            shutil.rmtree(partial, ignore_errors=True)
        _forget_old_bm25(folder.parent)
    return retriever


KEEP_BM25_INDEXES = 8  # each change to a library makes a new index; the oldest go


def _forget_old_bm25(folder: Path) -> None:
    saved = sorted((p for p in folder.iterdir() if p.is_dir() and ".partial-" not in p.name),
                   key=lambda p: p.stat().st_mtime, reverse=True)
    for old in saved[KEEP_BM25_INDEXES:]:
        shutil.rmtree(old, ignore_errors=True)


def preferred_embedder(lib: Library) -> str | None:
    """The embedding model with vectors for the most passages (ties: the
    newest); its catalogue name, or None if nothing is embedded."""
    models = lib.embedding_models()
    if models.empty:
        return None
    models = models.assign(covered=models["vectors"]).sort_values(["covered", "created"], ascending=False)
    return models.iloc[0]["name"]


def top_rows(scores: np.ndarray, n: int, allowed: np.ndarray | None = None, floor: float = -np.inf) -> np.ndarray:
    """The rows of the n highest scores above `floor` (among the allowed
    ones), best first. argpartition first: O(N) instead of sorting N."""
    if allowed is not None:
        scores = np.where(allowed, scores, -np.inf)
    n = min(n, len(scores))
    if n <= 0:
        return np.zeros(0, dtype=np.int64)
    part = np.argpartition(-scores, n - 1)[:n]
    part = part[scores[part] > floor]
    return part[np.argsort(-scores[part], kind="stable")]


def rrf(rankings: dict[str, np.ndarray], weights: dict[str, float], k: int = 60) -> tuple[np.ndarray, np.ndarray, dict]:
    """Reciprocal rank fusion of several best-first lists of rows:
    (rows, fused scores) best first, and each row's 1-based rank per list."""
    fused: dict[int, float] = {}
    ranks: dict[int, dict[str, int]] = {}
    for name, rows in rankings.items():
        weight = weights.get(name, 1.0)
        for rank, row in enumerate(rows.tolist(), start=1):
            fused[row] = fused.get(row, 0.0) + weight / (k + rank)
            ranks.setdefault(row, {})[name] = rank
    order = sorted(fused, key=lambda r: (-fused[r], r))
    return np.array(order, dtype=np.int64), np.array([fused[r] for r in order]), ranks


def mmr(relevance: np.ndarray, vectors: np.ndarray | None, k: int, lambda_: float) -> list[int]:
    """Maximal marginal relevance: positions into `relevance` (best first),
    each chosen for relevance minus its highest cosine with those already
    chosen. relevance is scaled to [0, 1] first so lambda_ means the same
    whatever the scores are."""
    n = len(relevance)
    if vectors is None or lambda_ >= 1.0 or n <= 1:
        return list(range(min(k, n)))
    span = relevance.max() - relevance.min()
    rel = (relevance - relevance.min()) / span if span > 0 else np.ones(n)
    similarity = vectors @ vectors.T
    chosen = [int(np.argmax(rel))]
    closest = similarity[chosen[0]].copy()
    while len(chosen) < min(k, n):
        value = lambda_ * rel - (1 - lambda_) * closest
        value[chosen] = -np.inf
        best = int(np.argmax(value))
        chosen.append(best)
        closest = np.maximum(closest, similarity[best])
    return chosen


@dataclass
class Settings:
    """How a search runs; every field is recorded with evaluation runs."""

    mode: str = "hybrid"
    candidates: int = 100  # rows each retriever proposes
    rrf_k: int = 60
    # Words count half as much as meaning: readers paraphrase. Measured on
    # both benchmarks (notebook 03): on the hand-written Marx-Engels
    # questions recall@5 0.649 -> 0.727 and MRR@10 0.516 -> 0.533; on the
    # FAQ's own headings, which share words with their answers, recall@5
    # 0.816 -> 0.802 and MRR@10 0.609 -> 0.616.
    bm25_weight: float = 0.5
    vector_weight: float = 1.0
    mmr_lambda: float = 0.8  # 1.0: no diversity step
    rerank_depth: int = 10  # the fused best this many go to the reranker
    rerank_weight: float | None = 1.0  # fused with the first ranking; None: the reranker alone decides
    same_language_bm25: bool = True

    def __post_init__(self):
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, not {self.mode!r}")
        if not 0.0 <= self.mmr_lambda <= 1.0:
            raise ValueError(f"mmr_lambda must be between 0 and 1, not {self.mmr_lambda}")


class Searcher:
    """Search one library: `Searcher(lib).search("question", k=5)`."""

    def __init__(self, lib: Library, model=None, *, index: SearchIndex | None = None, reranker=None,
                 settings: Settings | None = None, **index_options):
        self.lib = lib
        self.index = index if index is not None else SearchIndex.load(lib, model, **index_options)
        self.reranker = reranker
        self.settings = settings or Settings()

    def search(self, query: str, k: int = 10, filters: Filters | None = None, *, mode: str | None = None,
               reranker=..., settings: Settings | None = None) -> list[Hit]:
        """The k best passages for the query, best first."""
        rows, scores, ranks = self.rank(query, k, filters, mode=mode, reranker=reranker, settings=settings)
        return self._hits(rows, scores, ranks)

    def rank(self, query: str, k: int = 10, filters: Filters | None = None, *, mode: str | None = None,
             reranker=..., settings: Settings | None = None, query_vector: np.ndarray | None = None):
        """(rows, scores, ranks per stage) of the k best passages: the search
        without reading their texts (bench/search.py times this)."""
        s = settings or self.settings
        mode = mode or s.mode
        if mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, not {mode!r}")
        reranker = self.reranker if reranker is ... else reranker
        query = (query or "").strip()
        if not query or k < 1 or len(self.index) == 0:
            return np.zeros(0, dtype=np.int64), np.zeros(0), {}
        allowed = self.index.mask(filters)
        rankings, raw = {}, {}
        if mode in ("hybrid", "bm25"):
            scores = self.index.bm25_scores(query)
            bm25_allowed = allowed
            if s.same_language_bm25 and mode == "hybrid":
                bm25_allowed = _and(allowed, self._query_language_rows(query))
            rankings["bm25"] = top_rows(scores, s.candidates, bm25_allowed, floor=0.0)
            raw["bm25"] = scores
        if mode in ("hybrid", "vector"):
            scores = self.index.vector_scores(query, query_vector)
            if scores is None and mode == "vector":
                raise LookupError("this library has no passage vectors yet: run `readingroom embed` "
                                  "or search with mode='bm25'")
            if scores is not None:
                rankings["vector"] = top_rows(scores, s.candidates, allowed)
                raw["vector"] = scores
        if mode == "hybrid" and len(rankings) > 1:
            rows, fused, ranks = rrf(rankings, {"bm25": s.bm25_weight, "vector": s.vector_weight}, s.rrf_k)
        else:
            (name, rows), = rankings.items()
            fused = raw[name][rows].astype(float)
            ranks = {int(r): {name: i} for i, r in enumerate(rows.tolist(), start=1)}
        if reranker is not None and len(rows):
            rows, fused = self._rerank(query, rows, fused, ranks, reranker, s)
        # MMR chooses among the best few only: a passage far down the list
        # is no better for being different, and a small pool keeps it cheap.
        pool = min(len(rows), max(MMR_POOL_PER_RESULT * k, MMR_POOL_MIN))
        rows, fused = rows[:pool], fused[:pool]
        chosen = mmr(fused, self.index.vector_of(rows), k, s.mmr_lambda)
        return rows[chosen], fused[chosen], ranks

    def _query_language_rows(self, query: str) -> np.ndarray | None:
        """Rows in the query's language or of unknown language; None (all
        rows) when the query's language cannot be told with confidence."""
        from readingroom.corpus.language import detect_query_language

        language = detect_query_language(query, set(self.index.docs.languages.tolist()))
        if language is None:
            return None
        return np.isin(self.index.docs.languages, [language, ""])[self.index.doc_index]

    def _rerank(self, query, rows, fused, ranks, reranker, s: Settings):
        head, tail = rows[:s.rerank_depth], rows[s.rerank_depth:]
        texts = self._texts(head)
        scores = np.asarray(reranker.score(query, texts), dtype=float)
        order = np.argsort(-scores, kind="stable")
        for rank, position in enumerate(order, start=1):
            ranks[int(head[position])]["rerank"] = rank
        if s.rerank_weight is None:
            new_head = head[order]
        else:
            first = {int(r): i for i, r in enumerate(head.tolist(), start=1)}
            combined = {int(head[p]): 1.0 / (s.rrf_k + first[int(head[p])]) + s.rerank_weight / (s.rrf_k + rank)
                        for rank, p in enumerate(order, start=1)}
            new_head = np.array(sorted(combined, key=lambda r: (-combined[r], first[r])), dtype=np.int64)
        # Reranked rows keep scores above every row the reranker did not see.
        top = float(fused.max()) if len(fused) else 0.0
        head_scores = top + np.linspace(len(new_head), 1, len(new_head))
        return np.concatenate([new_head, tail]), np.concatenate([head_scores, fused[len(head):]])

    def _texts(self, rows: np.ndarray) -> list[str]:
        ids = [self.index.passage_ids[r] for r in rows]
        found = dict(self.lib.con.execute(
            "SELECT passage_id, text FROM passages WHERE passage_id IN (SELECT unnest(?))", [ids]).fetchall())
        return [found[i] for i in ids]

    def _hits(self, rows: np.ndarray, scores: np.ndarray, ranks: dict) -> list[Hit]:
        if not len(rows):
            return []
        ids = [self.index.passage_ids[r] for r in rows]
        records = self.lib.con.execute(
            "SELECT p.passage_id, p.doc_id, d.title, d.authors, d.year, p.citation, p.anchor, p.text, "
            "d.language, d.source, d.url, p.section "
            "FROM passages p JOIN documents d USING (doc_id) WHERE p.passage_id IN (SELECT unnest(?))", [ids]
        ).fetchall()
        by_id = {r[0]: r for r in records}
        hits = []
        for row, pid, score in zip(rows.tolist(), ids, scores.tolist()):
            r = by_id[pid]
            hits.append(Hit(
                passage_id=pid, doc_id=r[1], title=r[2], author="; ".join(r[3]), year=r[4],
                citation=r[5], anchor=r[6], score=round(float(score), 6), text=r[7], authors=list(r[3]),
                language=r[8], source=r[9], url=r[10], section=list(r[11]), ranks=dict(ranks.get(row, {})),
            ))
        return hits


def _and(a: np.ndarray | None, b: np.ndarray | None) -> np.ndarray | None:
    if a is None:
        return b
    if b is None:
        return a
    return a & b


_INDEXES: dict[tuple, SearchIndex] = {}


def searcher_for(lib: Library, model=None, *, reranker=None, settings: Settings | None = None,
                 precision: str = "float32") -> Searcher:
    """A Searcher whose index is kept for the process and rebuilt only when
    the library's passages or vectors change (notebooks and the chat search
    many times)."""
    (vectors,) = lib.con.execute("SELECT count(*) FROM embeddings").fetchone()
    key = (str(lib.path), corpus_fingerprint(lib), vectors, str(model), precision)
    if key not in _INDEXES:
        _INDEXES.clear()  # one library's index at a time: they are large
        _INDEXES[key] = SearchIndex.load(lib, model, precision=precision)
    return Searcher(lib, index=_INDEXES[key], reranker=reranker, settings=settings)


def search(lib: Library, query: str, k: int = 10, filters: Filters | None = None, *,
           mode: str | None = None, model=None, reranker=None) -> list[Hit]:
    """One search with default settings, for scripts and the CLI."""
    return searcher_for(lib, model, reranker=reranker).search(query, k, filters, mode=mode)
