"""The chat in a real browser: Debian's Chromium driven by Playwright,
against JupyterLab (notebooks/06_chat.ipynb opened and run as a reader
would) and against `readingroom app` (Voila), both on 127.0.0.1, with the
real test model on a tiny library that holds a passage with <script> and
<img onerror> in it.

Everything waits on states (the kernel reading Idle, an element appearing),
with generous time limits: the machine has two cores and other work. The
screenshots go to test-artifacts/ (ignored by git).

Needs /usr/bin/chromium (`bash setup.sh test` installs it; Playwright's
own browser download is not used)."""
from __future__ import annotations

import contextlib
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from conftest import build_chat_library

from readingroom.models.catalogue import TEST_GENERATOR
from readingroom.paths import cache_dir

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-dev-shm-usage"]
START = 120_000  # ms: a server, a kernel, the chat's first search
ANSWER = 240_000  # ms: the model's answer, on a busy machine
QUESTION = "When was the Paris Commune crushed by the army of Versailles?"
EVIL_TEXT = "<script>window.__pwned = 'script'</script>"

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, process: subprocess.Popen, seconds: float = 180) -> None:
    """Until something accepts connections on the port (without asking it
    anything: a GET to Voila would start a kernel)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert process.poll() is None, f"the server stopped (exit code {process.returncode})"
        with socket.socket() as s:
            s.settimeout(1)
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    pytest.fail(f"nothing listened on port {port} within {seconds} s")


def stop_tree(process: subprocess.Popen) -> None:
    """Stop a server we started and everything it started, by their ids."""
    if process.poll() is None:
        children = psutil.Process(process.pid).children(recursive=True)
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        for child in children:
            if child.is_running():
                child.kill()


@pytest.fixture(scope="module")
def environment(tmp_path_factory):
    """The library (words only, no vectors: as the test library of CI) and
    the environment the servers and their kernels run in."""
    return app_environment(tmp_path_factory.mktemp("browser"), embed=False)


def app_environment(folder: Path, embed: bool):
    """(folder, the chat's library in it, with MiniLM vectors when `embed`,
    the environment the servers and their kernels run in). BM25 indexes go
    to a cache of the test's own, which reads the real cache's models."""
    cache = folder / "cache"
    cache.mkdir()
    (cache / "models").symlink_to(cache_dir() / "models", target_is_directory=True)
    db = build_chat_library(folder / "library.duckdb", embed=embed)
    env = {**os.environ, "READINGROOM_DB": db, "READINGROOM_GENERATOR": TEST_GENERATOR,
           "READINGROOM_CACHE": str(cache), "PYTHONPATH": str(ROOT / "lib"),
           "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
           "JUPYTER_CONFIG_DIR": str(folder / "jupyter-config")}
    return folder, db, env


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: `bash setup.sh test` installs it (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


def new_page(browser, tmp_path):
    # A fresh context is a fresh profile: nothing shared between sessions.
    context = browser.new_context(viewport={"width": 1200, "height": 1000}, accept_downloads=True)
    context.set_default_timeout(START)
    page = context.new_page()
    page.on("dialog", lambda dialog: dialog.dismiss())  # an alert() would mean script ran; it is checked below
    return page


def german_reader_sees_german(browser, url: str) -> None:
    """A browser that asks for German (Accept-Language: de-DE,...) sees the
    page's intro and the chat's labels in German before any question."""
    context = browser.new_context(viewport={"width": 1200, "height": 1000}, locale="de-DE")
    context.set_default_timeout(START)
    page = context.new_page()
    page.goto(url, timeout=START)
    page.locator(".rr-chat").wait_for(state="visible", timeout=START)
    page.get_by_text("Was er kann und was nicht.").wait_for(state="visible", timeout=START)
    assert page.get_by_text("Der Chat: Fragen Sie die Bibliothek").count() == 1
    assert page.get_by_text("What it can do, and what it cannot").count() == 0
    assert page.locator("button.rr-send").inner_text().strip() == "Senden"
    placeholder = page.locator(".rr-question textarea").get_attribute("placeholder")
    assert placeholder == "Stellen Sie der Bibliothek eine Frage …"
    assert "Fragen Sie die Bibliothek." in page.locator(".rr-header").inner_text()
    context.close()


def ask_and_check(page, label: str):
    """Type the question, send it, see the model's text stream in and the
    checked answer replace it, open the source cards, check the passage with
    markup shows as text and ran nothing, and export the conversation."""
    chat = page.locator(".rr-chat")
    chat.wait_for(state="visible", timeout=START)
    # Record whether the unchecked draft was ever on screen before the checked answer.
    page.evaluate("""() => {
        window.__sawDraft = false;
        new MutationObserver(() => {
            if (document.querySelector('.rr-unchecked') && !document.querySelector('.rr-checked')) {
                window.__sawDraft = true;
            }
        }).observe(document.body, {subtree: true, childList: true, characterData: true});
    }""")
    page.locator(".rr-question textarea").fill(QUESTION)
    send = page.locator("button.rr-send")
    send.click()
    page.locator(".rr-checked").first.wait_for(state="visible", timeout=ANSWER)
    assert page.evaluate("window.__sawDraft"), "the model's text was not shown while it was written"
    page.locator(".rr-card").first.wait_for(state="visible")
    assert send.is_enabled()
    assert QUESTION in page.locator(".rr-asked").first.inner_text()

    # Open every card; the passage with markup is shown as text.
    cards = page.locator("details.rr-card")
    for i in range(cards.count()):
        cards.nth(i).locator("summary").click()
    evil = page.locator(".rr-card[open] .rr-passage", has_text="window.__pwned")
    evil.wait_for(state="visible")
    assert EVIL_TEXT in evil.inner_text()
    assert "onerror=\"window.__pwned = 'img'\"" in evil.inner_text()
    assert page.locator(".rr-chat img").count() == 0 and page.locator(".rr-chat script").count() == 0
    assert page.evaluate("typeof window.__pwned") == "undefined", "script from a passage ran"
    page.locator(".rr-card[open] .rr-passage", has_text="seventy-two days").first.wait_for(state="visible")
    page.screenshot(path=str(ARTIFACTS / f"{label}-answer.png"), full_page=True)

    # Export: the link downloads the conversation as Markdown.
    with page.expect_download(timeout=START) as download:
        page.locator("a.rr-download").click()
    saved = Path(download.value.path()).read_text()
    assert download.value.suggested_filename == "reading-room-conversation.md"
    assert f"## 1. {QUESTION}" in saved and "<script" not in saved
    assert "The Civil War in France" in saved
    print(f"\nscreenshot: {ARTIFACTS / f'{label}-answer.png'}")


# --- JupyterLab ---------------------------------------------------------------------

@pytest.fixture(scope="module")
def jupyterlab(environment):
    folder, _, env = environment
    root = folder / "lab"
    root.mkdir()
    shutil.copy(ROOT / "notebooks" / "06_chat.ipynb", root)  # a copy: lab autosaves what it runs
    settings = folder / "lab-settings" / "@jupyterlab" / "apputils-extension"
    settings.mkdir(parents=True)
    (settings / "notification.jupyterlab-settings").write_text(
        json.dumps({"fetchNews": "false", "checkForUpdates": False}))  # no toasts over the page
    port, token = free_port(), "readingroom-browser-test"
    process = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
         f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}", "--allow-root",
         "--LabApp.expose_app_in_browser=True", f"--LabApp.user_settings_dir={folder / 'lab-settings'}",
         f"--LabApp.workspaces_dir={folder / 'lab-workspaces'}", "--ServerApp.port_retries=0"],
        env=env, stdout=open(folder / "lab.log", "w"), stderr=subprocess.STDOUT)
    try:
        wait_for_port(port, process)
        yield f"http://127.0.0.1:{port}", token
    finally:
        stop_tree(process)


def test_the_chat_in_jupyterlab(browser, jupyterlab, tmp_path):
    base, token = jupyterlab
    page = new_page(browser, tmp_path)
    page.goto(f"{base}/lab/tree/06_chat.ipynb?token={token}")
    page.locator(".jp-Notebook").first.wait_for(state="visible", timeout=START)
    # Run only once the kernel reads Idle: a run sent earlier can be dropped.
    page.locator(".jp-StatusBar-TextItem", has_text="Idle").first.wait_for(state="visible", timeout=START)
    # Outputs cleared first: the chat on screen is then the one this run makes.
    page.evaluate("""async () => {
        await window.jupyterapp.commands.execute('notebook:clear-all-cell-outputs');
        await window.jupyterapp.commands.execute('notebook:run-all-cells');
    }""")
    ask_and_check(page, "jupyterlab")
    page.context.close()


# --- the app (Voila) ---------------------------------------------------------------------

ROOM = "Manifesto, week 3"
ROOM_CODE = "testroom"


@contextlib.contextmanager
def serving_app(db: str, env: dict, log: Path, model: str, room: str, code: str, server: str | None = None):
    """`readingroom app` on a free port of 127.0.0.1, until the block ends:
    its url, its process and what it printed on starting. `server`: what
    serves the page (`--server`), the app's default when None."""
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "readingroom.cli", "app", "--db", db, "--port", str(port),
                                "--model", model, "--room", room, "--code", code,
                                *(["--server", server] if server else [])], env=env,
                               stdout=open(log, "w"), stderr=subprocess.STDOUT)
    try:
        wait_for_port(port, process)
        yield f"http://127.0.0.1:{port}/", process, log.read_text()
    finally:
        stop_tree(process)


