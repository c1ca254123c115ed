"""BM25 kept up to date as passages arrive: the word counts kept in
segments, the statistics that tie them together summed when the index is
loaded.

Building BM25 means reading every passage's text and splitting, stemming
and counting its words (bm25.py: at 1M passages 52-76 s on two idle
cores before 2026-12-02, 0.57-0.59x that since: bench/scale.py). Until this module that was done again for the whole library
whenever a single passage was added, removed or changed (the cache was
keyed by the corpus's fingerprint). Yet a passage contributes to BM25 only
its (stem, count) pairs and its length; what ties the passages together,
each stem's document frequency (its IDF) and the average length, are sums.
So:

- The counts are kept on disk in segments, one per batch of passages
  counted: each passage's id (a hash of its document and text, so the same
  id always means the same words), the language its words were read in,
  its length, and its (stem, count) pairs column by column (stem by stem).
- Loading matches the segments' passages to the library's rows by id.
  Passages in no segment (new ones, or ones whose document's language
  changed) are counted, and only they, into a new segment. Passages in a
  segment but no longer in the library are skipped, and left out of every
  sum.
- The document frequencies and lengths are summed over the passages that
  are in the library; the weight idf * tf / (tf + k1 (1 - b + b len / avg))
  of a stem in a passage is computed when a query asks for that stem, with
  the same float32 operations as the full build (bm25.StreamingBM25.finish),
  so the scores equal a rebuild's exactly (tests/test_bm25_incremental.py).
- Compaction keeps a query's cost from growing with the number of ingests:
  with more than MAX_SEGMENTS segments, all but the largest are merged into
  one, and a segment of which more than DEAD_SHARE is no longer in the
  library is rewritten without those passages. Merging only moves counts:
  no text is read or stemmed again.

One pool of segments serves every library (index.bm25_folder): a
passage's counts depend only on its id and the language it is read in, so
the app's snapshots of a library (a new file, ui/snapshot.py, each time the
library changes or the app starts), a library and a subset copied from it,
all use the counts already made. A segment is therefore never deleted
because one library does not use it: a load touches the segments it uses,
and those unused for KEEP_UNUSED_S (or beyond the KEEP_UNUSED most
recently used of the unused) are deleted. Where several segments hold a
passage, the newest is used. Merging writes the new segment and leaves the
old ones to that rule.

Several processes may load at once: each writes whole segments, under a
name of its own, renamed into place, so a half-written segment is never
read; a damaged segment is removed and its passages counted again.
Everything is plain .npy (loaded with allow_pickle=False) and JSON.
"""
from __future__ import annotations

import itertools
import json
import os
import shutil
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from readingroom.search.bm25 import StreamingBM25, idf_of, length_norm

MAX_SEGMENTS = 8  # a library using more than this: all but the largest merged into one
DEAD_SHARE = 0.25  # a segment with more of its passages unused by the library is rewritten without them
KEEP_UNUSED_S = 3 * 24 * 3600  # a segment no load has used for this long is deleted
ASKED_ENTRIES = 20_000_000  # stems' weights kept once asked for: 12 bytes an entry
KEEP_UNUSED = 64  # and of the unused ones, only this many most recently used are kept
_ARRAYS = ("passage_ids", "languages", "lengths", "indptr", "docs", "counts")


