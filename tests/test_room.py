"""The room's door, its library copies and its log: readingroom.ui.gate
in front of a real upstream (a small tornado server standing in for Voila,
with a websocket), on 127.0.0.1 only; readingroom.ui.snapshot with a real
DuckDB library and a real writer in another process; readingroom.ui.room
with corpus text that tries to be markup."""
from __future__ import annotations

import asyncio
import http.client
import json
import subprocess
import sys
import threading
import time

import pytest
from conftest import COMMUNE, EVIL, build_chat_library as build, tiny_document as doc

from readingroom import ingest, open_library
from readingroom.library.store import LibraryError
from readingroom.ui.gate import CODE_COOKIE, Room, facilitator_handlers, gate_application, host_name
from readingroom.ui.room import Cited, Entry, RoomLog, handout_html, handout_markdown, room_summary
from readingroom.ui.snapshot import LibrarySnapshots, current_snapshot

tornado = pytest.importorskip("tornado")
import tornado.httpclient  # noqa: E402
import tornado.ioloop  # noqa: E402
import tornado.web  # noqa: E402
import tornado.websocket  # noqa: E402

CODE = "k3x9mnpq"
KEY = "facilitator-key"
UPSTREAM_TOKEN = "upstream-secret"


# --- a stand-in for Voila, and the gate in front of it, in a thread's IOLoop ---------------

class Page(tornado.web.RequestHandler):
    def get(self, path):
        self.set_cookie("_xsrf", "upstream-cookie")
        self.finish(json.dumps({"path": path, "authorization": self.request.headers.get("Authorization"),
                                "host": self.request.headers.get("Host")}))


class Echo(tornado.websocket.WebSocketHandler):
    def check_origin(self, origin):
        return True

    def open(self):
        self.authorization = self.request.headers.get("Authorization")

    def on_message(self, message):
        self.write_message(f"{message} ({self.authorization})")


class Servers:
    def __init__(self, max_sessions: int, log):
        self.max_sessions, self.log = max_sessions, log
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        asyncio.set_event_loop(asyncio.new_event_loop())
        self.loop = tornado.ioloop.IOLoop.current()
        upstream = tornado.web.Application([(r"/api/kernels/k1/channels", Echo), (r"/(.*)", Page)])
        up_server = upstream.listen(0, address="127.0.0.1")
        up_port = next(iter(up_server._sockets.values())).getsockname()[1]
        self.room = Room(CODE, {"127.0.0.1", "localhost"}, self.max_sessions, KEY)
        gate = gate_application(self.room, up_port, UPSTREAM_TOKEN,
                                facilitator_handlers(self.room, self.log, "Manifesto, <week> 3"))
        server = gate.listen(0, address="127.0.0.1")
        self.port = next(iter(server._sockets.values())).getsockname()[1]
        self.ready.set()
        self.loop.start()

    def __enter__(self):
        self.thread.start()
        assert self.ready.wait(10)
        return self

    def __exit__(self, *exc):
        self.loop.add_callback(self.loop.stop)
        self.thread.join(10)


@pytest.fixture
def log(tmp_path):
    return RoomLog(tmp_path / "room-log.jsonl")


@pytest.fixture
def gate(log):
    with Servers(max_sessions=2, log=log) as servers:
        yield servers


def get(port, path, headers=None, host=None):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    headers = dict(headers or {})
    if host:
        headers["Host"] = host
    connection.request("GET", path, headers=headers)
    response = connection.getresponse()
    body = response.read()
    connection.close()
    return response, body


def cookies(response) -> str:
    return "; ".join(v.split(";", 1)[0] for k, v in response.getheaders() if k.lower() == "set-cookie")


def test_without_the_code_the_room_answers_403_even_on_the_loopback(gate):
    for path in ("/", "/voila/static/main.js", "/?code=wrong"):
        response, body = get(gate.port, path)
        assert response.status == 403 and b"needs its code" in body
    response, _ = get(gate.port, "/", {"Cookie": f"{CODE_COOKIE}=wrong"})
    assert response.status == 403


def test_the_code_in_the_link_becomes_a_cookie_and_the_upstream_gets_its_token(gate):
    response, _ = get(gate.port, "/?code=" + CODE)
    assert response.status == 302 and response.getheader("Location") == "/"  # the code leaves the address bar
    jar = cookies(response)
    assert f"{CODE_COOKIE}={CODE}" in jar
    response, body = get(gate.port, "/some/page?x=1", {"Cookie": jar})
    assert response.status == 200
    seen = json.loads(body)
    assert seen["path"] == "some/page" and seen["authorization"] == f"token {UPSTREAM_TOKEN}"
    assert "_xsrf=upstream-cookie" in cookies(response)  # the upstream's cookies reach the browser


def test_a_foreign_host_header_is_refused_with_the_code_too(gate):
    """DNS rebinding: a page at http://evil.example:PORT resolving to
    127.0.0.1 sends Host: evil.example:PORT."""
    for host in (f"evil.example:{gate.port}", "evil.example", f"127.0.0.1.evil.example:{gate.port}"):
        response, body = get(gate.port, "/?code=" + CODE, host=host)
        assert response.status == 403 and b"not the room" in body
    response, _ = get(gate.port, "/?code=" + CODE, host=f"localhost:{gate.port}")
    assert response.status == 302
    assert host_name("[::1]:8866") == "::1" and host_name("Example.ORG:80") == "example.org"


