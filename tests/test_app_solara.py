"""`readingroom app --server solara`: every reader's session in one
process over one shared index (readingroom.ui.shared_search,
ui.solara_page, ui.solara_server), behind the same door.

- the shared index with the real MiniLM and a real DuckDB copy: sessions
  share the index but not a connection, search at the same moment from
  many threads with the same results as one alone, and move to a new copy
  of the library (loaded once) at their next question;
- the app in real Chromium on 127.0.0.1: the door answers 403 without the
  code, Solara itself refuses what did not come through the door and
  never fetches from a CDN, two readers have their own conversations (the
  answer written from a thread, the download link, the facilitator's
  page), and a passage added to the library while the room is open is
  found at the next question.
"""
from __future__ import annotations

import html
import http.client
import re
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import psutil
import pytest
from conftest import build_chat_library, tiny_document
from test_browser import (ANSWER, START, browser, environment, free_port, german_reader_sees_german,  # noqa: F401
                          new_page, stop_tree, wait_for_port)

from readingroom import ingest, open_library
from readingroom.models.catalogue import TEST_GENERATOR
from readingroom.search.searcher import Searcher
from readingroom.ui.gate import CODE_COOKIE
from readingroom.ui.shared_search import LockedEmbedder, SharedSearch
from readingroom.ui.snapshot import LibrarySnapshots

pytestmark = pytest.mark.slow

JURA = "The Federation of the Jura met in Sonvilier in 1871."
QUESTIONS = ["When was the Paris Commune crushed?", "Who lived in damp cellars in Manchester?",
             "Where were the decrees posted?", "What went up in March 1871?"]


@pytest.fixture
def snapshots(tmp_path, monkeypatch):
    import readingroom.search.ann as ann_module
    import readingroom.search.index as index_module

    monkeypatch.setattr(index_module, "cache_dir", lambda: tmp_path / "cache")
    monkeypatch.setattr(ann_module, "cache_dir", lambda: tmp_path / "cache")
    db = build_chat_library(tmp_path / "library.duckdb", embed=True)
    made = LibrarySnapshots(db, tmp_path / "snapshots")
    assert made.refresh().made
    yield db, made
    made.close()


def test_sessions_share_one_index_search_at_once_and_move_to_a_new_copy(snapshots):
    db, copies = snapshots
    shared = SharedSearch(copies.pointer)
    sessions = [shared.open() for _ in range(8)]
    (library, searcher), *others = sessions
    assert all(s.index is searcher.index for _, s in others)  # loaded once
    assert len({id(lib.con) for lib, _ in sessions}) == len(sessions)  # a connection each
    assert isinstance(searcher.index.embedder, LockedEmbedder)  # hybrid: MiniLM vectors are there

    alone = {q: [h.passage_id for h in searcher.search(q, k=3)] for q in QUESTIONS}
    found, errors = {}, []

    def session(i):
        _, s = sessions[i]
        try:
            for _ in range(5):
                q = QUESTIONS[i % len(QUESTIONS)]
                found.setdefault(i, []).append((q, [h.passage_id for h in s.search(q, k=3)]))
        except Exception as e:  # "Already borrowed" from a tokenizer used by two threads, a DuckDB error
            errors.append(e)

    threads = [threading.Thread(target=session, args=(i,)) for i in range(len(sessions))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors
    assert all(ids == alone[q] for runs in found.values() for q, ids in runs)

    # The library changes: a new copy; the sessions move at their next question, to one index loaded once.
    with open_library(db) as lib:
        ingest(lib, [tiny_document("jura", JURA, ["Bakunin"], 1871)], progress=False)
    assert copies.refresh().made
    assert not shared.is_current(library)
    moved = [shared.open() for _ in range(3)]
    assert all(s.index is moved[0][1].index is not searcher.index for _, s in moved)
    assert all(shared.is_current(lib) for lib, _ in moved)
    assert len(moved[0][1].index) == len(searcher.index) + 1  # the new passage (no vector yet: found by its words)
    assert "Sonvilier" in moved[0][1].search("Where did the Federation of the Jura meet?", k=1, mode="bm25")[0].text
    # A session that has not moved yet still searches its own copy.
    assert isinstance(searcher, Searcher) and searcher.search(QUESTIONS[0], k=1)
    for lib, _ in sessions + moved:
        lib.close()


# --- the app in a browser --------------------------------------------------------------------

ROOM_CODE = "solararoom"


@pytest.fixture(scope="module")
def solara_app(environment, request):
    """`readingroom app --server solara` on the browser tests' tiny library (its words only)."""
    folder, db, env = environment
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "readingroom.cli", "app", "--db", db, "--port", str(port),
                                "--model", TEST_GENERATOR, "--code", ROOM_CODE, "--server", "solara"], env=env,
                               stdout=open(folder / "solara-app.log", "w"), stderr=subprocess.STDOUT)
    request.addfinalizer(lambda: stop_tree(process))
    wait_for_port(port, process)
    return f"http://127.0.0.1:{port}/", process, folder, db


