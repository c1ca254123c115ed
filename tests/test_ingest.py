"""Ingestion: idempotent, transactional, and clear about bad input."""
from __future__ import annotations

import gzip
import os
import shutil

import duckdb
import pytest

from conftest import kill_midway
from readingroom import Block, Document, ingest, ingest_paths, open_library

PARAGRAPH = (
    "The workers have nothing to lose but their chains. They have a world to win. "
    "Working men of all countries, unite! "
)


def assert_consistent(lib):
    """Every passage belongs to a stored document, is a span of its text, and
    every document has exactly the passages it says it has."""
    q = lib.con.execute
    assert q("SELECT count(*) FROM passages p ANTI JOIN documents d USING (doc_id)").fetchone()[0] == 0
    assert q(
        "SELECT count(*) FROM documents d WHERE n_passages != "
        "(SELECT count(*) FROM passages p WHERE p.doc_id = d.doc_id)"
    ).fetchone()[0] == 0
    assert q(
        "SELECT count(*) FROM passages p JOIN documents d USING (doc_id) "
        "WHERE substr(d.text, p.char_start + 1, p.char_end - p.char_start) != p.text"
    ).fetchone()[0] == 0


def test_fixture_folder_with_manifest(library, fixtures):
    report = ingest_paths(library, [fixtures / "text"], progress=False)
    assert (report.added, report.errors) == (3, [])
    docs = library.documents().set_index("title")
    manifesto = docs.loc["Manifesto of the Communist Party"]
    assert list(manifesto.authors) == ["Karl Marx", "Friedrich Engels"]
    assert manifesto.year == 1848 and manifesto.language == "en"
    assert '"translation": "Samuel Moore (1888)"' in manifesto.metadata
    passages = library.passages(manifesto.doc_id)
    assert passages.citation[0] == (
        "Marx and Engels, Manifesto of the Communist Party (1848), \u201cI. BOURGEOIS AND PROLETARIANS\u201d, \u00b61\u20133"
    )
    # BOM and CRLF are gone from the stored text.
    condition = library.document_text(docs.loc["The Condition of the Working-Class in England in 1844"].doc_id)
    assert not condition.startswith("\ufeff") and "\r" not in condition
    assert_consistent(library)


def test_reingesting_unchanged_files_does_nothing(library, fixtures):
    ingest_paths(library, [fixtures / "text", fixtures / "markdown"], progress=False)
    before = library.con.execute("SELECT passage_id, doc_id FROM passages ORDER BY 1").fetchall()
    report = ingest_paths(library, [fixtures / "text", fixtures / "markdown"], progress=False)
    assert (report.added, report.updated, report.unchanged) == (0, 0, 4)
    assert library.con.execute("SELECT passage_id, doc_id FROM passages ORDER BY 1").fetchall() == before


@pytest.mark.slow
def test_a_changed_file_replaces_its_passages(library, tmp_path):
    folder = tmp_path / "texts"
    folder.mkdir()
    (folder / "a.txt").write_text("\n\n".join(f"Paragraph {i}. {PARAGRAPH}" for i in range(30)))
    (folder / "b.txt").write_text(PARAGRAPH)
    ingest_paths(library, [folder], progress=False)
    doc_id = library.documents().set_index("key").loc["a.txt"].doc_id
    old = set(library.passages(doc_id).passage_id)
    (folder / "a.txt").write_text("\n\n".join(f"Paragraph {i}. {PARAGRAPH}" for i in range(29)) + "\n\nA new end.")
    report = ingest_paths(library, [folder], progress=False)
    assert (report.added, report.updated, report.unchanged) == (0, 1, 1)
    assert library.documents().set_index("key").loc["a.txt"].doc_id == doc_id  # same document
    new = set(library.passages(doc_id).passage_id)
    assert new != old and len(old & new) >= len(old) - 2  # untouched passages keep their ids
    assert "A new end." in library.document_text(doc_id)
    assert_consistent(library)