def test_the_room_holds_at_most_its_readers(gate):
    jars = []
    for _ in range(2):
        response, _ = get(gate.port, "/?code=" + CODE)
        response, _ = get(gate.port, "/", {"Cookie": cookies(response)})
        assert response.status == 200
        jars.append(f"{CODE_COOKIE}={CODE}; {cookies(response)}")
    assert gate.room.readers() == 2
    response, body = get(gate.port, "/", {"Cookie": f"{CODE_COOKIE}={CODE}"})  # a third reader
    assert response.status == 503 and b"The room is full (2 readers)" in body
    response, _ = get(gate.port, "/", {"Cookie": jars[0]})  # the first, reloading, is not a new reader
    assert response.status == 200
    response, _ = get(gate.port, "/static/x.js", {"Cookie": f"{CODE_COOKIE}={CODE}"})  # not a page: no kernel
    assert response.status == 200


def test_kernel_websockets_pass_through_with_the_code_only(gate):
    async def talk(headers):
        request = tornado.httpclient.HTTPRequest(f"ws://127.0.0.1:{gate.port}/api/kernels/k1/channels",
                                                 headers=headers)
        socket = await tornado.websocket.websocket_connect(request)
        await socket.write_message("hello")
        reply = await socket.read_message()
        socket.close()
        return reply

    origin = {"Origin": f"http://127.0.0.1:{gate.port}"}
    assert asyncio.run(talk({"Cookie": f"{CODE_COOKIE}={CODE}", **origin})) == f"hello (token {UPSTREAM_TOKEN})"
    with pytest.raises(tornado.httpclient.HTTPClientError, match="403"):
        asyncio.run(talk(origin))
    # Another site's page cannot open one with the reader's cookie.
    with pytest.raises(tornado.httpclient.HTTPClientError, match="403"):
        asyncio.run(talk({"Cookie": f"{CODE_COOKIE}={CODE}", "Origin": "http://evil.example"}))


# --- the room's log, the facilitator's view, the handout -------------------------------------

def entry(question, cited, abstained=False):
    return Entry(question=question, answer=f"An answer about {question} [1].", abstained=abstained,
                 model="smollm2", minute="2026-12-01 14:00", cited=cited)


EVIL_CITED = Cited(1, "p-evil", "Mallory <b>Markup</b>, Notes <i>on</i> the Commune", quote=EVIL,
                   url="javascript:alert(1)")
COMMUNE_CITED = Cited(1, "p-commune", "Marx, The Civil War in France", quote=COMMUNE,
                      url="https://www.marxists.org/archive/marx/works/1871/civil-war-france/", anchor="ch05")


def test_the_facilitator_sees_the_questions_and_the_passages_cited_most_and_gets_an_escaped_handout(gate, log):
    for e in (entry("When did the <script>Commune</script> fall?", [COMMUNE_CITED]),
              entry("What did the barricades look like?", [EVIL_CITED, COMMUNE_CITED]),
              entry("What is photosynthesis?", [], abstained=True)):
        line = json.dumps(e.to_dict())
        with log.path.open("a") as f:
            f.write(line + "\n")
    log.path.open("a").write("not json\n")  # a damaged line is skipped
    summary = room_summary(log.entries())
    assert summary.answered == 2 and summary.abstained == 1
    assert [(p.passage_id, p.times) for p in summary.passages] == [("p-commune", 2), ("p-evil", 1)]

    response, _ = get(gate.port, "/facilitator/")
    assert response.status == 403
    response, _ = get(gate.port, f"/facilitator/?key={KEY}", host=f"evil.example:{gate.port}")
    assert response.status == 403
    response, page = get(gate.port, f"/facilitator/?key={KEY}")
    page = page.decode()
    assert response.status == 200 and "What is photosynthesis?" in page
    assert "&lt;script&gt;Commune&lt;/script&gt;" in page and "<script>" not in page
    assert "Manifesto, &lt;week&gt; 3" in page
    assert page.index("photosynthesis") < page.index("barricades")  # newest first

    response, markdown = get(gate.port, f"/facilitator/handout.md?key={KEY}")
    markdown = markdown.decode()
    assert response.status == 200 and "attachment" in response.getheader("Content-Disposition")
    assert "<script" not in markdown and "<img" not in markdown and "&lt;img src=x" in markdown
    assert "- [1] Marx, The Civil War in France #ch05 <https://www.marxists.org/" in markdown
    assert "javascript:" not in markdown
    response, page = get(gate.port, f"/facilitator/handout.html?key={KEY}")
    page = page.decode()
    assert "<script" not in page and "<img" not in page and "<b>Markup" not in page
    assert 'href="javascript' not in page and 'href="https://www.marxists.org/' in page
    assert handout_markdown([], "x").startswith("# Reading Room: x")
    assert "<h1>Reading Room</h1>" in handout_html([])


