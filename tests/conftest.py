"""Shared test fixtures. Tests run with the network off (pytest-socket,
configured in pyproject.toml); the registry corpora come from the cache that
`bash setup.sh test` fills before the tests run."""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "data" / "fixtures"
sys.path.insert(0, str(ROOT / "lib"))  # also works before `pip install -e .`

from readingroom import Block, Document, ingest, open_library  # noqa: E402

# What only tests that load a model need. In the fast tier (`pytest -m "not
# slow"`) importing one of these fails the test that does it, before any
# model is read, naming the test, so that it gets its @pytest.mark.slow.
HEAVY_MODULES = ("torch", "llama_cpp", "sentence_transformers", "transformers", "peft")


class ModelInTheFastTier(Exception):
    """Not an ImportError: code that falls back when a library is missing
    must not hide a test that loads a model."""


class _RefuseModelLibraries:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in HEAVY_MODULES:
            raise ModelInTheFastTier(f"the fast tier (-m 'not slow') imported {name}: a test that loads "
                                     "a model needs @pytest.mark.slow")
        return None


def fast_tier(config) -> bool:
    return "not slow" in (config.getoption("markexpr", "") or "")


def pytest_configure(config):
    if fast_tier(config):
        loaded = [m for m in HEAVY_MODULES if m in sys.modules]
        if loaded:
            raise pytest.UsageError(f"the fast tier started with {', '.join(loaded)} already imported")
        sys.meta_path.insert(0, _RefuseModelLibraries())


# --- the tiny library (test_answer, test_chat, test_browser) --------------------------------------
# Four short passages on different subjects, and for the chat one that
# tries to run script in the reader's browser.
COMMUNE = ("The Paris Commune of 1871 was the first workers' government of a great city; "
           "it was crushed by the army of Versailles after seventy-two days.")
CELLARS = ("In Manchester the working families lived in damp cellars, and often a whole family of seven "
           "slept in a single room without a window.")
MUTUAL = "Mutual aid, not competition, is the chief factor of progress among animals and among people."
PLANTS = "Photosynthesis turns sunlight, water and carbon dioxide into sugar in the leaves of green plants."
# Markup in a passage is text to show, never HTML to run.
EVIL = ("The barricades of the Paris Commune went up in March 1871. <script>window.__pwned = 'script'</script> "
        "<img src=x onerror=\"window.__pwned = 'img'\"> Its decrees were posted on the walls of Paris.")


def tiny_document(key, text, authors=(), year=None, title=None, url=None, anchor=None, language="en"):
    return Document("test", key, title or key.title(), [Block(text, section=("Part 1",), anchor=anchor)],
                    authors=list(authors), year=year, language=language, url=url)


TINY_SHELF = [
    tiny_document("commune", COMMUNE, ["Karl Marx"], 1871, "The Civil War in France"),
    tiny_document("cellars", CELLARS, ["Friedrich Engels"], 1845, "The Condition of the Working Class in England"),
    tiny_document("faq", MUTUAL, ["Anarchist FAQ Editorial Collective"], None, "An Anarchist FAQ"),
    tiny_document("botany", PLANTS, ["A. Gardener"], 1990, "Green Plants"),
]
# The chat's: the Commune with a link and an anchor, and the passage with markup.
CHAT_SHELF = [
    tiny_document("commune", COMMUNE, ["Karl Marx"], 1871, "The Civil War in France",
                  url="https://www.marxists.org/archive/marx/works/1871/civil-war-france/", anchor="ch05"),
    *TINY_SHELF[1:],
    tiny_document("evil", EVIL, ["Mallory <b>Markup</b>"], 1999, "Notes <i>on</i> the Commune",
                  url="javascript:window.__pwned='link'"),
]


def build_chat_library(path, embed: bool) -> str:
    """The chat's tiny library at `path` (with MiniLM vectors when `embed`); its path."""
    with open_library(path) as lib:
        ingest(lib, CHAT_SHELF, progress=False)
        if embed:
            from readingroom.models.embed import embed_library

            embed_library(lib, progress=False)
    return str(path)


@pytest.fixture(scope="session")
def generator():
    """The small test model (SmolLM2-135M) on llama.cpp, loaded once."""
    from readingroom.models.catalogue import TEST_GENERATOR, ModelError
    from readingroom.models.generate import load_generator

    try:
        return load_generator(TEST_GENERATOR, backend="llama.cpp")
    except ModelError as e:
        pytest.fail(f"{e} (the test set-up, `bash setup.sh test`, fetches it)")


@pytest.fixture
def library(tmp_path):
    with open_library(tmp_path / "library.duckdb") as lib:
        yield lib


@pytest.fixture
def private_cache(tmp_path, monkeypatch):
    """BM25 and approximate vector indexes go to a cache of the test's own
    (models stay where they are), so no test reads an index another test or
    the user built."""
    import readingroom.search.ann as ann_module
    import readingroom.search.index as index_module

    monkeypatch.setattr(index_module, "cache_dir", lambda: tmp_path / "cache")
    monkeypatch.setattr(ann_module, "cache_dir", lambda: tmp_path / "cache")


def library_contents(lib) -> tuple:
    """Every stored column of documents and passages but the time of
    ingestion, in id order: two libraries compared row for row."""
    documents = lib.con.execute(
        "SELECT doc_id, source, key, location, title, authors, year, date, language, content_sha256, fingerprint, "
        "n_chars, n_passages, n_tokens, text, metadata FROM documents ORDER BY doc_id").fetchall()
    passages = lib.con.execute("SELECT * FROM passages ORDER BY passage_id").fetchall()
    return documents, passages


@pytest.fixture(scope="module")
def local_cluster():
    """A Dask LocalCluster of two workers, threads of this process, on
    127.0.0.1 (test_scale, test_shards): the cluster path, in seconds."""
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                                  dashboard_address=None, host="127.0.0.1", protocol="tcp") as cluster:
        yield cluster.scheduler_address


@pytest.fixture
def fixtures():
    return FIXTURES


def kill_midway(script: str, args, total: int, at: int) -> None:
    """Run `script` in a new Python process and kill -9 it as soon as its tqdm
    bar (on stderr) shows `at` of `total` done: a crash half way through a
    long job, which the caller then checks the job recovers from."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.Popen([sys.executable, "-c", script, *map(str, args)],
                            stderr=subprocess.PIPE, text=True, env=env)
    seen, deadline = "", time.time() + 120
    while time.time() < deadline:
        seen += proc.stderr.read(64) or ""
        done = [int(n) for n in re.findall(rf"(\d+)/{total}", seen)]
        if done and done[-1] >= at or proc.poll() is not None:
            break
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the job finished before it could be killed"
