"""A streaming BM25 build for large libraries: the same index bm25s builds,
without a Python object per word.

bm25s (index.py) tokenises in Python, a list of strings per passage, and
holds every passage's text and tokens at once: at a million passages that
took 184 s and 6.7 GB (issue 21). Here the texts arrive in batches of
Arrow strings; each batch is lower-cased by Arrow (C++), split into words
by classifying its UTF-8 bytes with numpy (`split_words`: Arrow's regex
split took 60% of the build), its stop words dropped, its distinct words
stemmed once (PyStemmer, as bm25s does) and counted per passage with
numpy, so a batch leaves only (passage, stem, count) triples behind, kept
stem by stem in 4 bytes each (StreamingBM25). When all batches are in, the
document frequencies, lengths and average length give each triple its
BM25 weight (bm25s's defaults: the "lucene" variant, k1 1.5, b 0.75), laid
out a batch at a time as the column-compressed matrix bm25s queries:
`build_streaming` returns a `bm25s.BM25`. A library's index keeps the
counts themselves instead, as segments that later ingests add to
(bm25_segments.py), and weighs them with the same `idf_of` and
`length_norm` when a query asks.

At a million passages (bench/scale.py, 2 cores): see the figures there;
the peak is the imports, one batch's work, the triples (~375 MB) and the
finished matrix (8 bytes an entry, ~750 MB), never two copies of either.

Each passage is read in its language (text.index_tokens: that language's
stemmer, and stop words where text.BM25_STOP_WORD_LANGUAGES says, its
stems tagged "de:..."; English untagged), as
index.build_bm25 reads it: a batch's texts are counted a language at a
time (`count_words_in_languages`).

It equals bm25s's index (tests/test_scale.py compares the scores) except
where Python's regex and Arrow's differ on what a word character is: both
take letters, digits and "_" in any script.
"""
from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from readingroom.text import BM25_STOP_WORD_LANGUAGES, stemmer, stop_words, token_tag, word_language

K1, B = 1.5, 0.75  # bm25s's defaults, as index.build_bm25 uses them
NOT_WORD = r"[^\pL\pN_]+"  # bm25s: (?u)\b\w\w+\b on lower-cased text
WORD = r"^[\pL\pN_]$"  # a word character, as NOT_WORD's complement


def _ascii_word_bytes(data: np.ndarray) -> np.ndarray:
    """Which bytes are ASCII letters, digits or "_" (comparisons, which
    numpy vectorises, in place: a lookup table is several times slower)."""
    shifted = data | np.uint8(0x20)  # upper case to lower
    shifted -= np.uint8(ord("a"))
    word = shifted < 26
    np.subtract(data, np.uint8(ord("0")), out=shifted)
    word |= shifted < 10
    del shifted
    word |= data == ord("_")
    return word


