"""`readingroom app`: the chat as a web page for a workshop room.

    readingroom app [--room "Manifesto, week 3"] [--db FILE] [--port 8866] [--host 127.0.0.1]
                    [--model NAME] [--max-readers 40] [--questions-per-minute 4] [--server solara|voila]

It prints a join link with the room's code (and writes it as a QR code
picture to project), and a facilitator's link. Four parts:
1. this process: the door (readingroom.ui.gate, on host:port): the Host
   header on the allowlist, the room's code, a cap on readers; the
   facilitator's pages; the library's snapshots (readingroom.ui.snapshot),
   refreshed when the library changes; and it stops the others on Ctrl-C;
2. the generation service (readingroom.ui.service), holding the one
   model: loaded once, whatever the number of readers;
3. the page's server, on 127.0.0.1 at a port of its own behind a token
   only the door sends. By default Solara (readingroom.ui.solara_server):
   every reader's session is a thread of that one process, over one
   search index loaded once (readingroom.ui.solara_page,
   readingroom.ui.shared_search), so an extra reader costs about a
   megabyte; with `--server voila`, Voila gives every browser session a
   kernel of its own (its own search index, embedder and vectors, some
   600 MB) running the app's page (chat_page.ipynb, shipped in the
   package: the chat notebook without its notebook-only cells);
4. the kernels (or Solara's sessions), which read the newest snapshot of the library (never the
   library itself: writers are never blocked), ask the service for
   generation, append what was asked to the room's log, and limit each
   reader's questions per minute.
"""
from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from readingroom.library.store import LibraryError
from readingroom.paths import cache_dir, default_library_path
from readingroom.ui.room import LOG_VARIABLE, QUESTIONS_VARIABLE, ROOM_VARIABLE
from readingroom.ui.service import TOKEN_VARIABLE, URL_VARIABLE
from readingroom.ui.snapshot import SNAPSHOT_VARIABLE

PAGE = "chat_page.ipynb"  # package data: readingroom/ui/chat_page.ipynb
DEFAULT_PORT = 8866  # Voila's own default
START_SECONDS = 600  # loading a model from a slow disk, or building the search index the first time
IDLE_KERNEL_SECONDS = 900  # a session whose page is gone (closed without saying so) gives its memory back after this
SNAPSHOT_SECONDS = 5.0  # how often the library is looked at for changes (a stat, no lock)
DEFAULT_MAX_READERS = 40
DEFAULT_QUESTIONS_PER_MINUTE = 4
SERVERS = ("voila", "solara")  # what serves the page: a kernel per reader, or every reader in one process


class AppError(Exception):
    pass


def app_page(folder: Path) -> Path:
    """The page the app serves, copied from the package into `folder`
    (Voila's working folder, which also holds its configuration)."""
    path = folder / PAGE
    path.write_bytes(resources.files("readingroom.ui").joinpath(PAGE).read_bytes())
    return path


def prepare_library(db: Path) -> None:
    """Check the library opens, upgrading its schema once if an earlier
    Reading Room wrote it (the sessions open copies read-only)."""
    from readingroom.library.store import LibraryOutdated, open_library

    if not db.exists():
        raise AppError(f"{db}: no library here yet; `bash setup.sh` builds the default one "
                       "(or `readingroom corpus add anarchist-faq`)")
    try:
        try:
            open_library(db, read_only=True).close()
        except LibraryOutdated:
            open_library(db).close()
    except LibraryError as e:
        raise AppError(str(e)) from e


def index_snapshot(path: Path) -> None:
    """Build a snapshot's BM25 index into the cache now, once, rather than in
    every session's kernel at the same time."""
    from readingroom.library.store import open_library
    from readingroom.search.searcher import SearchIndex

    with open_library(path, read_only=True) as lib:
        SearchIndex.load(lib, vectors=False, progress=True)


