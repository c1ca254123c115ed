"""`readingroom app`: the chat notebook (notebooks/06_chat.ipynb) served as a
web page with Voila, for a workshop room.

    readingroom app [--db FILE] [--port 8866] [--host 127.0.0.1] [--model NAME]

Three processes:
1. this one, which starts the other two, prints the address and stops them
   both on Ctrl-C;
2. the generation service (readingroom.ui.service), holding the
   one model: loaded once, whatever the number of readers, and answering
   one request at a time in order of arrival;
3. Voila, which gives every browser session a kernel of its own (its own
   conversation) running the notebook with its code hidden. The kernels
   inherit the service's address and token through environment variables,
   and the library's path through READINGROOM_DB; each opens the library
   read-only, so any number of them can read the one file.

It listens on 127.0.0.1 unless told otherwise: `--host 0.0.0.0` lets anyone
on the network use it (there is no login), which is what a workshop room
may want, and nothing else should.
"""
from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from readingroom.ui.service import TOKEN_VARIABLE, URL_VARIABLE
from readingroom.library.store import LibraryError
from readingroom.paths import cache_dir, default_library_path

NOTEBOOK = "06_chat.ipynb"
APP_HIDDEN_TAG = "notebook-only"  # cells of the notebook the app's page leaves out
DEFAULT_PORT = 8866  # Voila's own default
START_SECONDS = 600  # loading a model from a slow disk, or building the search index the first time
IDLE_KERNEL_SECONDS = 900  # a session whose page is gone (closed without saying so) gives its memory back after this

FALLBACK_NOTEBOOK = {
    "cells": [{"cell_type": "code", "execution_count": None, "id": "chat", "metadata": {}, "outputs": [],
               "source": ["from readingroom.ui.chat import Chat\n", "Chat()"]}],
    "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"}},
    "nbformat": 4, "nbformat_minor": 5,
}


class AppError(Exception):
    pass


def chat_notebook() -> Path:
    """The page the app serves: the project's chat notebook without the
    cells tagged `notebook-only` (how long it takes, what the code does: words
    for someone in JupyterLab, not for a reader in a workshop), written to
    the cache; when the package is installed without the project's folders,
    a one-cell notebook that opens the chat."""
    here = Path(__file__).resolve().parents[2] / "notebooks" / NOTEBOOK
    notebook = json.loads(here.read_text(encoding="utf-8")) if here.exists() else FALLBACK_NOTEBOOK
    notebook = {**notebook, "cells": [c for c in notebook["cells"]
                                      if APP_HIDDEN_TAG not in c.get("metadata", {}).get("tags", [])]}
    folder = cache_dir() / "app"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / NOTEBOOK
    path.write_text(json.dumps(notebook), encoding="utf-8")
    return path


def prepare_library(db: Path) -> None:
    """Check the library opens read-only, and build its BM25 index into the
    cache now, once, rather than in every session's kernel at the same time."""
    from readingroom.library.store import LibraryOutdated, open_library
    from readingroom.search.searcher import SearchIndex

    if not db.exists():
        raise AppError(f"{db}: no library here yet; `bash setup.sh` builds the default one "
                       "(or `readingroom corpus add anarchist-faq`)")
    try:
        try:
            lib = open_library(db, read_only=True)
        except LibraryOutdated:
            # Written by an earlier Reading Room: the sessions open it
            # read-only, so upgrade its schema here, once, before they start.
            open_library(db).close()
            lib = open_library(db, read_only=True)
        with lib:
            SearchIndex.load(lib, vectors=False, progress=True)
    except LibraryError as e:
        raise AppError(str(e)) from e


