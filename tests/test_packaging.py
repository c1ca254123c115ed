"""pyproject.toml is the one source of dependencies; the environment files
list the same, and the README's commands are the ones CI runs."""
from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def pyproject_requirements() -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    return {r.replace(" ", "") for r in project["dependencies"] + extras["lab"] + extras["fast"] + extras["tune"]}


def pip_section(path: Path) -> set[str]:
    lines = path.read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip() == "- pip:")
    entries = [line.strip()[2:].strip() for line in lines[start + 1:] if line.strip().startswith("- ")]
    # A requirement may carry pip options for its build (binder/: --config-settings).
    return {e.split(" --")[0].replace(" ", "") for e in entries if not e.startswith("--")}


@pytest.mark.parametrize("env_file", ["environment.yml", "binder/environment.yml"])
def test_environment_files_list_what_pyproject_lists(env_file):
    listed = pip_section(ROOT / env_file)
    assert listed == pyproject_requirements()
    assert "torch==2.13.0" in listed  # the CPU build, pinned


def test_readme_first_block_has_the_two_commands_and_ci_runs_the_test_one():
    readme = (ROOT / "README.md").read_text()
    block = re.search(r"```(?:bash)?\n(.*?)```", readme, re.S).group(1)
    commands = [line.split("#")[0].strip() for line in block.splitlines() if line.split("#")[0].strip()]
    assert len(commands) == 2
    test_lines = [line for line in block.splitlines() if "test" in line]
    assert len(test_lines) == 1
    test_command = test_lines[0].split("#")[0].strip()
    assert test_command in (ROOT / ".ci" / "run").read_text()


def test_binder_builds_the_default_library():
    post_build = (ROOT / "binder" / "postBuild").read_text()
    assert "corpus add anarchist-faq" in post_build and "corpus add sotu" in post_build
    assert "anarchism" in (ROOT / "binder" / "apt.txt").read_text().split()