def child_environment(**variables) -> dict:
    """The environment of the app's processes: this one's, with this
    readingroom first on the path, so that the service and the kernels run
    the same code as the app that started them."""
    here = str(Path(__file__).resolve().parents[2])
    path = os.pathsep.join(p for p in (here, os.environ.get("PYTHONPATH")) if p)
    return {**os.environ, "PYTHONPATH": path, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", **variables}


def start_service(model: str, backend: str, token: str, slots: int | None = None) -> tuple[subprocess.Popen, str]:
    """The generation service in its own process; (process, URL) once its
    model is loaded. A model that cannot be loaded (not fetched, damaged)
    stops the app with the loader's message. `slots`: answers decoded
    together (None: the service's default)."""
    env = child_environment(**{TOKEN_VARIABLE: token})
    process = subprocess.Popen([sys.executable, "-m", "readingroom.ui.service", "--model", model,
                                "--backend", backend, *(["--slots", str(slots)] if slots else [])],
                               stdout=subprocess.PIPE, text=True, env=env)
    line = process.stdout.readline()
    try:
        ready = json.loads(line)
    except ValueError:
        ready = {"error": f"the generation service stopped before it was ready (exit code {process.poll()})"}
    if "url" not in ready:
        stop(process)
        raise AppError(f"the model {model} could not be loaded: {ready.get('error')}")
    return process, ready["url"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_voila(folder: Path, port: int, token: str, env: dict) -> subprocess.Popen:
    """Voila on the loopback only, wanting `token` (the door sends it). The
    token is in a configuration file in Voila's working folder, readable by
    this user only, not on its command line, which every user can read."""
    config = folder / "voila.json"
    config.touch(mode=0o600)
    # Accept-Language reaches the page's kernel as $HTTP_ACCEPT_LANGUAGE: the
    # page speaks its reader's language before the first question (ui.intro).
    config.write_text(json.dumps({"Voila": {"token": token},
                                  "VoilaConfiguration": {"http_header_envs": ["Accept-Language"]}}),
                      encoding="utf-8")
    page = app_page(folder)
    return subprocess.Popen(
        [sys.executable, "-m", "voila", str(page), "--no-browser", f"--port={port}", "--Voila.ip=127.0.0.1",
         "--Voila.port_retries=0",
         "--strip_sources=True", "--show_tracebacks=False", "--preheat_kernel=True", "--pool_size=1",
         f"--MappingKernelManager.cull_idle_timeout={IDLE_KERNEL_SECONDS}",
         "--MappingKernelManager.cull_interval=60"],
        cwd=folder, env=env)


def start_solara(port: int, token: str, env: dict) -> subprocess.Popen:
    """Solara on the loopback only (readingroom.ui.solara_server): every
    session in this one process, over one shared index. The token it wants
    (the door sends it) goes in its environment, which only this user can
    read."""
    from readingroom.ui.solara_server import UPSTREAM_TOKEN_VARIABLE

    return subprocess.Popen([sys.executable, "-m", "readingroom.ui.solara_server", f"--port={port}"],
                            env={**env, UPSTREAM_TOKEN_VARIABLE: token})


def wait_until_serving(host: str, port: int, process: subprocess.Popen, seconds: float = START_SECONDS,
                       name: str = "Voila") -> None:
    """Until the server accepts connections. Only connects: a GET of the
    page would start a session that nobody uses."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AppError(f"{name} stopped (exit code {process.returncode})")
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
            s.settimeout(2)
            if s.connect_ex((host, port)) == 0:
                return
        time.sleep(0.3)
    raise AppError(f"{name} did not listen on {host}:{port} within {seconds:.0f} s")


def stop(process: subprocess.Popen | None) -> None:
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


# --- the room's addresses ---------------------------------------------------------------

def network_address() -> str | None:
    """This machine's address on its network, as others in the room reach
    it. A UDP socket "connected" to a private address sends nothing; it only
    makes the system choose the interface it would use."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("10.254.254.254", 9))
            address = s.getsockname()[0]
        except OSError:
            return None
    return None if address.startswith("127.") else address


@dataclass(frozen=True)
class Door:
    """Where the room is reached and who may come in."""

    shown_host: str  # the host in the join link
    hosts: frozenset[str]  # Host headers allowed (DNS rebinding: nothing else)
    port: int
    code: str
    facilitator_code: str

    def url(self, path: str = "/") -> str:
        host = f"[{self.shown_host}]" if ":" in self.shown_host else self.shown_host
        return f"http://{host}:{self.port}{path}"

    @property
    def join_link(self) -> str:
        return self.url(f"/?code={self.code}")

    @property
    def facilitator_link(self) -> str:
        return self.url(f"/facilitator/?key={self.facilitator_code}")


def plan_door(host: str, port: int, code: str | None = None, extra_hosts=()) -> Door:
    from readingroom.ui.gate import LOCAL_HOSTS, room_code

    hosts = set(LOCAL_HOSTS) | {h.lower() for h in extra_hosts}
    if host in ("", "0.0.0.0", "::"):
        address = network_address()
        shown = address or "127.0.0.1"
        name = socket.gethostname().lower()
        hosts |= {name, f"{name}.local"} | ({address} if address else set())
    else:
        shown = "127.0.0.1" if host == "localhost" else host
        hosts.add(host.lower())
    return Door(shown, frozenset(hosts), port, code or room_code(), secrets.token_urlsafe(12))


def write_qr(link: str, path: Path) -> Path:
    """The join link as a QR code picture (PNG), large enough to project."""
    import segno

    segno.make(link, error="m").save(str(path), scale=12, border=4)
    return path


# --- running it ------------------------------------------------------------------------------

def run_app(db=None, *, host: str = "127.0.0.1", port: int = DEFAULT_PORT, model: str | None = None,
            backend: str = "llama.cpp", room: str | None = None, code: str | None = None,
            max_readers: int = DEFAULT_MAX_READERS, questions_per_minute: int = DEFAULT_QUESTIONS_PER_MINUTE,
            allow_hosts=(), server: str = "solara", echo=print) -> None:
    """Serve the room until interrupted (see the module notes). `server`:
    "solara" (every reader in one process, over one shared index:
    readingroom.ui.solara_page) or "voila" (a kernel per reader)."""
    if server not in SERVERS:
        raise AppError(f"unknown server {server!r}; choose one of {', '.join(SERVERS)}")
    import tornado.ioloop

    from readingroom import deployment
    from readingroom.models.catalogue import DEFAULT_GENERATOR
    from readingroom.ui.gate import Room, facilitator_handlers, gate_application
    from readingroom.ui.room import RoomLog
    from readingroom.ui.snapshot import LibrarySnapshots

    db = Path(db).expanduser().resolve() if db else default_library_path()
    model = model or deployment.current().generator or DEFAULT_GENERATOR
    echo(f"library: {db}")
    prepare_library(db)
    folder = cache_dir() / "app" / f"room-{os.getpid()}"
    folder.mkdir(parents=True, exist_ok=True)
    snapshots = LibrarySnapshots(db)
    made = snapshots.refresh(prepare=index_snapshot)
    if made.path is None:
        raise AppError(f"the library could not be copied for the room: {made.reason}")
    door = plan_door(host, port, code, allow_hosts)
    log = RoomLog(folder / "room-log.jsonl")
    echo(f"loading the model {model} once, for every session ...")
    with_signal = _stop_on_terminate()
    service_token, voila_token = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    service, service_url = start_service(model, backend, service_token)
    voila, loop = None, None
    try:
        env = child_environment(**{
            SNAPSHOT_VARIABLE: str(snapshots.pointer), URL_VARIABLE: service_url, TOKEN_VARIABLE: service_token,
            "READINGROOM_GENERATOR": model, LOG_VARIABLE: str(log.path), ROOM_VARIABLE: room or "",
            QUESTIONS_VARIABLE: str(questions_per_minute),
            "READINGROOM_DB": str(snapshots.current)})
        voila_port = free_port()
        if server == "solara":
            voila = start_solara(voila_port, voila_token, env)
        else:
            voila = start_voila(folder, voila_port, voila_token, env)
        server_name = "Solara" if server == "solara" else "Voila"
        wait_until_serving("127.0.0.1", voila_port, voila, name=server_name)
        qr = write_qr(door.join_link, folder / "join-qr.png")
        the_room = Room(door.code, set(door.hosts), max_readers, door.facilitator_code)
        application = gate_application(the_room, voila_port, voila_token,
                                       facilitator_handlers(the_room, log, room, qr))
        # The links are printed before the door opens: whoever finds the port
        # open (a facilitator, a script, the tests) finds them printed too.
        name = f"Reading Room: {room}" if room else "Reading Room chat"
        echo(f"\n{name}\n  join:        {door.join_link}\n  QR code:     {qr}  (project it; it holds the join link)"
             f"\n  facilitator: {door.facilitator_link}  (for you only: the questions asked, the handout)"
             f"\n  up to {max_readers} readers, {questions_per_minute} questions a minute each   (Ctrl-C to stop)")
        if host not in ("127.0.0.1", "localhost", "::1"):
            echo(f"listening on {host}: anyone on the network with the code can join")
        application.listen(port, address=host or "")

        loop = tornado.ioloop.IOLoop.current()
        refreshing = threading.Lock()

        def refresh():
            if not refreshing.acquire(blocking=False):
                return
            try:
                done = snapshots.refresh(prepare=index_snapshot)
                if done.made:
                    echo("the library changed: the room now reads its new passages")
            except Exception as e:  # the room goes on with the copy it has
                echo(f"the library's new copy could not be made ({type(e).__name__}: {e}); the room keeps the last")
            finally:
                refreshing.release()

        def watch():
            if voila.poll() is not None or service.poll() is not None:
                loop.stop()
            elif snapshots.changed():
                loop.run_in_executor(None, refresh)

        tornado.ioloop.PeriodicCallback(watch, SNAPSHOT_SECONDS * 1000).start()
        loop.start()
        if service.poll() is not None:
            raise AppError(f"the generation service stopped (exit code {service.returncode})")
        if voila.poll() is not None:
            raise AppError(f"{server_name} stopped (exit code {voila.returncode})")
    except KeyboardInterrupt:
        echo("stopping ...")
    finally:
        stop(voila)
        stop(service)
        snapshots.close()
        (folder / "voila.json").unlink(missing_ok=True)  # its token is no use to anyone now
        if log.path.exists():
            echo(f"the room's questions and answers (no names): {log.path}")
        with_signal()


def _stop_on_terminate():
    """SIGTERM (a service manager, a test) ends the app as Ctrl-C does, so
    that its processes are stopped too; returns what puts it back."""
    try:
        previous = signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    except ValueError:  # not the main thread: leave signals alone
        return lambda: None
    return lambda: signal.signal(signal.SIGTERM, previous)