@pytest.fixture(scope="module")
def app(environment):
    folder, db, env = environment
    # Voila: these tests look at its kernels and its port (test_app_solara.py tests the other server).
    with serving_app(db, env, folder / "app.log", TEST_GENERATOR, ROOM, ROOM_CODE, server="voila") as served:
        yield served


def test_the_app_prints_a_join_link_with_its_code_and_a_qr_code_and_turns_away_who_has_not_got_it(app):
    import re
    import urllib.error
    import urllib.request

    url, process, printed = app
    assert f"Reading Room: {ROOM}" in printed
    assert f"join:        {url}?code={ROOM_CODE}" in printed
    qr = Path(re.search(r"QR code:\s+(\S+\.png)", printed).group(1))
    png = qr.read_bytes()
    width, height = int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")  # the IHDR chunk
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and width == height >= 300  # large enough to project
    facilitator = re.search(r"facilitator: (\S+)", printed).group(1)
    for headers in ({}, {"Host": "evil.example"}, {"Cookie": "readingroom-room=wrong"}):
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=30)
        assert refused.value.code == 403
    with pytest.raises(urllib.error.HTTPError) as refused:  # the code, but a foreign Host header
        urllib.request.urlopen(urllib.request.Request(f"{url}?code={ROOM_CODE}", headers={"Host": "evil.example"}),
                               timeout=30)
    assert refused.value.code == 403
    # Voila itself is on another port, behind a token only the door has.
    voila_port = next(c.laddr.port for p in psutil.Process(process.pid).children(recursive=True)
                      if "voila" in " ".join(p.cmdline()) for c in p.net_connections("tcp")
                      if c.status == "LISTEN")
    connection = http.client.HTTPConnection("127.0.0.1", voila_port, timeout=30)
    connection.request("GET", "/")
    response = connection.getresponse()
    assert response.status in (302, 401, 403), response.status
    assert response.status != 302 or "/login" in response.getheader("Location")
    connection.close()
    with urllib.request.urlopen(facilitator, timeout=30) as page:
        assert ROOM in page.read().decode()


