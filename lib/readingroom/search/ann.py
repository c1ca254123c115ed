"""The approximate first stage of vector search, for large libraries.

Below `ANN_MIN_VECTORS` passages the exact product of every vector with the
query is as fast as any index (~6 ms at 100k x 384 on two idle cores) and
misses nothing, so small libraries never use this module and their results
are what they always were.

Above it, an inverted-file index of 8-bit codes (faiss IndexIVFScalarQuantizer:
the vectors clustered into `nlist` lists by k-means, each vector stored as
one byte per dimension, 384 bytes a vector) proposes candidates from the
`nprobe` lists nearest the query; the caller rescores them exactly with the
float32 vectors (index.py), so the order of what is returned is exact and
only a candidate the lists missed can be lost (bench/scale.py measures that
recall against the exact search).

Keys are stable across ingests: the first 63 bits of each vector's text
sha256, so a passage keeps its key when others are added before it, and the
index is updated in place, not rebuilt, when passages arrive or go: new
vectors are coded and added to their lists, vectors no longer in the library
are removed. It is trained again from scratch only when the library has
grown `RETRAIN_GROWTH` times past the size it was trained at (the lists
would be too long) or its settings changed.

Saved in the cache beside the BM25 indexes (faiss's own binary format, no
pickle), written beside and renamed into place so that a half-written index
is never read.
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from readingroom.paths import cache_dir

ANN_VERSION = "1"
ANN_MIN_VECTORS = 200_000  # below this, exact search (as fast, nothing missed)
RETRAIN_GROWTH = 4.0
TRAIN_POINTS_PER_LIST = 40  # k-means sample: faiss wants at least 39 per list
# The share of the lists a query scans: its cost is ~ n * PROBE_SHARE codes
# (bench/scale.py measures time and recall against the share).
PROBE_SHARE = 1 / 8
RESCORE_FACTOR = 4  # candidates taken from the codes per result wanted, then rescored exactly


def text_keys(text_sha256: list[str] | np.ndarray) -> np.ndarray:
    """int64 keys from hex sha256 digests: the first 15 hex digits (60 bits,
    so the value is never negative)."""
    return np.fromiter((int(s[:15], 16) for s in text_sha256), dtype=np.int64, count=len(text_sha256))


def lists_for(n: int) -> int:
    """The number of inverted lists for n vectors: ~sqrt(n), a power of two."""
    return int(2 ** np.clip(round(np.log2(max(n, 1) ** 0.5)), 6, 12))


@dataclass
class AnnIndex:
    """An IVF-SQ8 index over unit vectors, inner product, with int64 keys."""

    faiss_index: object
    keys: np.ndarray  # sorted: the keys it holds
    trained_on: int
    probe_share: float = PROBE_SHARE

    @classmethod
    def build(cls, keys: np.ndarray, vectors: np.ndarray, *, nlist: int | None = None,
              seed: int = 0) -> "AnnIndex":
        import faiss

        n, dims = vectors.shape
        # k-means wants ~39 points a list: a small set gets fewer lists.
        nlist = max(1, min(nlist or lists_for(n), n // 39))
        quantizer = faiss.IndexFlatIP(dims)
        index = faiss.IndexIVFScalarQuantizer(quantizer, dims, nlist, faiss.ScalarQuantizer.QT_8bit,
                                              faiss.METRIC_INNER_PRODUCT)
        sample = min(n, nlist * TRAIN_POINTS_PER_LIST)
        rng = np.random.default_rng(seed)
        train = vectors[np.sort(rng.choice(n, sample, replace=False))] if sample < n else vectors
        index.cp.seed = seed
        index.train(np.ascontiguousarray(train, dtype=np.float32))
        ann = cls(index, np.zeros(0, dtype=np.int64), trained_on=n)
        ann.add(keys, vectors)
        return ann

    def __len__(self) -> int:
        return len(self.keys)

    @property
    def nlist(self) -> int:
        return self.faiss_index.nlist

    @property
    def nprobe(self) -> int:
        return max(1, min(self.nlist, round(self.nlist * self.probe_share)))

    def add(self, keys: np.ndarray, vectors: np.ndarray, block: int = 65_536) -> None:
        for start in range(0, len(keys), block):
            self.faiss_index.add_with_ids(np.ascontiguousarray(vectors[start:start + block], dtype=np.float32),
                                          np.ascontiguousarray(keys[start:start + block], dtype=np.int64))
        self.keys = np.union1d(self.keys, keys)

    def remove(self, keys: np.ndarray) -> None:
        import faiss

        if len(keys):
            self.faiss_index.remove_ids(faiss.IDSelectorBatch(np.ascontiguousarray(keys, dtype=np.int64)))
            self.keys = np.setdiff1d(self.keys, keys, assume_unique=True)

    def search(self, query: np.ndarray, n: int) -> np.ndarray:
        """The keys of about the n best vectors by their 8-bit codes (not in
        exact order: the caller rescores them)."""
        import faiss

        params = faiss.SearchParametersIVF(nprobe=self.nprobe)
        _, found = self.faiss_index.search(np.ascontiguousarray(query[None], dtype=np.float32), n, params=params)
        found = found[0]
        return found[found >= 0]

    @property
    def nbytes(self) -> int:
        """The codes, keys and centroids: what the index holds in memory."""
        index = self.faiss_index
        return index.ntotal * (index.code_size + 8) + index.nlist * index.d * 4 + self.keys.nbytes

    # --- saving ---------------------------------------------------------------
    def save(self, folder: Path) -> None:
        import faiss

        folder.parent.mkdir(parents=True, exist_ok=True)
        partial = folder.with_name(f"{folder.name}.partial-{os.getpid()}")
        partial.mkdir(parents=True, exist_ok=True)
        faiss.write_index(self.faiss_index, str(partial / "index.faiss"))
        np.save(partial / "keys.npy", self.keys, allow_pickle=False)
        (partial / "meta.json").write_text(json.dumps(
            {"version": ANN_VERSION, "trained_on": self.trained_on, "count": len(self.keys)}))
        old = folder.with_name(f"{folder.name}.old-{os.getpid()}")
        try:
            if folder.exists():
                folder.rename(old)
            partial.rename(folder)
        except OSError:  # another process saved its update at the same moment: keep that one
            _remove_tree(partial)
        _remove_tree(old)

    @classmethod
    def load(cls, folder: Path) -> "AnnIndex | None":
        """The index saved there, or None when there is none or it is damaged
        or from another version (it is then built again)."""
        import faiss

        try:
            meta = json.loads((folder / "meta.json").read_text())
            if meta.get("version") != ANN_VERSION:
                return None
            keys = np.load(folder / "keys.npy", allow_pickle=False)
            index = faiss.read_index(str(folder / "index.faiss"))
        except (OSError, ValueError, RuntimeError):
            return None
        if index.ntotal != len(keys) or meta.get("count") != len(keys):
            return None
        return cls(index, keys, trained_on=int(meta["trained_on"]))


def _remove_tree(path: Path) -> None:
    import shutil

    shutil.rmtree(path, ignore_errors=True)


def ann_folder(library_path: Path, model_identity: str) -> Path:
    """One index per library file and embedding model."""
    name = hashlib.sha256(f"{Path(library_path).resolve()}\n{model_identity}".encode()).hexdigest()[:32]
    return cache_dir() / "ann" / name


@dataclass
class SyncReport:
    """What bringing the saved index up to date did."""

    built: bool = False  # trained and filled from scratch
    added: int = 0
    removed: int = 0


def synced_index(folder: Path, keys: np.ndarray, vectors: np.ndarray,
                 rows: np.ndarray | None = None) -> tuple[AnnIndex, SyncReport]:
    """The index for these (unique) keys and their vectors: the saved one
    updated in place with what was added and removed since, or a new one
    when there is none usable. Saved again when anything changed.
    `rows`: where each key's vector is in `vectors` (default: the same
    order); only the vectors the index lacks are read, so a memory-mapped
    matrix is not read whole when the saved index is up to date."""
    report = SyncReport()
    rows = np.arange(len(keys)) if rows is None else rows
    ann = AnnIndex.load(folder)
    if ann is not None and ann.faiss_index.d == vectors.shape[1] \
            and len(keys) <= ann.trained_on * RETRAIN_GROWTH:
        gone = np.setdiff1d(ann.keys, keys, assume_unique=True)
        new = ~np.isin(keys, ann.keys, assume_unique=True)
        ann.remove(gone)
        if new.any():
            ann.add(keys[new], vectors[rows[new]])
        report.added, report.removed = int(new.sum()), len(gone)
    else:
        ann = AnnIndex.build(keys, vectors[rows])
        report.built, report.added = True, len(keys)
    if report.built or report.added or report.removed:
        ann.save(folder)
    return ann, report
