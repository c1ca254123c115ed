"""Where Reading Room keeps things, overridable by environment variables.

- the library file: $READINGROOM_DB, else $XDG_DATA_HOME/readingroom/library.duckdb
  (~/.local/share/readingroom/library.duckdb);
- downloads (corpus packages, later models): $READINGROOM_CACHE, else
  $XDG_CACHE_HOME/readingroom (~/.cache/readingroom).
"""
from __future__ import annotations

import os
from pathlib import Path


def _xdg(variable: str, fallback: str) -> Path:
    return Path(os.environ.get(variable) or Path.home() / fallback)


def default_library_path() -> Path:
    if os.environ.get("READINGROOM_DB"):
        return Path(os.environ["READINGROOM_DB"]).expanduser()
    return _xdg("XDG_DATA_HOME", ".local/share") / "readingroom" / "library.duckdb"


def cache_dir() -> Path:
    if os.environ.get("READINGROOM_CACHE"):
        return Path(os.environ["READINGROOM_CACHE"]).expanduser()
    return _xdg("XDG_CACHE_HOME", ".cache") / "readingroom"