def test_the_solara_app_keeps_the_door_and_gives_each_reader_a_conversation(browser, solara_app, tmp_path):
    url, process, folder, db = solara_app
    for request in (urllib.request.Request(url), urllib.request.Request(f"{url}?code=wrong"),
                    urllib.request.Request(f"{url}?code={ROOM_CODE}", headers={"Host": "evil.example"})):
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=30)
        assert refused.value.code == 403
    # Solara itself, on a port of its own, wants the token only the door sends;
    # with it, a browser file solara-assets does not hold is a 404, not a CDN fetch.
    server = next(p for p in psutil.Process(process.pid).children(recursive=True)
                  if "readingroom.ui.solara_server" in " ".join(p.cmdline()))
    upstream = next(c.laddr.port for c in server.net_connections("tcp") if c.status == "LISTEN")
    for path in ("/", "/static/assets/style.css"):
        connection = http.client.HTTPConnection("127.0.0.1", upstream, timeout=30)
        connection.request("GET", path, headers={"Authorization": "token guessed"})
        assert connection.getresponse().status == 403
        connection.close()
    with_code = {"Cookie": f"{CODE_COOKIE}={ROOM_CODE}"}
    with pytest.raises(urllib.error.HTTPError) as missing:
        urllib.request.urlopen(urllib.request.Request(f"{url}_solara/cdn/not-a-package@1.0.0/x.js",
                                                      headers=with_code), timeout=30)
    assert missing.value.code == 404
    held = f"{url}_solara/cdn/@widgetti/solara-vuetify-app@10.1.1/dist/solara-vuetify-app8.min.js"
    with urllib.request.urlopen(urllib.request.Request(held, headers=with_code), timeout=30) as response:
        assert response.status == 200 and len(response.read()) > 100_000

    reader = new_page(browser, tmp_path)
    started = time.monotonic()
    reader.goto(f"{url}?code={ROOM_CODE}", timeout=START)
    reader.locator(".rr-chat").wait_for(state="visible", timeout=START)
    opened = time.monotonic() - started
    assert "code=" not in reader.url  # the code went into a cookie
    assert reader.get_by_text("What it can do, and what it cannot").count() == 1  # the page's notes
    assert reader.locator(".rr-tabs").count() == 1  # the chat beside its Study tab, as under Voila
    question = "When was the Paris Commune crushed by the army of Versailles?"
    reader.locator(".rr-question textarea").fill(question)
    reader.locator("button.rr-send").click()
    assert question in reader.locator(".rr-asked").first.inner_text()

    other = new_page(browser, tmp_path)  # a second reader, while the first's answer is written
    other.goto(f"{url}?code={ROOM_CODE}", timeout=START)
    other.locator(".rr-chat").wait_for(state="visible", timeout=START)
    reader.locator(".rr-checked").first.wait_for(state="visible", timeout=ANSWER)  # written from a thread
    assert reader.locator(".rr-card").count() >= 1
    assert other.locator(".rr-turn").count() == 0 and other.get_by_text(question).count() == 0
    assert reader.locator(".rr-turn").count() == 1
    with reader.expect_download(timeout=START) as download:  # the reader's own conversation, as Markdown
        reader.locator("a.rr-download").click()
    assert question in Path(download.value.path()).read_text()
    # The facilitator's page (served by the door) hears the question from Solara's process.
    printed = (folder / "solara-app.log").read_text()
    with urllib.request.urlopen(re.search(r"facilitator: (\S+)", printed).group(1), timeout=30) as response:
        assert html.escape(question, quote=True) in response.read().decode()
    print(f"\nfirst page in {opened:.1f} s")

    # The library changes while the room is open: the app copies it, Solara loads the copy once,
    # and the second reader's next question searches it (no restart).
    with open_library(db) as lib:
        ingest(lib, [tiny_document("jura", JURA, ["Bakunin"], 1871)], progress=False)
    deadline = time.monotonic() + 120
    while "the room now reads its new passages" not in (folder / "solara-app.log").read_text():
        assert time.monotonic() < deadline, "the app did not copy the changed library"
        time.sleep(1)
    other.locator(".rr-question textarea").fill("Where did the Federation of the Jura meet in 1871?")
    other.locator("button.rr-send").click()
    other.locator(".rr-card").first.wait_for(state="visible", timeout=ANSWER)
    assert "Sonvilier" in other.locator(".rr-chat").text_content()
    other.context.close()
    reader.context.close()


def test_the_solara_page_speaks_the_browsers_language_before_the_first_question(browser, solara_app):
    url, *_ = solara_app
    german_reader_sees_german(browser, f"{url}?code={ROOM_CODE}")