@dataclass
class Segment:
    """The word counts of some passages, column by column."""

    passage_ids: np.ndarray  # bytes, the passages counted
    languages: np.ndarray  # str, the language each was read in (text.word_language)
    lengths: np.ndarray  # int32, words kept per passage
    indptr: np.ndarray  # int64, per stem: where its entries start in docs and counts
    docs: np.ndarray  # int32, each entry's passage (a position in passage_ids), stem by stem
    counts: np.ndarray  # float32, how often the stem occurs in that passage
    stems: list[str]
    name: str = ""  # its folder's name once saved

    @classmethod
    def of_columns(cls, passage_ids, languages, indptr, docs, counts, lengths, stems) -> "Segment":
        """From a builder's entries column by column (bm25.StreamingBM25.columns)."""
        ids = np.asarray(passage_ids)
        if ids.dtype.kind != "S":
            ids = np.array(list(passage_ids), dtype=bytes)  # hex digests: ASCII, as synced_bm25 matches them
        return cls(ids, np.asarray(languages, dtype=str), np.asarray(lengths, dtype=np.int32),
                   np.asarray(indptr, dtype=np.int64), np.asarray(docs, dtype=np.int32),
                   np.asarray(counts, dtype=np.float32), list(stems))

    def __len__(self) -> int:
        return len(self.lengths)

    def entry_stems(self) -> np.ndarray:
        """Each entry's stem (a position in stems)."""
        return np.repeat(np.arange(len(self.stems), dtype=np.int32), np.diff(self.indptr))

    def save(self, folder: Path) -> "Segment":
        """Written beside and renamed into place, under a name that sorts
        after every segment saved before it."""
        folder.mkdir(parents=True, exist_ok=True)
        name = f"segment-{time.time_ns():020d}-{os.getpid()}"
        partial = folder / f".partial-{name}"
        partial.mkdir()
        for field in _ARRAYS:
            np.save(partial / f"{field}.npy", getattr(self, field), allow_pickle=False)
        (partial / "stems.json").write_text(json.dumps(self.stems))
        (partial / "meta.json").write_text(json.dumps({"passages": len(self), "entries": len(self.docs)}))
        partial.rename(folder / name)
        self.name = name
        return self

    @classmethod
    def load(cls, path: Path) -> "Segment | None":
        """The segment saved there, or None when it is damaged."""
        try:
            meta = json.loads((path / "meta.json").read_text())
            # The entries, the bulk, are mapped, not read: a query reads the columns it needs.
            mapped = "r" if meta["entries"] else None
            arrays = {field: np.load(path / f"{field}.npy", allow_pickle=False,
                                     mmap_mode=mapped if field in ("docs", "counts") else None)
                      for field in _ARRAYS}
            stems = json.loads((path / "stems.json").read_text())
        except (OSError, ValueError, KeyError, TypeError):
            return None
        n, entries = meta.get("passages"), meta.get("entries")
        if not (len(arrays["passage_ids"]) == len(arrays["languages"]) == len(arrays["lengths"]) == n
                and len(arrays["indptr"]) == len(stems) + 1 and arrays["indptr"][-1] == entries
                and len(arrays["docs"]) == len(arrays["counts"]) == entries
                and (entries == 0 or int(arrays["docs"].max()) < n)):
            return None
        return cls(**arrays, stems=stems, name=path.name)


