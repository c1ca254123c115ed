"""The in-memory index of one library: what searching it needs.

One `SearchIndex` per library holds, in memory and in the same row order
(documents by id, passages in reading order):
- a small table of what filters need (each passage's document, the
  documents' authors, years, languages and sources), and each passage's
  language (its document's, or its own where the document mixes them:
  corpus.language.passage_languages),
- a BM25 index of the passage texts: each passage's word counts kept in
  the cache, in segments (bm25_segments.py), so that the next process, and
  the next ingest, counts only the passages no segment holds yet, and the
  scores are those of a build from scratch. Each
  passage's words are read in its own language, with that
  language's Snowball stemmer (English's stop words dropped as before;
  other languages keep theirs: text.BM25_STOP_WORD_LANGUAGES says why),
  and tagged with it ("de:staat";
  English untagged: text.index_tokens), so one index holds every language
  and a query's German words match German passages only. A query is read
  in its own language when the library holds that language (German
  "Staaten" finds "Staat"), else in each language the library holds,
  each reading matching its own passages. One index rather than one per
  language: the same matrix, row order and cache as before, and an
  English-only library's index is unchanged, token for token.
- the passages' unit vectors for one embedding model, as one contiguous
  float32 matrix: a query is one matrix-vector product, exact, nothing
  missed. From ann.ANN_MIN_VECTORS passages on, an approximate index
  (ann.py) proposes candidates that these vectors rescore, and the matrix
  is a file in the cache, memory-mapped (mapped_vectors.py): a query reads
  its candidates' rows only, and the process does not hold 1.5 GB at 1M.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from readingroom.library.store import Library
from readingroom.paths import cache_dir
from readingroom.search.ann import text_keys
from readingroom.search.fusion import top_rows
from readingroom.text import folded, index_tokens, tokenize, word_language

# Bump when tokenising or BM25 settings change: old saved indexes are then
# not reused. 2: each passage's words in its document's language (stemmer,
# stop words, tag: text.index_tokens); the languages are in the key too.
# 3: word counts in segments per library (bm25_segments.py), not one
# index per corpus.
BM25_VERSION = "3"

@dataclass
class DocumentTable:
    doc_ids: np.ndarray
    authors: list[list[str]]
    years: np.ndarray  # float, NaN where unknown
    languages: np.ndarray  # str, "" where unknown
    sources: np.ndarray


@dataclass
class PassageLanguages:
    """Each passage's language, as a small code per row into `names` (a
    million rows take 4 MB, not a Python string each); "" where unknown."""
    codes: np.ndarray  # int, one per row
    names: list[str]

    @classmethod
    def of_documents(cls, docs: DocumentTable, doc_index: np.ndarray) -> "PassageLanguages":
        """Every passage in its document's language (an index built from parts)."""
        names, codes = np.unique(docs.languages.astype(str), return_inverse=True)
        return cls(codes[doc_index] if len(doc_index) else np.zeros(0, dtype=np.int64), names.tolist())

    @classmethod
    def of_column(cls, column) -> "PassageLanguages":
        """From an Arrow column of language codes ("" where unknown)."""
        encoded = column.combine_chunks().dictionary_encode() if hasattr(column, "combine_chunks") \
            else column.dictionary_encode()
        return cls(encoded.indices.to_numpy(zero_copy_only=False), encoded.dictionary.to_pylist())

    def counts(self) -> dict[str, int]:
        """How many passages each known language holds ("" left out)."""
        counts = np.bincount(self.codes, minlength=len(self.names)) if len(self.codes) else [0] * len(self.names)
        return {name: int(n) for name, n in zip(self.names, counts) if name and n}

    def rows_in(self, languages) -> np.ndarray:
        """A mask of the rows whose language is among `languages`."""
        return np.isin(np.array(self.names, dtype=object), list(languages))[self.codes] if self.names \
            else np.zeros(len(self.codes), dtype=bool)

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
                 vectors=None, has_vector: np.ndarray | None = None, embedder=None, fingerprint: str = "",
                 passage_languages: PassageLanguages | None = None):
        self.passage_ids = passage_ids
        self.doc_index = doc_index  # each passage's row in docs
        self.docs = docs
        # each passage's language; by default its document's
        self.passage_languages = passage_languages or PassageLanguages.of_documents(docs, doc_index)
        self.bm25 = bm25
        self.vectors = vectors  # float32 ndarray or bfloat16 tensor, rows aligned with passage_ids
        self.has_vector = has_vector if has_vector is not None else np.full(len(passage_ids), vectors is not None)
        self.embedder = embedder  # encodes queries for the vectors
        self.fingerprint = fingerprint
        self.row_of = {pid: i for i, pid in enumerate(passage_ids.tolist())}
        # The approximate first stage (ann.py), for large libraries only.
        self.ann = None
        self._keys_sorted = self._rows_by_key = None
        self._more_rows: dict[int, np.ndarray] = {}

    @classmethod
    def load(cls, lib: Library, model=None, *, vectors: bool = True, progress: bool = False,
             precision: str = "float32", approximate: bool | None = None) -> "SearchIndex":
        """`model`: the embedding model whose vectors to use (a catalogue name
        or folder); by default the one that has embedded most of the library.
        With `vectors=False`, or when nothing is embedded yet, only BM25 runs.
        `precision`: "float32" (exact) or "bfloat16" (half the memory, scores
        to ~3 digits, but not faster on CPUs: bench/search.py).
        `approximate`: whether vector candidates come from the approximate
        index (ann.py) and are rescored exactly; None (the default): when
        the library has at least ann.ANN_MIN_VECTORS vectors."""
        if precision not in ("float32", "bfloat16"):
            raise ValueError(f"precision must be float32 or bfloat16, not {precision!r}")
        fingerprint = corpus_fingerprint(lib)
        table = lib.arrow("SELECT p.passage_id, p.doc_id, coalesce(p.language, d.language, '') AS language "
                          "FROM passages p JOIN documents d USING (doc_id) ORDER BY p.doc_id, p.ordinal")
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
        passage_languages = PassageLanguages.of_column(table.column("language"))
        read_in = np.array([word_language(name or None) for name in passage_languages.names] or [""],
                           dtype=object)[passage_languages.codes]
        bm25 = _synced_bm25(lib, passage_ids.tolist(), read_in.tolist(), progress)
        index = cls(passage_ids, doc_index, docs, bm25, fingerprint=fingerprint, passage_languages=passage_languages)
        model = (model or preferred_embedder(lib)) if vectors else None
        if model is not None:
            mapped = precision == "float32" and index._map_vectors(lib, model, approximate)
            if not mapped:
                index._load_vectors(lib, model, precision)
            if index.vectors is not None and precision == "float32" and _wants_ann(approximate, index):
                index._load_ann(lib, model)
                if not mapped:  # the next load maps them; this one too, from now on
                    index._save_mapped_vectors(lib, model)
        return index

    def _mapped_vectors_place(self, lib: Library, model, has_vector: np.ndarray) -> tuple[Path, str]:
        from readingroom.models.embed import resolve_embedder
        from readingroom.search.ann import ann_folder
        from readingroom.search.mapped_vectors import vectors_folder, vectors_key

        identity = resolve_embedder(model).identity
        return vectors_folder(ann_folder(lib.path, identity)), vectors_key(self.fingerprint, identity, has_vector)

    def _map_vectors(self, lib: Library, model, approximate: bool | None) -> bool:
        """Map the float32 vectors saved for this state of the library
        (mapped_vectors.py) when the approximate first stage will be used;
        False when it will not, or nothing is saved yet (then they are read
        from the library)."""
        from readingroom.models.embed import load_embedder, resolve_embedder
        from readingroom.search.mapped_vectors import open_vectors

        if approximate is False:
            return False
        has_vector = lib.arrow(
            "SELECT p.text_sha256 IN (SELECT text_sha256 FROM embeddings WHERE model = $model) AS has_vector "
            "FROM passages p ORDER BY p.doc_id, p.ordinal",
            {"model": resolve_embedder(model).identity}).column("has_vector").to_numpy(zero_copy_only=False)
        has_vector = np.asarray(has_vector, dtype=bool)
        if not has_vector.any() or not _wants_ann(approximate, int(has_vector.sum())):
            return False
        mapped = open_vectors(*self._mapped_vectors_place(lib, model, has_vector), len(self.passage_ids))
        if mapped is None:
            return False
        self.embedder = load_embedder(model)
        self.vectors, self.has_vector = mapped, has_vector
        return True

    def _save_mapped_vectors(self, lib: Library, model) -> None:
        """Write the vectors read from the library to the cache and map
        them in place of the in-memory matrix, which is then let go."""
        from readingroom.search.mapped_vectors import save_vectors

        try:
            self.vectors = save_vectors(*self._mapped_vectors_place(lib, model, self.has_vector), self.vectors)
        except OSError:  # a cache that cannot be written (full, read-only): they stay in memory
            pass

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

    def _load_ann(self, lib: Library, model) -> None:
        from readingroom.models.embed import resolve_embedder
        from readingroom.search.ann import ann_folder

        shas = lib.arrow("SELECT text_sha256 FROM passages ORDER BY doc_id, ordinal").column("text_sha256")
        self.attach_ann(text_keys(shas.to_pylist()), ann_folder(lib.path, resolve_embedder(model).identity))

    def attach_ann(self, row_keys: np.ndarray, folder: Path | None = None):
        """Use the approximate first stage: `row_keys` is each row's vector
        key (ann.text_keys of its text's sha256; rows with the same text
        share one). The index saved in `folder` is updated in place (or
        built there); with no folder it is built in memory. Returns what the
        update did (ann.SyncReport)."""
        from readingroom.search.ann import AnnIndex, SyncReport, synced_index

        # Each key's first row, and the other rows of keys that several
        # passages share (the same text in two documents: rare).
        order = np.argsort(row_keys, kind="stable")
        self._keys_sorted, first = np.unique(row_keys[order], return_index=True)
        self._rows_by_key = order[first]
        shared = np.flatnonzero(np.diff(first, append=len(order)) > 1)
        self._more_rows = {int(self._keys_sorted[i]): order[first[i] + 1:first[i + 1] if i + 1 < len(first)
                                                            else len(order)] for i in shared.tolist()}
        with_vector = np.flatnonzero(self.has_vector)
        keys, first_with_vector = np.unique(row_keys[with_vector], return_index=True)
        # Each key's row: only the rows the index lacks are read (mapped
        # vectors stay on disk when the saved index is up to date).
        rows = with_vector[first_with_vector]
        if folder is None:
            self.ann, report = AnnIndex.build(keys, self.vectors[rows]), SyncReport(built=True, added=len(keys))
        else:
            self.ann, report = synced_index(folder, keys, self.vectors, rows)
        return report

    def __len__(self) -> int:
        return len(self.passage_ids)

    # --- scoring ------------------------------------------------------------
    def word_languages(self) -> list[str]:
        """The languages the BM25 index reads its passages in (text.word_language
        of each passage's language), sorted."""
        if getattr(self, "_word_languages", None) is None:
            self._word_languages = sorted({word_language(code or None) for code in self.passage_languages.names})
        return self._word_languages

    def known_words(self) -> list[str]:
        """Every word the library uses, folded (text.folded) and sorted: the
        BM25 index's words (stemmed; in any language, its tag dropped) and
        the words of the authors' names. Made once per BM25 index."""
        cached = getattr(self, "_known_words", None)
        if cached is None or cached[0] is not self.bm25:
            vocab = getattr(self.bm25, "vocab_dict", None) or {}
            words = {folded(token.rpartition(":")[2]) for token in vocab}
            words.update(folded(w) for names in self.docs.authors for name in names or () for w in name.split())
            cached = self._known_words = (self.bm25, sorted(words))
        return cached[1]

    def query_tokens(self, query: str, language: str | None = None) -> list[str]:
        """The query's BM25 tokens: read in every language the library holds,
        each reading tagged as its passages are, so that a German word in an
        English question ("Arbeiter") still finds German passages, and a
        filter to one language never empties the list. Hybrid search keeps
        BM25 to the rows in the query's language when it can tell it
        (searcher.same_language_bm25), which removes the cross-language
        noise there. An English-only library reads every query in English,
        as it always has. `language` is accepted for callers that know it,
        and read first."""
        held = self.word_languages()
        if held in ([], ["en"]):
            return tokenize([query])[0]
        first = word_language(language) if language else None
        readings = ([first] if first in held else []) + [h for h in held if h != first]
        return [t for reading in readings for t in index_tokens([query], reading)[0]]

    def bm25_scores(self, query: str, language: str | None = None) -> np.ndarray:
        """Every passage's BM25 score for the query (`language`: the query's,
        when the caller knows it; see query_tokens)."""
        if len(self) == 0:
            return np.zeros(0, dtype=np.float32)
        tokens = self.query_tokens(query, language)
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

    def vector_top(self, query: str, n: int, allowed: np.ndarray | None = None,
                   query_vector: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray] | None:
        """(rows, cosines) of the n passages nearest the query, best first,
        among the allowed rows; None when there are no vectors. Exact for
        small libraries; for large ones the approximate index proposes
        candidates and their exact cosines order them."""
        if self.vectors is None:
            return None
        if self.ann is None:
            scores = self.vector_scores(query, query_vector)
            rows = top_rows(scores, n, allowed)
            return rows, scores[rows]
        q = self.embedder.encode_query(query) if query_vector is None else query_vector
        candidates = self._ann_candidates(q, n, allowed)
        scores = np.asarray(self.vectors[candidates]) @ q  # mapped vectors: only these rows are read
        best = np.lexsort((candidates, -scores))[:n]  # ties: the earlier row, as top_rows
        return candidates[best], scores[best]

    def _ann_candidates(self, q: np.ndarray, n: int, allowed: np.ndarray | None) -> np.ndarray:
        from readingroom.search.ann import ANN_MIN_VECTORS, RESCORE_FACTOR

        usable = self.has_vector if allowed is None else self.has_vector & allowed
        share = usable.mean() if len(usable) else 0.0
        if allowed is not None and share * len(self) < ANN_MIN_VECTORS:
            # A narrow filter: the exact product over the rows it keeps is
            # cheap, and an index asked for its few rows would miss some.
            return np.flatnonzero(usable)
        wanted = int(np.ceil(RESCORE_FACTOR * max(n, 1) / max(share, 1e-9)))
        keys = self.ann.search(q, min(wanted, len(self.ann)))
        at = np.minimum(np.searchsorted(self._keys_sorted, keys), len(self._keys_sorted) - 1)
        known = self._keys_sorted[at] == keys  # a key no passage has any more is dropped
        rows = self._rows_by_key[at[known]]
        if self._more_rows:
            more = [self._more_rows[k] for k in keys[known].tolist() if k in self._more_rows]
            rows = np.concatenate([rows, *more]) if more else rows
        rows = rows[usable[rows]]
        if len(rows) < min(n, int(usable.sum())):
            return np.flatnonzero(usable)  # too few after the filter: search its rows exactly
        return np.sort(rows)

    def mask(self, filters) -> np.ndarray | None:  # filters: a searcher.Filters, or None
        if not filters:
            return None
        if not filters.languages:
            return filters.document_mask(self.docs)[self.doc_index]
        # The language is the passage's own: a German passage inside an
        # English document is found by a German filter, and not by an English one.
        keep = replace(filters, languages=()).document_mask(self.docs)[self.doc_index]
        return keep & self.passage_languages.rows_in([code.lower() for code in filters.languages])

    def languages(self) -> list[str]:
        """The languages of the library's passages (their documents' and their own), sorted."""
        return sorted({code for code in self.passage_languages.names if code}
                      | {code for code in self.docs.languages.tolist() if code})

    def vector_of(self, rows: np.ndarray) -> np.ndarray | None:
        if self.vectors is None:
            return None
        if isinstance(self.vectors, np.ndarray):
            return np.asarray(self.vectors[rows])  # a plain array, also from mapped vectors
        return self.vectors[rows].float().numpy()


