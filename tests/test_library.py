"""The library file: schema versions, migrations, refusal to damage."""
from __future__ import annotations

import duckdb
import pytest

from readingroom import LibraryError, open_library
from readingroom.library import store as library_module


def test_a_new_library_has_the_current_schema(tmp_path):
    with open_library(tmp_path / "new.duckdb") as lib:
        assert lib.schema_version == library_module.SCHEMA_VERSION
        tables = {r[0] for r in lib.con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
        assert {"meta", "documents", "passages"} <= tables


def test_migrations_bring_an_old_library_up_to_date(tmp_path, monkeypatch):
    path = tmp_path / "old.duckdb"
    open_library(path).close()
    extra = "CREATE TABLE notes (passage_id VARCHAR, note VARCHAR);"
    monkeypatch.setattr(library_module, "MIGRATIONS", library_module.MIGRATIONS + [extra])
    monkeypatch.setattr(library_module, "SCHEMA_VERSION", len(library_module.MIGRATIONS))
    with pytest.raises(LibraryError, match="open it once for writing"):
        open_library(path, read_only=True)
    with open_library(path) as lib:
        assert lib.schema_version == len(library_module.MIGRATIONS)
        lib.con.execute("SELECT * FROM notes").fetchall()


def test_a_library_from_a_newer_version_is_refused_untouched(tmp_path):
    path = tmp_path / "future.duckdb"
    with open_library(path) as lib:
        lib.con.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    with pytest.raises(LibraryError, match="schema version 99 was written by a newer Reading Room"):
        open_library(path)
    con = duckdb.connect(str(path))
    assert con.execute("SELECT value FROM meta").fetchone() == ("99",)
    con.close()


def test_a_missing_library_is_not_created_by_reading(tmp_path):
    with pytest.raises(LibraryError, match="no library here yet"):
        open_library(tmp_path / "missing.duckdb", read_only=True)
    assert not (tmp_path / "missing.duckdb").exists()


def test_a_library_open_for_writing_elsewhere_is_named(tmp_path):
    import subprocess
    import sys

    path = tmp_path / "busy.duckdb"
    open_library(path).close()
    holder = subprocess.Popen(
        [sys.executable, "-c", f"import duckdb, time; c = duckdb.connect({str(path)!r}); print('open', flush=True); time.sleep(30)"],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "open"
        with pytest.raises(LibraryError, match=rf"open in another process \(process {holder.pid}: .*python"):
            open_library(path)
    finally:
        holder.kill()
        holder.wait()
