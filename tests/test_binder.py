"""Binder: what repo2docker builds from binder/, the settings a Binder
session runs with (lib/readingroom/deployment.py), and binder/postBuild run
for real in a fresh environment, then notebook 02 and the chat in a session
of Binder's size (2 GiB)."""
from __future__ import annotations

import contextlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
from click.testing import CliRunner

from readingroom import deployment
from readingroom.cli import main as cli
from readingroom.models.catalogue import CATALOGUE, DEFAULT_GENERATOR

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
BINDER_MEMORY = 2 * 1024**3  # what mybinder.org gives a session, server and kernels together


# --- the image ------------------------------------------------------------------------

def test_repo2docker_builds_from_binder_installs_the_package_and_runs_postbuild_and_start():
    """repo2docker renders the Dockerfile it would build (no Docker needed)."""
    done = subprocess.run([sys.executable, "-m", "repo2docker", "--no-build", "--debug", str(ROOT)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    dockerfile = done.stdout + done.stderr
    # binder/ is what it reads: its environment.yml (Python pinned there), not the top-level one.
    assert "Building conda environment for python=3.11" in dockerfile
    assert "COPY --chown=0:0 src/binder/environment.yml ${REPO_DIR}/binder/environment.yml" in dockerfile
    assert '--file "binder/environment.yml"' in dockerfile
    assert "src/environment.yml" not in dockerfile
    assert re.search(r"apt-get install --yes --no-install-recommends anarchism r-cran-tm", dockerfile)
    # The repository is copied in, then postBuild runs; binder/start wraps every session.
    copied, post_build = dockerfile.index("COPY --chown=0:0 src/ ${REPO_DIR}/"), dockerfile.index("RUN ./binder/postBuild")
    assert copied < post_build
    assert 'ENV R2D_ENTRYPOINT="${REPO_DIR}/binder/start"' in dockerfile

    steps = [line for line in (ROOT / "binder" / "postBuild").read_text().splitlines()
             if line.strip() and not line.lstrip().startswith("#")]
    assert "pip install --no-deps -e ." in steps  # the package; environment.yml brought its dependencies
    fetch = next(s for s in steps if s.startswith("readingroom models fetch"))
    assert "$(python -m readingroom.deployment models)" in fetch
    order = [next(i for i, s in enumerate(steps) if s.startswith(prefix)) for prefix in
             ("pip install", "readingroom models fetch", "readingroom corpus add anarchist-faq",
              "readingroom corpus add sotu", "readingroom embed")]
    assert order == sorted(order)
    assert "READINGROOM_DEPLOYMENT=binder" in (ROOT / "binder" / "start").read_text()
    assert os.access(ROOT / "binder" / "start", os.X_OK) and os.access(ROOT / "binder" / "postBuild", os.X_OK)


def test_binder_environment_builds_llama_cpp_for_any_avx2_cpu_with_pips_own_parser(tmp_path):
    """pip (which conda hands the pip: list to as a requirements file) reads the
    llama-cpp-python line with its build setting: a Binder session may run on
    another kind of CPU than the one that built the image."""
    from pip._internal.network.session import PipSession
    from pip._internal.req.req_file import parse_requirements
    from ruamel.yaml import YAML

    environment = YAML(typ="safe").load((ROOT / "binder" / "environment.yml").read_text())
    (pip_list,) = [d["pip"] for d in environment["dependencies"] if isinstance(d, dict)]
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("\n".join(pip_list))
    parsed = {r.requirement.split("==")[0].split(">=")[0]: r for r in
              parse_requirements(str(requirements), session=PipSession())}
    assert parsed["llama-cpp-python"].options == {"config_settings": {"cmake.define.GGML_NATIVE": "OFF"}}
    assert parsed["torch"].requirement == "torch==2.13.0"


def test_binder_models_are_in_the_catalogue_and_the_default_generator_is_not_among_them():
    names = deployment.binder_models()
    assert all(name in CATALOGUE for name in names)
    assert deployment.BINDER_GENERATOR in names and DEFAULT_GENERATOR not in names
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert deployment.main(["models"]) == 0
    assert out.getvalue().split() == names


# --- where it runs --------------------------------------------------------------------

@pytest.mark.parametrize("environ, binder", [
    ({}, False),
    ({"BINDER_LAUNCH_HOST": "https://mybinder.org/"}, True),
    ({"BINDER_REPO_URL": "https://github.com/someone/reading-room"}, True),
    ({"READINGROOM_DEPLOYMENT": "binder"}, True),
    ({"READINGROOM_DEPLOYMENT": "local", "JUPYTERHUB_USER": "x"}, False),
    ({"READINGROOM_DEPLOYMENT": "local", "BINDER_LAUNCH_HOST": "https://mybinder.org/"}, False),
    ({"BINDER_LAUNCH_HOST": ""}, False),
])
def test_binder_is_recognised_by_binderhubs_variables_or_by_binder_start(environ, binder):
    assert deployment.on_binder(environ) is binder
    assert deployment.current(environ).generator == (deployment.BINDER_GENERATOR if binder else None)


def test_fit_changes_nothing_here_and_says_what_it_changes_on_binder(capsys):
    here, binder = deployment.LOCAL_DEPLOYMENT, deployment.BINDER_DEPLOYMENT
    assert here.fit("04_answering", GENERATOR="g", SMALLER=["s"], EMBEDDING_BACKEND="b") == ("g", ["s"], "b")
    assert capsys.readouterr().out == ""
    assert binder.fit("04_answering", GENERATOR="g", SMALLER=["s"], EMBEDDING_BACKEND="b") == \
        (deployment.BINDER_GENERATOR, [], "torch")
    said = capsys.readouterr().out
    assert said.startswith("On Binder") and "GENERATOR = 'smollm2-135m-instruct-q4_1' (instead of 'g')" in said
    assert binder.fit("01_corpus") is None and "fit as they are" in capsys.readouterr().out
    assert binder.fit("06_chat", MODEL=None) == deployment.BINDER_GENERATOR
    with pytest.raises(ValueError, match="04_answering: the binder settings replace EMBEDDING_BACKEND, SMALLER"):
        binder.fit("04_answering", GENERATOR="g")


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem)
def test_each_notebooks_first_cell_says_on_binder_what_it_runs_with(notebook, monkeypatch, capsys):
    """The first code cell run as it is, on Binder and here: its output, and
    the parameters it leaves."""
    cell = next(c for c in json.loads(notebook.read_text())["cells"] if c["cell_type"] == "code")
    source = "".join(cell["source"])
    replaced = deployment.BINDER_DEPLOYMENT.notebook_parameters.get(notebook.stem, {})
    for where in ("local", "binder"):
        monkeypatch.setenv("READINGROOM_DEPLOYMENT", where)
        names: dict = {}
        exec(compile(source, str(notebook), "exec"), names)
        said = capsys.readouterr().out
        if where == "local":
            assert said == "" and not cell["outputs"]  # the committed output: nbval compares it
            local = {name: names[name] for name in replaced}
        else:
            assert said.startswith("On Binder")
            for name, value in replaced.items():
                assert names[name] == value
                assert f"{name} = {value!r} (instead of {local[name]!r})" in said or local[name] == value


def test_embed_refuses_a_document_the_library_does_not_hold(tmp_path):
    from readingroom import open_library

    db = tmp_path / "library.duckdb"
    open_library(db).close()
    result = CliRunner().invoke(cli, ["embed", "--db", str(db), "--document", "secZZ", "--quiet"])
    assert result.exit_code == 1 and "no document has the id or key secZZ" in result.output


def test_readme_has_a_binder_section_with_a_link_template_filled_in_once():
    readme = (ROOT / "README.md").read_text()
    section = readme.split("\n## On Binder\n", 1)[1].split("\n## ", 1)[0]
    links = re.findall(r"https://mybinder\.org/v2/gh/([^/\s]+/[^/\s]+)/HEAD\?urlpath=([^)\s]+)", section)
    assert len(links) == 2 and {repo for repo, _ in links} == {"OWNER/REPOSITORY"}
    assert "`OWNER/REPOSITORY`" in section  # and the text says where to fill it in
    for _, urlpath in links:  # each opens a notebook that is there
        assert (ROOT / re.sub(r"^(lab/tree|voila/render)/", "", urlpath)).exists(), urlpath
    assert "2 GB" in section and deployment.BINDER_GENERATOR.split("-")[0] in section.lower()


# --- postBuild, then a session, in 2 GiB --------------------------------------------

class MemoryCgroup:
    """A memory cgroup of `limit` bytes: processes started in it are held to
    it by the kernel, as a Binder session's are (Kubernetes puts each in such
    a cgroup; past the limit the OOM killer ends the biggest). Made where the
    cgroup file system is writable (CI runs as root); elsewhere `path` is
    None and only the processes' own peak RSS is measured."""

    def __init__(self, limit: int):
        self.path = None
        for root, limit_file in ((Path("/sys/fs/cgroup/memory"), "memory.limit_in_bytes"),  # v1
                                 (Path("/sys/fs/cgroup"), "memory.max")):  # v2
            if (root / limit_file).exists() and os.access(root, os.W_OK):
                path = root / f"readingroom-binder-test-{os.getpid()}"
                try:
                    path.mkdir()
                    (path / limit_file).write_text(str(limit))
                except OSError:
                    with contextlib.suppress(OSError):
                        path.rmdir()
                    continue
                self.path = path
                break

    def enter(self) -> None:
        """For preexec_fn: the starting process joins the cgroup."""
        if self.path is not None:
            (self.path / "cgroup.procs").write_text(str(os.getpid()))

    def remove(self) -> None:
        if self.path is not None:
            with contextlib.suppress(OSError):
                self.path.rmdir()


def fresh_environment(tmp_path: Path) -> dict[str, str]:
    """A new virtual environment holding none of Reading Room, a home folder of
    its own (so the default library is made there, as on Binder), and a cache
    that shares only the fetched models and corpora with this one (so nothing
    is downloaded). The packages binder/environment.yml installs come from this
    test's own environment by a .pth line: installing 2 GB of wheels again
    would take minutes and show nothing about memory."""
    from readingroom.paths import cache_dir

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    site = next((venv / "lib").glob("python3*/site-packages"))
    (site / "binder-environment.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    pip = venv / "bin" / "pip"  # postBuild calls `pip`: this environment's, from the packages above
    pip.write_text(f'#!/bin/sh\nexec "{venv / "bin" / "python"}" -m pip "$@"\n')
    pip.chmod(0o755)
    cache = tmp_path / "cache"
    cache.mkdir()
    for shared in ("models", "corpora"):
        (cache / shared).symlink_to(cache_dir() / shared)
    keep = ("LANG", "LC_ALL", "TERM", "TMPDIR", "SHELL", "USER")
    return {**{k: os.environ[k] for k in keep if k in os.environ},
            "PATH": f"{venv / 'bin'}:{os.environ['PATH']}", "HOME": str(tmp_path / "home"),
            "READINGROOM_CACHE": str(cache), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
            "PIP_NO_INDEX": "1", "PIP_NO_BUILD_ISOLATION": "0", "PIP_DISABLE_PIP_VERSION_CHECK": "1",
            "MPLBACKEND": "Agg"}


PEAK = "import resource; print('peak RSS', resource.getrusage(resource.RUSAGE_{}).ru_maxrss * 1024)"
# Notebooks run by nbclient in the session's environment, each with a last cell of
# the test's own; the notebook's directory is the working directory, as in Jupyter.
RUN_NOTEBOOK = """
import sys, nbformat
from nbclient import NotebookClient
nb = nbformat.read(sys.argv[1], as_version=4)
nb.cells.append(nbformat.v4.new_code_cell(sys.argv[2]))
NotebookClient(nb, timeout=900, kernel_name="python3", resources={"metadata": {"path": sys.argv[3]}}).execute()
nbformat.write(nb, sys.argv[4])
"""
ASK = """
turn = chat.ask("Why do anarchists oppose the state?")
chat.wait(600)
print("model", chat.model_choice.value)
print("answered", bool(chat.answers) and not chat.busy)
print("problem", chat.problem)
""" + PEAK.format("SELF")


def outputs(notebook: Path) -> list[str]:
    cells = json.loads(notebook.read_text())["cells"]
    return ["".join(o.get("text", "")) for c in cells if c["cell_type"] == "code" for o in c["outputs"]]


def peak_of(text: str) -> int:
    return int(re.findall(r"peak RSS (\d+)", text)[-1])


@pytest.mark.slow
@pytest.mark.parametrize("embed_documents", ["secB2"])  # "" embeds every passage, as on Binder (20 min)
def test_postbuild_in_a_fresh_environment_then_notebook_02_and_the_chat_fit_in_binders_memory(
        tmp_path, embed_documents):
    """Why peak RSS and a cgroup, not RLIMIT_AS: the chat's kernel reserves far
    more address space than it uses (measured: VmPeak 3.5 GB for 1.24 GB RSS:
    torch, llama.cpp's mmap of the model, thread stacks), so `ulimit -v 2G`
    stops torch from loading while the session would fit. Binder limits
    memory in use, which is what a memory cgroup limits and RSS measures."""
    repo = tmp_path / "repo"  # postBuild runs in the repository's root; a copy keeps this checkout clean
    shutil.copytree(ROOT, repo, ignore=shutil.ignore_patterns(
        ".git", ".venv", "*.egg-info", "__pycache__", "build", ".state", "test-artifacts", "*.duckdb*"))
    env = fresh_environment(tmp_path)
    python = str(tmp_path / "venv" / "bin" / "python")
    cgroup = MemoryCgroup(BINDER_MEMORY)
    try:
        # The build: postBuild's steps, with the peak RSS of the largest of them.
        build = subprocess.run(
            [python, "-c", f"import subprocess, sys; code = subprocess.call(['bash', 'binder/postBuild']); "
                           f"{PEAK.format('CHILDREN')}; sys.exit(code)"],
            cwd=repo, env={**env, "READINGROOM_EMBED_DOCUMENTS": embed_documents}, capture_output=True,
            text=True, timeout=1200, preexec_fn=cgroup.enter)
        assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]
        assert "132 added" in build.stdout and "233 added" in build.stdout  # the default library: FAQ, addresses
        assert re.search(r"all-minilm-l6-v2: embedded \d+ texts", build.stdout)
        library = tmp_path / "home" / ".local" / "share" / "readingroom" / "library.duckdb"
        assert library.exists()
        for name in deployment.binder_models():
            assert (tmp_path / "cache" / "models" / name).is_dir()
        build_peak = peak_of(build.stdout)

        # A session: binder/start, then notebook 02 and the chat's notebook with one question.
        session = {**env, "BINDER_LAUNCH_HOST": "https://mybinder.org/"}
        peaks = {}
        for notebook, last_cell in (("02_embedding", PEAK.format("SELF")), ("06_chat", ASK)):
            ran = tmp_path / f"{notebook}.ipynb"
            done = subprocess.run(
                [str(repo / "binder" / "start"), python, "-c", RUN_NOTEBOOK, str(repo / "notebooks" / f"{notebook}.ipynb"),
                 last_cell, str(repo / "notebooks"), str(ran)],
                cwd=repo, env=session, capture_output=True, text=True, timeout=1200, preexec_fn=cgroup.enter)
            assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
            said = outputs(ran)
            assert said[0].startswith("On Binder"), said[0]
            peaks[notebook] = peak_of(said[-1])
        assert "SAMPLE_PASSAGES = 200 (instead of 600)" in outputs(tmp_path / "02_embedding.ipynb")[0]
        chat_said = outputs(tmp_path / "06_chat.ipynb")[-1]
        assert f"model {deployment.BINDER_GENERATOR}" in chat_said
        assert "answered True" in chat_said and "problem None" in chat_said
    finally:
        cgroup.remove()
    gib = 1024**3
    print(f"peak RSS: postBuild's largest step {build_peak / gib:.2f} GiB, notebook 02's kernel "
          f"{peaks['02_embedding'] / gib:.2f} GiB, the chat's kernel {peaks['06_chat'] / gib:.2f} GiB; "
          f"held to 2 GiB by a memory cgroup: {cgroup.path is not None}")
    # A session's 2 GiB also hold the notebook server (about 0.1 GiB): each kernel must leave it room.
    assert build_peak < BINDER_MEMORY
    assert max(peaks.values()) < BINDER_MEMORY - 256 * 1024**2
