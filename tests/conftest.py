"""Shared test fixtures. Tests run with the network off (pytest-socket,
configured in pyproject.toml); the registry corpora come from the cache that
`bash setup.sh test` fills before the tests run."""
from __future__ import annotations

import sys
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
def fixtures():
    return FIXTURES