class SegmentedBM25:
    """The BM25 index of a library's rows over its segments: answers
    `vocab_dict` and `get_scores` as bm25s.BM25 does (index.SearchIndex
    asks nothing else). `rows[i]`: segment i's passages' rows, -1 where a
    passage is not in the library (any more, or not read in that language)."""

    def __init__(self, segments: list[Segment], rows: list[np.ndarray], n_rows: int):
        self.n_rows = n_rows
        # Stems numbered from the largest segment's (dict(zip) runs in C), then the others' new ones.
        largest = max(range(len(segments)), key=lambda i: len(segments[i].stems), default=None)
        names = list(segments[largest].stems) if segments else []
        vocabulary: dict[str, int] = dict(zip(names, range(len(names))))
        stem_ids = []
        for i, seg in enumerate(segments):
            if i == largest:
                stem_ids.append(np.arange(len(seg.stems), dtype=np.int64))
                continue
            before = len(vocabulary)
            stem_ids.append(np.fromiter((vocabulary.setdefault(s, len(vocabulary)) for s in seg.stems),
                                        dtype=np.int64, count=len(seg.stems)))
            names += [seg.stems[j] for j in np.flatnonzero(stem_ids[-1] >= before).tolist()]
        df = np.zeros(len(vocabulary), dtype=np.int64)
        lengths = np.zeros(n_rows, dtype=np.int32)
        self._parts = []
        for seg, seg_rows, ids in zip(segments, rows, stem_ids):
            live = seg_rows >= 0
            per_stem = np.diff(seg.indptr)
            if not live.all():
                per_stem = np.bincount(seg.entry_stems()[live[seg.docs]], minlength=len(seg.stems))
            df[ids] += per_stem  # a segment holds each stem once
            lengths[seg_rows[live]] = seg.lengths[live]
            column = np.full(len(vocabulary), -1, dtype=np.int32)
            column[ids] = np.arange(len(ids), dtype=np.int32)
            self._parts.append((seg, seg_rows, column, bool(live.all())))
        # The same statistics, in the same float32 operations, as the full build (bm25.py).
        self.idf = idf_of(df, n_rows)
        self.norm = length_norm(lengths)
        for unused in np.flatnonzero(df == 0).tolist():  # only in passages the library no longer has
            del vocabulary[names[unused]]
        self.vocab_dict = vocabulary
        # Each stem's (rows, weights) once a query has asked for it: a word asked
        # again costs what it costs in bm25s. Bounded: cleared when it grows past the limit.
        self._asked: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self._asked_entries = 0

    @property
    def segments(self) -> list[Segment]:
        return [part[0] for part in self._parts]

    def get_scores(self, tokens: list[str]) -> np.ndarray:
        """Every row's BM25 score for the query's tokens (those the index
        does not know add nothing; a token twice counts twice, as in bm25s)."""
        scores = np.zeros(self.n_rows, dtype=np.float32)
        for token in tokens:
            stem = self.vocab_dict.get(token)
            if stem is not None:
                rows, weights = self._column(stem)
                scores[rows] += weights  # a row once per stem
        return scores

    def _column(self, stem: int) -> tuple[np.ndarray, np.ndarray]:
        """The rows holding the stem and its weight in each."""
        found = self._asked.get(stem)  # one get: the app's sessions share the index across threads
        if found is not None:
            return found
        all_rows, all_weights = [], []
        for seg, seg_rows, column, all_live in self._parts:
            at = column[stem]
            if at < 0:
                continue
            start, end = seg.indptr[at], seg.indptr[at + 1]
            rows, tf = seg_rows[seg.docs[start:end]], seg.counts[start:end]
            if not all_live:
                keep = rows >= 0
                rows, tf = rows[keep], tf[keep]
            all_rows.append(rows)
            all_weights.append(self.idf[stem] * (tf / (self.norm[rows] + tf)))
        found = (np.concatenate(all_rows), np.concatenate(all_weights))
        if self._asked_entries + len(found[0]) > max(ASKED_ENTRIES, self.n_rows):
            self._asked.clear()
            self._asked_entries = 0
        self._asked[stem] = found
        self._asked_entries += len(found[0])
        return found


@dataclass
class SyncReport:
    """What bringing the segments up to date did."""

    counted: int = 0  # passages read and counted: new, or read in another language now
    unused: int = 0  # counted passages not in the library (left out of every sum)
    merged: int = 0  # segments merged or rewritten into one
    segments: int = 0  # segments in use afterwards