def _wants_ann(approximate: bool | None, index: SearchIndex | int) -> bool:
    """`index`: a SearchIndex, or the number of vectors it will have."""
    from readingroom.search.ann import ANN_MIN_VECTORS

    if approximate is None:
        vectors = index if isinstance(index, int) else int(index.has_vector.sum())
        return vectors >= ANN_MIN_VECTORS
    return approximate


def as_precision(matrix: np.ndarray, precision: str):
    if precision == "bfloat16":
        import torch

        return torch.from_numpy(matrix).to(torch.bfloat16)
    return np.ascontiguousarray(matrix, dtype=np.float32)


def build_bm25(texts: list[str], progress: bool = False, languages: list[str | None] | None = None):
    """The bm25s index of `texts`, each read in its language (`languages`,
    aligned with the texts; None: all English)."""
    import bm25s

    retriever = bm25s.BM25()
    if texts:
        retriever.index(language_tokens(texts, languages), show_progress=progress)
    return retriever


def language_tokens(texts: list[str], languages: list[str | None] | None) -> list[list[str]]:
    """text.index_tokens of each text in its language, in the texts' order:
    the texts of one language tokenised together."""
    if languages is None or all(word_language(code) == "en" for code in languages):
        return tokenize(texts)
    rows_of: dict[str, list[int]] = {}
    for row, code in enumerate(languages):
        rows_of.setdefault(word_language(code), []).append(row)
    tokens: list[list[str]] = [[] for _ in texts]
    for language, rows in rows_of.items():
        for row, words in zip(rows, index_tokens([texts[r] for r in rows], language)):
            tokens[row] = words
    return tokens


