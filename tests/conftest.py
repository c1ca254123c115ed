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

from readingroom import open_library  # noqa: E402


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
