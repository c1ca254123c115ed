"""The float32 vectors of a large library, kept in a file and memory-mapped.

With the approximate first stage (ann.py) a query reads the float32 vectors
of its few hundred candidates only, to rescore them exactly; holding all of
them in memory (1.5 GB at 1M x 384) serves no query. So a large library's
vectors are written once to a raw .npy file in the cache, beside its ANN
index, and mapped: the pages a query touches are read in, and the kernel
may drop them again when memory is short. Small libraries (exact search,
every vector read by every query) keep theirs in memory, as always.

The file is named by what it holds: the library's fingerprint (its passage
ids, in row order), the embedding model, and which rows have a vector, so a
changed library (passages added, removed or embedded since) never reads
another state's vectors, misaligned with its rows: it writes its own file,
and the files of earlier states are removed. Written beside and renamed
into place, so a half-written file is never read; read with
allow_pickle=False (a raw float32 array, never a pickle).
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np

VECTORS_VERSION = "1"


def vectors_folder(ann_folder: Path) -> Path:
    """Beside the library's ANN index (ann.ann_folder), which is replaced
    whole when it is saved, so the vectors cannot live inside it."""
    return ann_folder.with_name(f"{ann_folder.name}.vectors")


def vectors_key(fingerprint: str, model_identity: str, has_vector: np.ndarray) -> str:
    """The name of the file for these rows: changes with any passage, the
    model, or which passages have a vector."""
    digest = hashlib.sha256(f"{VECTORS_VERSION}\n{fingerprint}\n{model_identity}\n{len(has_vector)}\n".encode())
    digest.update(np.packbits(np.asarray(has_vector, dtype=bool)).tobytes())
    return digest.hexdigest()[:32]


def open_vectors(folder: Path, key: str, rows: int) -> np.memmap | None:
    """The saved vectors for `key`, mapped read-only, or None when there is
    no such file or it is not a float32 matrix of `rows` rows (then it is
    written again)."""
    try:
        mapped = np.load(folder / f"{key}.npy", mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError):
        return None
    if mapped.dtype != np.float32 or mapped.ndim != 2 or mapped.shape[0] != rows \
            or not mapped.flags.c_contiguous:
        return None
    return mapped


def save_vectors(folder: Path, key: str, matrix: np.ndarray) -> np.memmap:
    """Write `matrix` (float32, rows aligned with the library's passages) as
    the file for `key`, remove the files of other states, and return it
    mapped."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{key}.npy"
    partial = folder / f"{key}.npy.partial-{os.getpid()}"
    try:
        with open(partial, "wb") as out:
            np.lib.format.write_array(out, np.ascontiguousarray(matrix, dtype=np.float32), allow_pickle=False)
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
    for other in folder.iterdir():
        # Earlier states' files (a process still mapping one keeps its pages:
        # unlinking a mapped file leaves the mapping intact); another
        # process's partial file is left to it.
        if other != path and other.name.endswith(".npy"):
            other.unlink(missing_ok=True)
    return np.load(path, mmap_mode="r", allow_pickle=False)