def bm25_folder() -> Path:
    """Where the BM25 counts are kept (bm25_segments.py): one pool for every
    library (a passage's counts depend only on its id and language, so a
    library's snapshots and copies use the counts already made), per
    version of the index."""
    return cache_dir() / "bm25" / f"segments-v{BM25_VERSION}"


def _synced_bm25(lib: Library, passage_ids: list[str], languages: list[str], progress: bool):
    """The BM25 index of the library's passages (rows in `passage_ids`'
    order, each read in its language): the counts kept in the cache, and
    the passages they do not hold yet counted and added there."""
    from functools import partial

    from tqdm.auto import tqdm

    from readingroom.search.bm25 import count_words_in_languages
    from readingroom.search.bm25_segments import synced_bm25

    # Read as a build from scratch of a library this size reads its passages:
    # Arrow's word splitting from BM25_STREAM_MIN on, bm25s's below.
    count = count_words_in_languages if len(passage_ids) >= BM25_STREAM_MIN else _count_as_bm25s
    with tqdm(total=0, unit="passage", desc="BM25", disable=not progress) as bar:
        index, _ = synced_bm25(bm25_folder(), passage_ids, languages,
                               partial(_passage_texts, lib, passage_ids, languages), count, bar)
    return index


def _count_as_bm25s(batch):
    from readingroom.search.bm25 import count_tokens

    texts, languages = batch
    return count_tokens(language_tokens(texts.to_pylist(), languages))