# --- the library's copies: writers are never blocked ------------------------------------------

HOLD = """
import sys, time, duckdb
con = duckdb.connect(sys.argv[1], read_only=sys.argv[2] == "ro")
print("holding", flush=True)
time.sleep(float(sys.argv[3]))
"""


def test_writers_work_while_the_room_reads_its_copy_which_follows_the_library(tmp_path, monkeypatch):
    import readingroom.search.ann as ann_module
    import readingroom.search.index as index_module

    monkeypatch.setattr(index_module, "cache_dir", lambda: tmp_path / "cache")
    monkeypatch.setattr(ann_module, "cache_dir", lambda: tmp_path / "cache")
    db = build(tmp_path / "library.duckdb", embed=False)
    snapshots = LibrarySnapshots(db, tmp_path / "snapshots")
    first = snapshots.refresh()
    assert first.made and current_snapshot(snapshots.pointer) == first.path
    # Sessions in other processes hold the copy open, read-only, as the app's kernels do.
    reader = subprocess.Popen([sys.executable, "-c", HOLD, str(first.path), "ro", "60"], stdout=subprocess.PIPE,
                              text=True)
    try:
        assert reader.stdout.readline().strip() == "holding"
        assert not snapshots.changed() and not snapshots.refresh().made  # nothing new: no copy
        with open_library(db) as lib:  # a writer: not blocked
            ingest(lib, [doc("later", "The Federation of the Jura met in Sonvilier in 1871.", ["Bakunin"], 1871)],
                   progress=False)
        assert snapshots.changed()
        second = snapshots.refresh()
        assert second.made and second.path != first.path and current_snapshot(snapshots.pointer) == second.path
        with open_library(second.path, read_only=True) as copy:
            assert copy.con.execute("SELECT count(*) FROM documents").fetchone()[0] == 6
        with open_library(first.path, read_only=True) as copy:  # the sessions' old copy is still whole
            assert copy.con.execute("SELECT count(*) FROM documents").fetchone()[0] == 5
    finally:
        reader.kill()
        reader.wait()
    snapshots.close()
    assert not snapshots.folder.exists()


def test_a_library_held_by_a_writer_is_not_copied_and_the_error_names_the_process(tmp_path, monkeypatch):
    import readingroom.library.store as store

    monkeypatch.setattr(store, "LOCK_RETRY_SECONDS", 0.5)
    db = build(tmp_path / "library.duckdb", embed=False)
    snapshots = LibrarySnapshots(db, tmp_path / "snapshots")
    assert snapshots.refresh().made
    writer = subprocess.Popen([sys.executable, "-c", HOLD, db, "rw", "60"], stdout=subprocess.PIPE, text=True)
    try:
        assert writer.stdout.readline().strip() == "holding"
        with open(db, "ab"):
            pass
        import os

        os.utime(db)  # the library "changed" while the writer holds it
        held = snapshots.refresh()
        assert not held.made and held.path == snapshots.current
        assert f"(process {writer.pid}: " in held.reason and "open for writing in another process" in held.reason
        with pytest.raises(LibraryError, match=f"process {writer.pid}"):
            open_library(db)
    finally:
        writer.kill()
        writer.wait()
    assert snapshots.refresh().made  # the writer is gone: the copy is made at the next try
    snapshots.close()


def test_a_writer_waits_for_a_moment_s_copy_instead_of_failing(tmp_path):
    db = build(tmp_path / "library.duckdb", embed=False)
    reader = subprocess.Popen([sys.executable, "-c", HOLD, db, "ro", "1.5"], stdout=subprocess.PIPE, text=True)
    assert reader.stdout.readline().strip() == "holding"
    started = time.monotonic()
    with open_library(db) as lib:  # held read-only for 1.5 s more: waited for, then opened
        assert lib.con.execute("SELECT count(*) FROM documents").fetchone()[0] == 5
    assert time.monotonic() - started < 5
    reader.wait()


def test_the_door_allows_the_hosts_the_room_is_reached_by_and_nothing_else(monkeypatch):
    import readingroom.ui.app as app_module
    from readingroom.ui.app import plan_door

    local = plan_door("127.0.0.1", 8866, "abcd2345")
    assert local.join_link == "http://127.0.0.1:8866/?code=abcd2345"
    assert local.hosts == {"127.0.0.1", "localhost", "::1"}
    assert local.facilitator_code not in local.join_link and len(local.facilitator_code) >= 16
    # The room's network: its address (which the tests, offline, cannot ask the system for) and the machine's names.
    monkeypatch.setattr(app_module, "network_address", lambda: "192.168.1.20")
    room = plan_door("0.0.0.0", 8866)
    assert room.join_link.startswith("http://192.168.1.20:8866/?code=") and len(room.code) == 8
    assert "192.168.1.20" in room.hosts and "localhost" in room.hosts and "evil.example" not in room.hosts
    assert "example.org" in plan_door("127.0.0.1", 8866, extra_hosts=["Example.org"]).hosts