def split_words(texts: pa.Array) -> tuple[pa.Array, np.ndarray]:
    """Every word of `texts` (maximal runs of letters, digits and "_", as
    splitting at NOT_WORD gives them, empty pieces left out) and the text
    each came from. The same as pc.split_pattern_regex(texts, NOT_WORD),
    2-3x faster (measured on 50k passages): the bytes are classified with
    numpy, the characters beyond ASCII once each with Arrow's regex (RE2,
    the same classes)."""
    if not pa.types.is_large_string(texts.type):
        texts = texts.cast(pa.string())
    n = len(texts)
    offsets_type = np.int64 if pa.types.is_large_string(texts.type) else np.int32
    _, offsets_buffer, data_buffer = texts.buffers()
    offsets = np.frombuffer(offsets_buffer, dtype=offsets_type)[texts.offset:texts.offset + n + 1].astype(np.int64)
    data = np.frombuffer(data_buffer, dtype=np.uint8)[offsets[0]:offsets[-1]] if data_buffer is not None and n \
        else np.zeros(0, np.uint8)
    offsets -= offsets[0] if n else 0
    word = _ascii_word_bytes(data)
    leads = np.flatnonzero(data >= 0xC0)  # a character beyond ASCII starts here (UTF-8)
    if len(leads):
        width = 2 + (data[leads] >= 0xE0) + (data[leads] >= 0xF0)
        code = data[leads].astype(np.uint32)
        for k in (1, 2, 3):
            more = width > k
            code[more] = (code[more] << 8) | data[leads[more] + k]
        distinct, which = np.unique(code, return_inverse=True)
        characters = [int(c).to_bytes((int(c).bit_length() + 7) // 8, "big").decode("utf-8") for c in distinct.tolist()]
        is_word = pc.match_substring_regex(pa.array(characters, pa.string()), WORD).to_numpy(zero_copy_only=False)[which]
        for k in (0, 1, 2, 3):
            part = width > k
            word[leads[part] + k] = is_word[part]
    # A word starts where a word byte follows a non-word byte or a text's
    # start, and ends likewise (greater: a and not b, in place, no temporaries).
    text_starts, text_ends = offsets[:-1], offsets[1:]
    edge = word.copy()
    np.greater(word[1:], word[:-1], out=edge[1:])
    at = text_starts[text_starts < len(data)]
    edge[at] = word[at]
    starts = np.flatnonzero(edge)
    edge[:] = word
    np.greater(word[:-1], word[1:], out=edge[:-1])
    at = text_ends[text_ends > 0] - 1
    edge[at] = word[at]
    sizes = np.flatnonzero(edge)  # each word's last byte, then its size
    del edge
    sizes += 1
    sizes -= starts
    owner = np.searchsorted(offsets, starts, side="right") - 1
    del starts
    large = len(data) >= 2**31
    word_offsets = np.zeros(len(sizes) + 1, dtype=np.int64 if large else np.int32)
    np.cumsum(sizes, out=word_offsets[1:])
    del sizes
    words = pa.Array.from_buffers(pa.large_string() if large else pa.string(), len(owner),
                                  [None, pa.py_buffer(word_offsets), pa.py_buffer(data[word])])
    return words, owner




def count_words(texts: pa.Array | list[str], stopwords: list[str], language: str = "en"):
    """One batch's (passage, stem, count) triples and words kept per passage;
    stems numbered within the batch, their strings in `stems` (tagged with
    `language`, text.token_tag). A pure function of the texts: worker
    processes run it side by side."""
    texts = pa.array(texts, pa.string()) if isinstance(texts, list) else texts
    flat, owner = split_words(pc.utf8_lower(texts.fill_null("")))
    keep = pc.and_(pc.greater_equal(pc.utf8_length(flat), 2),
                   pc.invert(pc.is_in(flat, value_set=pa.array(stopwords, pa.string()))))
    flat, owner = flat.filter(keep), owner[keep.to_numpy(zero_copy_only=False)]
    lengths = np.bincount(owner, minlength=len(texts)).astype(np.int32)
    encoded = pc.dictionary_encode(flat)
    stemmed = stemmer(word_language(language)).stemWords(encoded.dictionary.to_pylist())
    tag = token_tag(language)
    if tag:
        stemmed = [tag + s for s in stemmed]
    stems, stem_of_word = np.unique(np.array(stemmed, dtype=object), return_inverse=True) \
        if stemmed else (np.zeros(0, dtype=object), np.zeros(0, dtype=np.int64))
    word = encoded.indices.to_numpy()
    return (*count_pairs(owner, stem_of_word[word], len(texts)), lengths, stems.tolist())


def count_pairs(owner: np.ndarray, stem_of_word: np.ndarray, n_passages: int):
    """Each (passage, stem) once, with its count, from each word's passage
    and stem: one sort of a combined key, stem by stem and in each stem
    passage by passage (the order StreamingBM25.add keeps them in)."""
    width = max(n_passages, 1)
    unique, counts = np.unique(stem_of_word.astype(np.int64) * width + owner, return_counts=True)
    return (unique % width).astype(np.int32), (unique // width).astype(np.int32), counts.astype(np.float32)


def count_tokens(tokens: list[list[str]]):
    """`count_words`'s triples of passages already read into stems
    (index.language_tokens: bm25s's tokeniser, as libraries below
    index.BM25_STREAM_MIN are read)."""
    lengths = np.fromiter((len(words) for words in tokens), dtype=np.int32, count=len(tokens))
    owner = np.repeat(np.arange(len(tokens), dtype=np.int64), lengths)
    stem_id: dict[str, int] = {}  # numbered as met: a dict, not a sort of Python strings
    stem_of_word = np.fromiter((stem_id.setdefault(w, len(stem_id)) for words in tokens for w in words),
                               dtype=np.int64, count=int(lengths.sum()))
    return (*count_pairs(owner, stem_of_word, len(tokens)), lengths, list(stem_id))


def count_words_in_languages(batch: tuple[pa.Array | list[str], pa.Array | list[str | None]]):
    """`count_words` of a batch of (texts, their languages): each language's
    texts with its stop words and stemmer, the counts put back in the
    batch's passage order."""
    texts, languages = batch
    texts = pa.array(texts, pa.string()) if isinstance(texts, list) else texts
    codes = [word_language(c) for c in (languages.to_pylist() if isinstance(languages, pa.Array) else languages)]
    groups: dict[str, list[int]] = {}
    for row, code in enumerate(codes):
        groups.setdefault(code, []).append(row)
    dropped = {language: sorted(set(stop_words(language))) if language in BM25_STOP_WORD_LANGUAGES else []
               for language in groups}
    if len(groups) <= 1:
        language = next(iter(groups), "en")
        return count_words(texts, dropped.get(language, sorted(set(stop_words("en")))), language)
    docs, stem_ids, counts, all_stems = [], [], [], []
    lengths = np.zeros(len(texts), dtype=np.int32)
    for language, rows in groups.items():
        rows = np.array(rows, dtype=np.int64)
        d, s, c, n, stems = count_words(texts.take(pa.array(rows)), dropped[language], language)
        docs.append(rows[d].astype(np.int32))
        stem_ids.append(s + np.int32(len(all_stems)))  # tagged stems never collide across languages
        counts.append(c)
        lengths[rows] = n
        all_stems += stems
    return np.concatenate(docs), np.concatenate(stem_ids), np.concatenate(counts), lengths, all_stems


class StreamingBM25:
    """Feed batches' counts in passage order with `add`, then `finish`
    (or `columns`, for a segment).

    Each batch's entries are kept as they come, stem by stem: its stems'
    columns, how many entries each has, and each entry's passage (within
    the batch) and count, both as uint16 where they fit (4 bytes an entry:
    ~375 MB at a million passages). The whole matrix (8 bytes an entry) is
    then laid out column by column, one batch at a time, each batch let go
    once placed: nothing is concatenated or sorted whole, so the peak is
    12 bytes an entry and a batch's work (issue 21: 2 GB at 1M)."""

    def __init__(self):
        self.stem_id: dict[str, int] = {}  # stemmed word -> column
        # Per batch: (columns of its stems, entries per stem, its first passage, passages within
        # the batch, counts), entries stem by stem.
        self.parts: list[tuple[np.ndarray, np.ndarray, int, np.ndarray, np.ndarray]] = []
        self.lengths: list[np.ndarray] = []  # words kept per passage
        self.n_docs = 0

    def add(self, batch_counts) -> None:
        """A batch's (passage, stem, count) triples (count_words), passages
        numbered within the batch, stems within `stems`."""
        docs, local_stems, counts, lengths, stems = batch_counts
        docs, local_stems = np.asarray(docs, dtype=np.int32), np.asarray(local_stems)
        counts = np.asarray(counts, dtype=np.float32)
        step, next_doc = np.diff(local_stems), np.diff(docs)
        if ((step < 0) | ((step == 0) & (next_doc <= 0))).any():  # not stem by stem, passages in order
            order = np.lexsort((docs, local_stems))
            docs, local_stems, counts = docs[order], local_stems[order], counts[order]
        del step, next_doc
        columns = np.fromiter((self.stem_id.setdefault(s, len(self.stem_id)) for s in stems),
                              dtype=np.int64, count=len(stems))
        per_stem = np.bincount(local_stems, minlength=len(stems)) if len(stems) else np.zeros(0, np.int64)
        used = per_stem > 0  # a batch's columns are distinct: `df[columns] += per_stem` counts each once
        self.parts.append((columns[used], per_stem[used], self.n_docs, _narrow(docs), _narrow(counts)))
        self.lengths.append(np.asarray(lengths, dtype=np.int32))
        self.n_docs += len(lengths)

    def document_frequency(self) -> np.ndarray:
        """Passages holding each stem (a column's entries)."""
        df = np.zeros(len(self.stem_id), dtype=np.int64)
        for columns, per_stem, *_ in self.parts:
            df[columns] += per_stem
        return df

    def all_lengths(self) -> np.ndarray:
        return np.concatenate(self.lengths) if self.lengths else np.zeros(0, np.int32)

    def _laid_out(self, df: np.ndarray, value) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(indptr, passages, value(stems, passages, counts)) column by column,
        each column's passages in order; the batches are let go as placed."""
        indptr = np.zeros(len(df) + 1, dtype=np.int64)
        np.cumsum(df, out=indptr[1:])
        docs = np.empty(indptr[-1], dtype=np.int32)
        data = np.empty(indptr[-1], dtype=np.float32)
        cursor = indptr[:-1].copy()  # where each column's next entries go
        self.parts.reverse()
        while self.parts:  # in passage order: a column's entries from later batches come after
            columns, per_stem, first_doc, batch_docs, counts = self.parts.pop()
            batch_docs = batch_docs.astype(np.int32) + np.int32(first_doc)
            counts = counts.astype(np.float32)
            first = np.cumsum(per_stem) - per_stem  # each stem's first entry in the batch
            to = np.repeat(cursor[columns] - first, per_stem)
            to += np.arange(len(batch_docs))
            docs[to] = batch_docs
            data[to] = value(np.repeat(columns, per_stem), batch_docs, counts)
            cursor[columns] += per_stem
            del columns, per_stem, batch_docs, counts, first, to
        return indptr, docs, data

    def columns(self):
        """Everything added, column by column (Segment.of_columns takes it):
        indptr over the stems that have entries, each entry's passage and
        count, words kept per passage, and those stems."""
        df = self.document_frequency()
        lengths = self.all_lengths()
        stems = list(self.stem_id)
        indptr, docs, counts = self._laid_out(df, lambda stem, doc, tf: tf)
        used = df > 0
        if not used.all():  # stems whose every entry was left out (a merge of passages no longer used)
            indptr = np.concatenate([[0], np.cumsum(df[used])]).astype(np.int64)
            stems = [s for s, u in zip(stems, used.tolist()) if u]
        return indptr, docs, counts, lengths, stems

    def finish(self):
        """The bm25s.BM25 of everything added."""
        import bm25s

        n_docs, n_vocab = self.n_docs, len(self.stem_id) + 1  # and bm25s's empty token "", last
        df = np.append(self.document_frequency(), 0)
        idf = idf_of(df, n_docs)
        norm = length_norm(self.all_lengths())
        self.lengths = []
        # The weight of each entry, in the float32 operations bm25_segments.py repeats.
        indptr, indices, data = self._laid_out(df[:-1], lambda stem, doc, tf: idf[stem] * (tf / (norm[doc] + tf)))
        indptr = np.append(indptr, indptr[-1])  # the empty column
        if indptr[-1] < np.iinfo(np.int32).max:
            indptr = indptr.astype(np.int32)  # as scipy's column-compressed matrix numbers them
        retriever = bm25s.BM25(k1=K1, b=B)
        retriever.scores = {"data": data, "indices": indices, "indptr": indptr, "num_docs": n_docs}
        vocab = dict(self.stem_id)
        vocab.setdefault("", n_vocab - 1)
        retriever.vocab_dict = vocab
        retriever.unique_token_ids_set = set(vocab.values())
        retriever.nonoccurrence_array = None  # the lucene variant has none
        return retriever


def _narrow(values: np.ndarray) -> np.ndarray:
    """`values` (whole numbers) as uint16 when they all fit, else as they are."""
    if len(values) and (values.min() < 0 or values.max() > np.iinfo(np.uint16).max):
        return values
    narrow = values.astype(np.uint16)
    return narrow if np.array_equal(narrow, values) else values


def idf_of(document_frequency: np.ndarray, n_docs: int) -> np.ndarray:
    """Each stem's IDF from the number of passages holding it (lucene's, as bm25s)."""
    df = document_frequency
    return np.log(1 + (n_docs - df + 0.5) / (df + 0.5)).astype(np.float32)


def length_norm(lengths: np.ndarray) -> np.ndarray:
    """Each passage's k1 * (1 - b + b * length / average length): a term's
    weight in it is idf * tf / (tf + this)."""
    average = lengths.mean() if len(lengths) else 1.0
    return (K1 * ((1 - B) + B * lengths / average)).astype(np.float32)


def build_streaming(batches: Iterable, stopwords=None, workers: int = 1, progress=None):
    """A bm25s.BM25 of the texts in `batches` (in passage order), the
    batches counted by `workers` processes side by side. A batch is texts
    (English, read with `stopwords`) or, with `stopwords` None, a pair
    (texts, their languages)."""
    from functools import partial

    from readingroom.workers import ordered_map

    count = count_words_in_languages if stopwords is None else partial(count_words, stopwords=sorted(set(stopwords)))
    builder = StreamingBM25()
    for counts in ordered_map(count, batches, workers):
        builder.add(counts)
        if progress is not None:
            progress.update(len(counts[3]))
    return builder.finish()
