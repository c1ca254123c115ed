"""The app reads a copy of the library, so that writers are never blocked.

DuckDB lets one process write a file or any number read it, not both: a
chat session holding the library open read-only would make `ingest`,
`embed` and `news update` fail for as long as the app runs. So the app
copies the library into its cache (a snapshot) and the sessions open the
copy; nobody ever writes a snapshot.

    snapshots = LibrarySnapshots(db)     # in the app's process
    snapshots.refresh()                  # a first copy; later, a new one when the library changed
    snapshots.pointer                    # the file the sessions read to find the newest copy

    current_snapshot(pointer)            # in a session: the copy to open now

The library is held open (read-only) only while it is copied, a second or
so for a large one; a writer that starts in that moment waits for it
(library.store retries a held lock for a few seconds). When a writer holds
the library, the refresh is simply tried again at the next poll. A change
is noticed from the file's size and modification time (and its
write-ahead log's), without opening it.

Each copy is named by its sequence number, and a new copy is announced
only once it is complete (written under a temporary name, renamed, then the
pointer replaced atomically): a session sees the old copy or the new one,
never half of one. Copies older than the previous one are deleted; a
session still reading one keeps its open file until it moves on (POSIX).
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from readingroom.library.store import LibraryError, open_library
from readingroom.paths import cache_dir

POINTER_NAME = "current.json"
SNAPSHOT_VARIABLE = "READINGROOM_SNAPSHOT"  # set by the app: its pointer file, which the sessions read


def _signature(db: Path) -> tuple:
    """What changes when the library is written: size and time of the file and its WAL."""
    parts = []
    for path in (db, Path(str(db) + ".wal")):
        try:
            st = path.stat()
            parts.append((st.st_size, st.st_mtime_ns))
        except FileNotFoundError:
            parts.append(None)
    return tuple(parts)


@dataclass(frozen=True)
class Refreshed:
    """What a refresh did: `path` the copy now current; `made` whether a new
    copy was made this time; `reason` why not, when the library changed
    but could not be copied (a writer holds it)."""

    path: Path | None
    made: bool
    reason: str | None = None


class LibrarySnapshots:
    """Copies of one library for the app's sessions (see the module notes)."""

    def __init__(self, db: Path, folder: Path | None = None):
        self.db = Path(db).resolve()
        key = hashlib.sha256(str(self.db).encode()).hexdigest()[:16]
        self.folder = Path(folder) if folder else cache_dir() / "app" / "snapshots" / key
        self.folder.mkdir(parents=True, exist_ok=True)
        self.pointer = self.folder / POINTER_NAME
        self._copied: tuple | None = None  # the library's signature when last copied
        self._sequence = 0
        self.current: Path | None = None

    def changed(self) -> bool:
        return _signature(self.db) != self._copied

    def refresh(self, prepare=None) -> Refreshed:
        """A new copy if the library changed since the last one. `prepare(path)`
        runs on the new copy before the sessions are told of it (the app
        builds its search index there, once, instead of in every session)."""
        signature = _signature(self.db)
        if signature == self._copied:
            return Refreshed(self.current, False)
        self._sequence += 1
        target = self.folder / f"library-{os.getpid()}-{self._sequence}.duckdb"
        partial = target.with_name(target.name + ".partial")
        try:
            with open_library(self.db, read_only=True):
                # Held read-only, so no writer is between its transactions: the
                # file (and its WAL, if a writer left one) is consistent now.
                signature = _signature(self.db)
                shutil.copyfile(self.db, partial)
                wal = Path(str(self.db) + ".wal")
                if wal.exists():
                    shutil.copyfile(wal, Path(str(partial) + ".wal"))
        except LibraryError as e:
            for leftover in (partial, Path(str(partial) + ".wal")):
                leftover.unlink(missing_ok=True)
            return Refreshed(self.current, False, reason=str(e))
        if Path(str(partial) + ".wal").exists():
            os.replace(Path(str(partial) + ".wal"), Path(str(target) + ".wal"))
        os.replace(partial, target)
        if prepare is not None:
            prepare(target)
        announced = self.pointer.with_name(POINTER_NAME + ".partial")
        announced.write_text(json.dumps({"path": str(target), "library": str(self.db)}), encoding="utf-8")
        os.replace(announced, self.pointer)
        previous, self.current, self._copied = self.current, target, signature
        self._forget_older_than(previous)
        return Refreshed(target, True)

    def _forget_older_than(self, previous: Path | None) -> None:
        keep = {self.current, previous}
        for path in self.folder.glob("library-*.duckdb"):
            if path not in keep:
                path.unlink(missing_ok=True)
                Path(str(path) + ".wal").unlink(missing_ok=True)

    def close(self) -> None:
        """Delete every copy (the app is stopping)."""
        shutil.rmtree(self.folder, ignore_errors=True)


def current_snapshot(pointer) -> Path:
    """The copy a session should open now, from the app's pointer file."""
    return Path(_read_pointer(pointer)["path"])


def snapshot_source(pointer) -> Path:
    """The library the copies are of (its name is what a reader should see)."""
    return Path(_read_pointer(pointer)["library"])


def _read_pointer(pointer) -> dict:
    try:
        found = json.loads(Path(pointer).read_text(encoding="utf-8"))
        return {"path": str(found["path"]), "library": str(found["library"])}
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise LibraryError(f"{pointer}: the app's copy of the library cannot be found ({e}); "
                           "is `readingroom app` still running?") from e