def child_environment(**variables) -> dict:
    """The environment of the app's processes: this one's, with this
    readingroom first on the path, so that the service and the kernels run
    the same code as the app that started them."""
    here = str(Path(__file__).resolve().parents[1])
    path = os.pathsep.join(p for p in (here, os.environ.get("PYTHONPATH")) if p)
    return {**os.environ, "PYTHONPATH": path, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", **variables}


def start_service(model: str, backend: str, token: str) -> tuple[subprocess.Popen, str]:
    """The generation service in its own process; (process, URL) once its
    model is loaded. A model that cannot be loaded (not fetched, damaged)
    stops the app with the loader's message."""
    env = child_environment(**{TOKEN_VARIABLE: token})
    process = subprocess.Popen([sys.executable, "-m", "readingroom.ui.service", "--model", model,
                                "--backend", backend], stdout=subprocess.PIPE, text=True, env=env)
    line = process.stdout.readline()
    try:
        ready = json.loads(line)
    except ValueError:
        ready = {"error": f"the generation service stopped before it was ready (exit code {process.poll()})"}
    if "url" not in ready:
        stop(process)
        raise AppError(f"the model {model} could not be loaded: {ready.get('error')}")
    return process, ready["url"]


def start_voila(notebook: Path, host: str, port: int, env: dict) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "voila", str(notebook), "--no-browser", f"--port={port}", f"--Voila.ip={host}",
         "--Voila.port_retries=0",  # the address printed must be the one served
         "--strip_sources=True", "--show_tracebacks=False", "--preheat_kernel=True", "--pool_size=1",
         f"--MappingKernelManager.cull_idle_timeout={IDLE_KERNEL_SECONDS}",
         "--MappingKernelManager.cull_interval=60"],
        cwd=notebook.parent, env=env)


def wait_until_serving(host: str, port: int, process: subprocess.Popen, seconds: float = START_SECONDS) -> None:
    """Until Voila accepts connections. Only connects: a GET of the page
    would start a kernel that nobody uses."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AppError(f"Voila stopped (exit code {process.returncode}); is the port already in use?")
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
            s.settimeout(2)
            if s.connect_ex((host, port)) == 0:
                return
        time.sleep(0.3)
    raise AppError(f"Voila did not listen on {host}:{port} within {seconds:.0f} s")


def stop(process: subprocess.Popen | None) -> None:
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def run_app(db=None, *, host: str = "127.0.0.1", port: int = DEFAULT_PORT, model: str | None = None,
            backend: str = "llama.cpp", echo=print) -> None:
    """Serve the chat until interrupted (see the module notes)."""
    from readingroom import deployment
    from readingroom.models.catalogue import DEFAULT_GENERATOR

    db = Path(db).expanduser().resolve() if db else default_library_path()
    model = model or deployment.current().generator or DEFAULT_GENERATOR
    echo(f"library: {db}")
    prepare_library(db)
    echo(f"loading the model {model} once, for every session ...")
    with_signal = _stop_on_terminate()
    token = secrets.token_urlsafe(32)
    service, service_url = start_service(model, backend, token)
    voila = None
    try:
        env = child_environment(**{"READINGROOM_DB": str(db), URL_VARIABLE: service_url, TOKEN_VARIABLE: token,
                                   "READINGROOM_GENERATOR": model})
        voila = start_voila(chat_notebook(), host, port, env)
        shown_host = "127.0.0.1" if host in ("", "0.0.0.0", "::", "localhost") else host
        url = f"http://[{shown_host}]:{port}/" if ":" in shown_host else f"http://{shown_host}:{port}/"
        wait_until_serving(shown_host, port, voila)
        echo(f"\nReading Room chat: {url}   (Ctrl-C to stop)")
        if host not in ("127.0.0.1", "localhost", "::1"):
            echo(f"listening on {host}: anyone who can reach this machine on port {port} can use the chat")
        while voila.poll() is None and service.poll() is None:
            time.sleep(0.5)
        if service.poll() is not None:
            raise AppError(f"the generation service stopped (exit code {service.returncode})")
    except KeyboardInterrupt:
        echo("stopping ...")
    finally:
        stop(voila)
        stop(service)
        with_signal()


def _stop_on_terminate():
    """SIGTERM (a service manager, a test) ends the app as Ctrl-C does, so
    that its two processes are stopped too; returns what puts it back."""
    try:
        previous = signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    except ValueError:  # not the main thread: leave signals alone
        return lambda: None
    return lambda: signal.signal(signal.SIGTERM, previous)
