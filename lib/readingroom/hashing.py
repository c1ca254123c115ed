"""sha256 of files: how Reading Room recognises a model, a corpus package or a
dataset, whatever its name or wherever its bytes came from."""
from __future__ import annotations

import hashlib
from pathlib import Path

from tqdm.auto import tqdm

CHUNK = 1 << 20


def file_sha256(path: Path, progress: bool = False) -> str:
    """The sha256 of a file, read a chunk at a time (a progress bar if asked)."""
    hasher = hashlib.sha256()
    size = path.stat().st_size
    with open(path, "rb") as f, tqdm(total=size, desc=f"hashing {path.name}", unit="B", unit_scale=True,
                                     unit_divisor=1024, disable=not progress, leave=False) as bar:
        while chunk := f.read(CHUNK):
            hasher.update(chunk)
            bar.update(len(chunk))
    return hasher.hexdigest()