def test_the_chat_as_an_app_with_a_conversation_per_session(browser, app, tmp_path):
    url, process, printed = app
    page = new_page(browser, tmp_path)
    page.goto(f"{url}?code={ROOM_CODE}", timeout=START)
    ask_and_check(page, "app")
    # The code is hidden; the model is the app's, shared.
    assert page.get_by_text("from readingroom.ui.chat import Chat").count() == 0
    assert page.get_by_text("What it can do, and what it cannot").count() == 1  # the notebook's text is there,
    assert page.get_by_text("How long it takes").count() == 0  # but not what is only for notebook readers
    assert page.get_by_text("Keeping the conversation, and the chat for a room").count() == 0
    assert "shared by everyone" in page.locator(".rr-model select").text_content().replace("\xa0", " ")
    # A second browser session has its own kernel, and so its own conversation.
    other = new_page(browser, tmp_path)
    other.goto(f"{url}?code={ROOM_CODE}", timeout=START)
    other.locator(".rr-chat").wait_for(state="visible", timeout=START)
    assert other.locator(".rr-turn").count() == 0 and page.locator(".rr-turn").count() == 1
    other.screenshot(path=str(ARTIFACTS / "app-second-session.png"), full_page=True)
    other.context.close()
    page.context.close()


LOAD_SESSIONS = 8  # CI's share of a room; bench/app.py opens more
LOAD_QUESTIONS = ["When was the Paris Commune crushed?", "Who lived in the damp cellars of Manchester?",
                  "What is the chief factor of progress?", "What does photosynthesis turn into sugar?",
                  "What went up in March 1871?", "How long did the Commune last?",
                  "Where were the decrees of the Commune posted?", "Who wrote about the working class in 1845?"]


