"""Search: BM25 and vectors fused by reciprocal rank, with filters, MMR and
an optional rerank stage.

The index (index.py) holds a library's BM25 index, vectors and the table of
what filters need; fusion.py ranks: each retriever proposes its best
`candidates` rows, the union is ranked by reciprocal rank fusion, a reranker
(rerank.py) then reorders the best few, and MMR picks the final k.

A query in one language matches passages in another through the vectors
only: BM25 is limited to passages in the query's language when that can be
told, because shared spellings across languages ("die", "man") are noise.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from readingroom.library.store import Library
from readingroom.search.fusion import mmr, rrf, top_rows
from readingroom.search.index import (  # noqa: F401  (re-exported: callers import them from here)
    BM25_VERSION, DocumentTable, SearchIndex, as_precision, build_bm25, corpus_fingerprint,
    preferred_embedder,
)

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
    language: str | None = None  # the passage's: its document's, unless the document mixes languages
    source: str = ""
    url: str | None = None
    section: list[str] = field(default_factory=list)
    ranks: dict[str, int] = field(default_factory=dict)  # 1-based rank in each stage that saw it

    def to_dict(self) -> dict:
        return asdict(self)

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
            raw["bm25"] = scores[rankings["bm25"]]
        if mode in ("hybrid", "vector"):
            nearest = self.index.vector_top(query, s.candidates, allowed, query_vector)
            if nearest is None and mode == "vector":
                raise LookupError("this library has no passage vectors yet: run `readingroom embed` "
                                  "or search with mode='bm25'")
            if nearest is not None:
                rankings["vector"], raw["vector"] = nearest
        if mode == "hybrid" and len(rankings) > 1:
            rows, fused, ranks = rrf(rankings, {"bm25": s.bm25_weight, "vector": s.vector_weight}, s.rrf_k)
        else:
            (name, rows), = rankings.items()
            fused = raw[name].astype(float)
            ranks = {int(r): {name: i} for i, r in enumerate(rows.tolist(), start=1)}
        if reranker is not None and len(rows):
            rows, fused = self._rerank(query, rows, fused, ranks, reranker, s)
        # MMR chooses among the best few only: a passage far down the list
        # is no better for being different, and a small pool keeps it cheap.
        pool = min(len(rows), max(MMR_POOL_PER_RESULT * k, MMR_POOL_MIN))
        rows, fused = rows[:pool], fused[:pool]
        chosen = mmr(fused, self.index.vector_of(rows), k, s.mmr_lambda)
        return rows[chosen], fused[chosen], ranks

    def query_language(self, query: str) -> str | None:
        """The query's language (corpus.language.detect_query_language, told
        apart from the common ones and those the library holds), or None
        when it cannot be told with confidence."""
        from readingroom.corpus.language import detect_query_language

        held = set(self.index.docs.languages.tolist()) | set(self.index.passage_languages.names)
        return detect_query_language(query, held)

    def _query_language_rows(self, query: str) -> np.ndarray | None:
        """Rows (passages) in the query's language or of unknown language;
        None (all rows) when the query's language cannot be told with
        confidence. A German passage in an English document is German here."""
        language = self.query_language(query)
        if language is None:
            return None
        return self.index.passage_languages.rows_in([language, ""])

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
            "coalesce(p.language, d.language), d.source, d.url, p.section "
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