def make_bad_batch(folder, fixtures):
    folder.mkdir()
    (folder / "good.txt").write_text(PARAGRAPH * 3)
    (folder / "empty.txt").write_bytes(b"")
    (folder / "blank.md").write_text("\n\n   \n")
    (folder / "binary.txt").write_bytes(bytes(range(256)) * 40)
    (folder / "truncated.txt").write_bytes(("Élisée Reclus wrote " + PARAGRAPH).encode() + "é".encode()[:1])
    (folder / "latin1.txt").write_bytes(("Élisée Reclus écrivit sur la géographie. " * 20).encode("cp1252"))
    (folder / "undecodable.txt").write_bytes(bytes((i * 7919) % 128 + 128 for i in range(3000)))
    (folder / "second-copy-of-good.txt").write_text(PARAGRAPH * 3)
    with open(folder / "huge.txt", "wb") as f:
        f.write((PARAGRAPH + "\n\n").encode() * (50 * 1024 * 1024 // len(PARAGRAPH) + 1))
    shutil.copy(fixtures / "pdf" / "scanned-pamphlet.pdf", folder / "scanned.pdf")
    data = gzip.compress(("# Title\n\n" + PARAGRAPH * 50).encode())
    (folder / "truncated.md.gz").write_bytes(data[: len(data) // 2])
    (folder / "letter.docx").write_bytes(b"PK\x03\x04 not really")


def test_bad_input_is_named_and_the_rest_goes_in(library, tmp_path, fixtures):
    ingest_paths(library, [fixtures / "text"], progress=False)
    stored_before = set(library.documents().doc_id)
    folder = tmp_path / "batch"
    make_bad_batch(folder, fixtures)

    report = ingest_paths(library, [folder], progress=False)

    messages = {os.path.basename(p.location): (p.level, p.message) for p in report.problems}
    expected = {
        "empty.txt": ("error", "is empty"),
        "blank.md": ("error", "is empty"),
        "binary.txt": ("error", "looks like a binary file"),
        "truncated.txt": ("warning", "ends in the middle of a character"),
        "latin1.txt": ("warning", "is not UTF-8; read it as cp125"),
        "undecodable.txt": ("error", "no other text encoding fits"),
        "second-copy-of-good.txt": ("warning", f"has the same text as {folder / 'good.txt'}"),
        "huge.txt": ("error", "over the 20 MB limit"),
        "scanned.pdf": ("error", "no text layer"),
        "truncated.md.gz": ("error", "truncated or damaged"),
        "letter.docx": ("error", "unsupported file type '.docx'"),
    }
    for name, (level, words) in expected.items():
        assert name in messages, f"no problem reported for {name}: {report.summary()}"
        assert messages[name][0] == level and words in messages[name][1], (name, messages[name])
    assert all(str(folder) in p.location for p in report.problems)  # each names its file

    keys = set(library.documents().key)
    assert {"good.txt", "truncated.txt", "latin1.txt"} <= keys
    assert not keys & {"empty.txt", "binary.txt", "huge.txt", "scanned.pdf", "second-copy-of-good.txt"}
    assert stored_before <= set(library.documents().doc_id)  # nothing already stored is lost
    latin1 = library.documents().set_index("key").loc["latin1.txt"].doc_id
    assert "Élisée Reclus écrivit" in library.document_text(latin1)
    assert_consistent(library)


def test_a_failing_batch_rolls_back_whole(library, fixtures):
    ingest_paths(library, [fixtures / "text"], progress=False)
    before = library.con.execute("SELECT count(*), sum(n_chars) FROM documents").fetchone()
    good = Document("test", "good", "Good", [Block(PARAGRAPH)])
    bad = Document("test", "bad", "Bad", [Block(PARAGRAPH + " Different.")], date="not a date")
    with pytest.raises(duckdb.Error):
        ingest(library, [good, bad], progress=False)
    assert library.con.execute("SELECT count(*), sum(n_chars) FROM documents").fetchone() == before
    assert_consistent(library)


INGEST_SCRIPT = """
import sys
from readingroom import open_library, ingest_paths
with open_library(sys.argv[1]) as lib:
    ingest_paths(lib, [sys.argv[2]], batch_docs=10)
"""


@pytest.mark.slow
def test_a_killed_ingest_leaves_a_consistent_library_and_the_next_run_finishes(tmp_path):
    folder = tmp_path / "many"
    folder.mkdir()
    for i in range(300):
        (folder / f"text-{i:03}.txt").write_text("\n\n".join(f"Text {i}, paragraph {j}. {PARAGRAPH}" for j in range(60)))
    db = tmp_path / "killed.duckdb"
    kill_midway(INGEST_SCRIPT, [db, folder], total=300, at=100)

    with open_library(db) as lib:
        assert_consistent(lib)
        stored = lib.con.execute("SELECT count(*) FROM documents").fetchone()[0]
        assert 0 < stored < 300
        report = ingest_paths(lib, [folder], progress=False)
        assert (report.unchanged, report.added) == (stored, 300 - stored)
        assert_consistent(lib)
        resumed = lib.con.execute("SELECT passage_id FROM passages ORDER BY 1").fetchall()
    with open_library(tmp_path / "clean.duckdb") as clean:
        ingest_paths(clean, [folder], progress=False)
        assert clean.con.execute("SELECT passage_id FROM passages ORDER BY 1").fetchall() == resumed