def test_the_app_page_speaks_the_browsers_language_before_the_first_question(browser, app):
    url, process, printed = app
    german_reader_sees_german(browser, f"{url}?code={ROOM_CODE}")


def test_a_room_of_readers_asking_at_once_each_get_their_answer_and_the_facilitator_sees_the_questions(
        browser, app, tmp_path):
    """LOAD_SESSIONS real sessions, each asking a different question at the
    same moment: every one gets its checked answer, the later ones hear
    their place in the queue, and the facilitator's page lists every question."""
    import re
    import urllib.request

    url, process, printed = app
    started = time.monotonic()
    pages = []
    for _ in range(LOAD_SESSIONS):
        page = new_page(browser, tmp_path)
        page.goto(f"{url}?code={ROOM_CODE}", timeout=START)
        pages.append(page)
    for page in pages:
        page.locator("button.rr-send").wait_for(state="visible", timeout=START)
        page.evaluate("""() => { window.__statuses = [];
            new MutationObserver(() => document.querySelectorAll('.rr-status').forEach(
                s => window.__statuses.push(s.innerText))).observe(document.body,
                {subtree: true, childList: true, characterData: true}); }""")
    opened = time.monotonic() - started
    for page, question in zip(pages, LOAD_QUESTIONS):
        page.locator(".rr-question textarea").fill(question)
    asked = time.monotonic()
    for page in pages:
        page.locator("button.rr-send").click()
    for page, question in zip(pages, LOAD_QUESTIONS):
        page.locator(".rr-checked").first.wait_for(state="visible", timeout=ANSWER)
        assert question in page.locator(".rr-asked").first.inner_text()
        assert page.locator(".rr-turn").count() == 1  # its own conversation only
    answered = time.monotonic() - asked
    statuses = [s for page in pages for s in page.evaluate("window.__statuses")]
    assert any(re.search(r"waiting: \d+ ahead of you", s) for s in statuses), "no reader saw their place"
    facilitator = re.search(r"facilitator: (\S+)", printed).group(1)
    with urllib.request.urlopen(facilitator, timeout=30) as response:
        page = response.read().decode()
    assert all(html_escape(q) in page for q in LOAD_QUESTIONS)
    print(f"\n{LOAD_SESSIONS} sessions: opened in {opened:.0f} s, all answered {answered:.0f} s after asking")
    for page in pages:
        page.context.close()


def html_escape(text: str) -> str:
    import html

    return html.escape(text, quote=True)


def test_stopping_the_app_stops_its_service_and_voila(app):
    url, process, _ = app
    started = psutil.Process(process.pid).children(recursive=True)
    assert any("readingroom.ui.service" in " ".join(p.cmdline()) for p in started)
    assert any("voila" in " ".join(p.cmdline()) for p in started)
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=60)
    gone, alive = psutil.wait_procs(started, timeout=30)
    assert not alive, f"left running: {[p.cmdline() for p in alive]}"