def synced_bm25(folder: Path, passage_ids: list[str], languages: list[str],
                read: Callable[[np.ndarray], Iterable], count: Callable, progress=None
                ) -> tuple[SegmentedBM25, SyncReport]:
    """The BM25 index of the passages `passage_ids` (the library's rows, in
    order; `languages`: the language each is read in), from the segments in
    `folder`: the passages no segment holds are counted into a new one.
    `read(rows)` yields batches of those rows' texts (in row order) for
    `count` (bm25.count_words_in_languages or the like); `progress`: a tqdm
    bar, updated by passages counted."""
    report = SyncReport()
    n = len(passage_ids)
    # Segments hold the ids as bytes; numpy encodes, dict(zip) and map run in C.
    row_of = dict(zip(np.array(passage_ids, dtype=bytes).tolist(), range(n))) if n else {}
    languages = np.asarray(languages, dtype=str)
    claimed = np.zeros(n, dtype=bool)
    segments, rows, unused = [], [], []
    # Newest first: where several segments hold a passage, the newest (a merge's) is used.
    for path in sorted(folder.glob("segment-*"), reverse=True) if folder.is_dir() else []:
        seg = Segment.load(path)
        if seg is None:
            shutil.rmtree(path, ignore_errors=True)  # damaged: its passages are counted again below
            continue
        seg_rows = np.fromiter(map(row_of.get, seg.passage_ids.tolist(), itertools.repeat(-1, len(seg))),
                               dtype=np.int64, count=len(seg))
        found = np.flatnonzero(seg_rows >= 0)
        usable = (languages[seg_rows[found]] == seg.languages[found]) & ~claimed[seg_rows[found]]
        seg_rows[found[~usable]] = -1
        claimed[seg_rows[found[usable]]] = True
        if not usable.any():
            unused.append(path)  # another library's, or superseded: kept a while (module notes)
            continue
        _touch(path)
        segments.append(seg)
        rows.append(seg_rows)
    _forget_unused(unused)
    missing = np.flatnonzero(~claimed)
    if len(missing):
        if progress is not None:
            progress.reset(total=len(missing))
        builder = StreamingBM25()
        for batch in read(missing):
            counts = count(batch)
            builder.add(counts)
            if progress is not None:
                progress.update(len(counts[3]))
        if builder.n_docs != len(missing):
            raise RuntimeError(f"BM25: asked for the texts of {len(missing)} passages, read {builder.n_docs}")
        new = Segment.of_columns([passage_ids[i] for i in missing.tolist()], languages[missing], *builder.columns())
        segments.append(new.save(folder))
        rows.append(missing.astype(np.int64))
        report.counted = len(missing)
    segments, rows, report.merged = compacted(folder, segments, rows)
    report.unused = sum(int((r < 0).sum()) for r in rows)
    report.segments = len(segments)
    return SegmentedBM25(segments, rows, n), report


def compacted(folder: Path, segments: list[Segment], rows: list[np.ndarray]
              ) -> tuple[list[Segment], list[np.ndarray], int]:
    """The segments after merging (see the module's notes), and how many
    were merged."""
    live = [int((r >= 0).sum()) for r in rows]
    chosen = {i for i, seg in enumerate(segments) if live[i] < (1 - DEAD_SHARE) * len(seg)}
    if len(segments) > MAX_SEGMENTS:
        largest = max(range(len(segments)), key=live.__getitem__)
        chosen |= set(range(len(segments))) - {largest}
    if not chosen:
        return segments, rows, 0
    order = sorted(chosen)
    merged, merged_rows = merge([segments[i] for i in order], [rows[i] for i in order])
    merged.save(folder)  # the newest: used before the ones merged, which other libraries may still use
    kept = [i for i in range(len(segments)) if i not in chosen]
    return [segments[i] for i in kept] + [merged], [rows[i] for i in kept] + [merged_rows], len(chosen)


def merge(segments: list[Segment], rows: list[np.ndarray]) -> tuple[Segment, np.ndarray]:
    """One segment of the passages of `segments` that are in the library
    (rows >= 0), and their rows: the counts moved, no text read."""
    builder = StreamingBM25()
    ids, languages, kept_rows = [], [], []
    for seg, seg_rows in zip(segments, rows):
        live = seg_rows >= 0
        position = np.cumsum(live, dtype=np.int64) - 1  # each kept passage's place in the merged one
        keep = live[seg.docs]
        builder.add((position[seg.docs[keep]].astype(np.int32), seg.entry_stems()[keep],
                     np.asarray(seg.counts[keep]), seg.lengths[live], seg.stems))
        ids.append(seg.passage_ids[live])
        languages.append(seg.languages[live])
        kept_rows.append(seg_rows[live])
    merged = Segment.of_columns(np.concatenate(ids), np.concatenate(languages), *builder.columns())
    return merged, np.concatenate(kept_rows)


def _touch(path: Path) -> None:
    try:
        os.utime(path)
    except OSError:
        pass


def _forget_unused(paths: list[Path]) -> None:
    """Delete the unused segments no load has used for KEEP_UNUSED_S, or
    beyond the KEEP_UNUSED most recently used."""
    def last_used(path: Path) -> float:
        try:
            return path.stat().st_mtime
        except OSError:
            return 0.0

    now = time.time()
    for rank, path in enumerate(sorted(paths, key=last_used, reverse=True)):
        if rank >= KEEP_UNUSED or now - last_used(path) > KEEP_UNUSED_S:
            shutil.rmtree(path, ignore_errors=True)