def _passage_texts(lib: Library, passage_ids: list[str], languages: list[str], rows: np.ndarray):
    """Batches of (texts, languages) of the passages at `rows` (ascending)."""
    import pyarrow as pa

    cursor = lib.con.cursor()
    try:
        if len(rows) == len(passage_ids):  # all of them: one scan in row order
            query = "SELECT p.text FROM passages p JOIN documents d USING (doc_id) ORDER BY p.doc_id, p.ordinal"
        else:
            cursor.register("bm25_wanted", pa.table({"passage_id": [passage_ids[i] for i in rows.tolist()],
                                                     "position": np.arange(len(rows))}))
            query = "SELECT p.text FROM bm25_wanted w JOIN passages p USING (passage_id) ORDER BY w.position"
        done = 0
        for batch in cursor.sql(query).to_arrow_reader(BM25_BATCH):
            texts = batch.column(0)
            yield texts, [languages[i] for i in rows[done:done + len(texts)].tolist()]
            done += len(texts)
    finally:
        cursor.close()


# From this many passages on, BM25 reads words with Arrow's compute kernels
# in batches (bm25.py): the same index, in a fraction of the time and
# memory. Below it, with bm25s's tokeniser, as it always has.
BM25_STREAM_MIN = 200_000
BM25_BATCH = 50_000


def preferred_embedder(lib: Library) -> str | None:
    """The embedding model with vectors for the most passages (ties: the
    newest); its catalogue name, or None if nothing is embedded."""
    models = lib.embedding_models()
    if models.empty:
        return None
    models = models.assign(covered=models["vectors"]).sort_values(["covered", "created"], ascending=False)
    return models.iloc[0]["name"]
