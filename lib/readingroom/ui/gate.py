"""The room's door: a small proxy in front of the app's web server (Voila)
that lets in only readers with the room's code, from addresses the room
was started for, and no more readers than the room holds.

    browser ──► Gate (host:port, the address everyone is given)
                  │ Host header on the allowlist? (DNS rebinding: a web page on
                  │   another site that resolves its own name to 127.0.0.1 sends
                  │   its own name as Host, and is refused)
                  │ the room's code, in the link (?code=...) or the cookie the
                  │   link leaves? otherwise 403, on 127.0.0.1 too
                  │ a new page while the room is full? 503, saying so
                  ▼
                Voila on 127.0.0.1:<random port>, which itself wants a secret
                token that only the gate sends: nobody on the machine can
                walk around the door.

A reader is counted from the moment the page is served (a kernel starts
for it) until its kernel's websocket closes, or START_GRACE seconds after
the page if no websocket ever came. Kernel websockets are proxied as they
are; their Origin is checked against the Host (tornado's own check), so a
page on another site cannot open one with the reader's cookie.

    gate = Gate(upstream_port=8867, code="k3x9", upstream_token="...",
                hosts={"127.0.0.1", "localhost"}, max_sessions=40)
    gate.listen(8866, "127.0.0.1")      # then run tornado's IOLoop

Also serves the facilitator's pages (readingroom.ui.room) under
/facilitator, behind a second code of their own.
"""
from __future__ import annotations

import hmac
import secrets
import time
from urllib.parse import parse_qsl, urlencode, urlsplit

import tornado.escape
import tornado.httpclient
import tornado.httputil
import tornado.routing
import tornado.web
import tornado.websocket

from readingroom.messages import message, preferred_language
from readingroom.ui.intro import LANGUAGE_COOKIE

CODE_COOKIE = "readingroom-room"
READER_COOKIE = "readingroom-reader"
START_GRACE = 120.0  # seconds a served page counts as a reader before its websocket comes
PAGE_SECONDS = 600.0  # the longest the proxy waits for one upstream reply (the first page starts a kernel)
HOP_HEADERS = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
               "transfer-encoding", "upgrade", "content-length", "host", "origin"}
LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}

REFUSED_PAGE = """<!doctype html><meta charset="utf-8"><title>Reading Room</title>
<body style="font-family: sans-serif; max-width: 36em; margin: 4em auto; line-height: 1.5">
<h1>Reading Room</h1><p>{message}</p></body>"""


def refused_page(key: str, accept_language: str | None, **values) -> str:
    """The page a refused reader sees: the catalogue's message `key` in the
    language their browser asks for, escaped."""
    text = message(key, preferred_language(accept_language), **values)
    return REFUSED_PAGE.format(message=tornado.escape.xhtml_escape(text))


def room_code() -> str:
    """A code short enough to read out or type from a projected slide, long
    enough not to be guessed in a workshop's afternoon (8 characters of 32:
    2^40 possibilities)."""
    alphabet = "abcdefghjkmnpqrstuvwxyz23456789"  # no 0/o, 1/l/i: read from a screen across a room
    return "".join(secrets.choice(alphabet) for _ in range(8))


def host_name(host_header: str) -> str:
    """The name in a Host header, without the port: "[::1]:8866" -> "::1"."""
    host = (host_header or "").strip().lower()
    if host.startswith("["):
        return host[1:host.find("]")] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


class Room:
    """The door's state: the code, the allowed hosts, the readers in."""

    def __init__(self, code: str, hosts: set[str], max_sessions: int, facilitator_code: str | None = None):
        self.code = code
        self.hosts = {h.lower() for h in hosts}
        self.max_sessions = max_sessions
        self.facilitator_code = facilitator_code
        self.pages: dict[str, float] = {}  # reader id -> when a page was last served to it
        self.sockets: dict[str, int] = {}  # reader id -> open kernel websockets

    def readers(self) -> int:
        now = time.monotonic()
        for reader, served in list(self.pages.items()):
            if now - served > START_GRACE and not self.sockets.get(reader):
                del self.pages[reader]
        return len(set(self.pages) | {r for r, n in self.sockets.items() if n})

    def full_for(self, reader: str | None) -> bool:
        """Whether a new page for this reader would pass the cap (a reader
        already in, reloading, is not a new one)."""
        if reader and (reader in self.pages or self.sockets.get(reader)):
            return False
        return self.readers() >= self.max_sessions


class _Door:
    """What every proxied request goes through first (a mixin for both handlers)."""

    room: Room

    def initialize(self, room: Room, upstream: str, upstream_token: str):
        self.room, self.upstream, self.upstream_token = room, upstream, upstream_token

    def refuse(self, status: int, key: str, **values) -> None:
        """Refused with the catalogue's message `key`, in the browser's language."""
        self.set_status(status)
        self.set_header("Content-Type", "text/html; charset=utf-8")
        self.set_header("Cache-Control", "no-store")
        self.finish(refused_page(key, self.request.headers.get("Accept-Language"), **values))

    def let_in(self) -> bool:
        """Host allowed and the room's code given; otherwise refused here (False)."""
        if host_name(self.request.host) not in self.room.hosts:
            self.refuse(403, "room-wrong-address")
            return False
        given = self.get_query_argument("code", None) or self.get_cookie(CODE_COOKIE) or ""
        if not hmac.compare_digest(given.encode(), self.room.code.encode()):
            self.refuse(403, "room-needs-code")
            return False
        return True

    def reader(self) -> str:
        reader = self.get_cookie(READER_COOKIE)
        if not reader or len(reader) > 64:
            reader = secrets.token_urlsafe(16)
            self.set_cookie(READER_COOKIE, reader, httponly=True, samesite="Strict")
        return reader

    def upstream_headers(self) -> dict:
        headers = {k: v for k, v in self.request.headers.get_all() if k.lower() not in HOP_HEADERS
                   and not k.lower().startswith("sec-websocket")}
        headers["Authorization"] = f"token {self.upstream_token}"
        return headers


class HttpProxy(_Door, tornado.web.RequestHandler):
    SUPPORTED_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")

    async def prepare(self):
        if not self.let_in():
            return
        query = dict(parse_qsl(urlsplit(self.request.uri).query, keep_blank_values=True))
        if "code" in query:
            # The code is kept in a cookie and taken out of the address bar,
            # where it would be copied along with the link to a passage.
            self.set_cookie(CODE_COOKIE, self.room.code, httponly=True, samesite="Lax")
            query.pop("code")
            path = urlsplit(self.request.uri).path
            self.redirect(path + ("?" + urlencode(query) if query else ""))
            return
        if self.request.method == "GET" and self._is_page():
            reader = self.get_cookie(READER_COOKIE)
            if self.room.full_for(reader):
                self.refuse(503, "room-full", readers=self.room.max_sessions)
                return
            self.room.pages[self.reader()] = time.monotonic()
            # The page's language for the session it opens (ui.intro.solara_language).
            language = preferred_language(self.request.headers.get("Accept-Language"))
            self.set_cookie(LANGUAGE_COOKIE, language, httponly=True, samesite="Lax")

    async def get(self, *args):
        await self._forward()

    post = put = patch = delete = options = head = get

    def _is_page(self) -> bool:
        """The notebook page itself (each GET of it starts a kernel)."""
        return urlsplit(self.request.uri).path in ("/", "") or self.request.uri.startswith("/voila/render/")

    async def _forward(self):
        header_lines: list[str] = []
        started = False

        def on_header(line: str):
            header_lines.append(line)

        def on_chunk(chunk: bytes):
            nonlocal started
            if not started:
                started = True
                self._copy_headers(header_lines)
            self.write(chunk)
            self.flush()

        request = tornado.httpclient.HTTPRequest(
            self.upstream + self.request.uri, method=self.request.method, headers=self.upstream_headers(),
            body=self.request.body if self.request.method in ("POST", "PUT", "PATCH") else None,
            allow_nonstandard_methods=True, follow_redirects=False, request_timeout=PAGE_SECONDS,
            header_callback=on_header, streaming_callback=on_chunk, decompress_response=False)
        try:
            await tornado.httpclient.AsyncHTTPClient().fetch(request, raise_error=False)
        except (OSError, tornado.httpclient.HTTPClientError) as e:
            if not started:
                return self.refuse(502, "room-upstream-down", error=e)
            raise
        if not started:
            self._copy_headers(header_lines)
        self.finish()

    def _copy_headers(self, lines: list[str]) -> None:
        headers = tornado.httputil.HTTPHeaders()
        status = 502
        for line in lines:
            if line.startswith("HTTP/"):
                status = int(line.split(" ", 2)[1])
                headers = tornado.httputil.HTTPHeaders()  # a 100 Continue came before: start again
            elif line.strip():
                headers.parse_line(line)
        self.set_status(status)
        for name, value in headers.get_all():
            if name.lower() in HOP_HEADERS:
                continue
            if name.lower() == "location" and value.startswith(self.upstream):
                value = value[len(self.upstream):] or "/"
            if name.lower() == "set-cookie":
                self.add_header(name, value)
            else:
                self.set_header(name, value)


class SocketProxy(_Door, tornado.websocket.WebSocketHandler):
    """A kernel's websocket, passed through both ways."""

    upstream_socket = None
    counted: str | None = None

    async def get(self, *args, **kwargs):
        if not self.let_in():
            return
        await super().get(*args, **kwargs)

    def select_subprotocol(self, subprotocols):
        return None  # both ends then speak Jupyter's original protocol: nothing to translate

    async def open(self, *args, **kwargs):
        # The page set the reader's cookie; a socket without one counts as a reader of its own.
        self.counted = self.get_cookie(READER_COOKIE) or secrets.token_urlsafe(16)
        self.room.sockets[self.counted] = self.room.sockets.get(self.counted, 0) + 1
        url = "ws" + self.upstream[len("http"):] + self.request.uri
        request = tornado.httpclient.HTTPRequest(url, headers=self.upstream_headers(), request_timeout=60)
        try:
            self.upstream_socket = await tornado.websocket.websocket_connect(
                request, on_message_callback=self._from_upstream, max_message_size=64 << 20)
        except (OSError, tornado.httpclient.HTTPClientError, tornado.websocket.WebSocketError):
            self.close(1011, "the chat's server refused the connection")

    def _from_upstream(self, message):
        if message is None:
            self.close()
            return
        try:
            self.write_message(message, binary=isinstance(message, bytes))
        except tornado.websocket.WebSocketClosedError:
            pass

    def on_message(self, message):
        if self.upstream_socket is not None:
            self.upstream_socket.write_message(message, binary=isinstance(message, bytes))

    def on_close(self):
        if self.counted is not None:
            self.room.sockets[self.counted] = max(0, self.room.sockets.get(self.counted, 1) - 1)
            self.room.pages.pop(self.counted, None)
            self.counted = None
        if self.upstream_socket is not None:
            self.upstream_socket.close()


class _Upgrades(tornado.routing.Matcher):
    """Requests asking for a websocket."""

    def match(self, request):
        return {} if request.headers.get("Upgrade", "").lower() == "websocket" else None


def gate_application(room: Room, upstream_port: int, upstream_token: str,
                     extra_handlers: list | None = None) -> tornado.web.Application:
    """The door as a tornado Application, forwarding to 127.0.0.1:upstream_port.
    `extra_handlers`: (pattern, handler, kwargs) served by the gate itself,
    before the proxy (the facilitator's pages)."""
    tornado.httpclient.AsyncHTTPClient.configure(None, max_clients=200)
    upstream = f"http://127.0.0.1:{upstream_port}"
    options = {"room": room, "upstream": upstream, "upstream_token": upstream_token}
    rules = [tornado.routing.Rule(tornado.routing.PathMatches(pattern), handler, kwargs)
             for pattern, handler, kwargs in (extra_handlers or [])]
    rules += [tornado.routing.Rule(_Upgrades(), SocketProxy, options),
              tornado.routing.Rule(tornado.routing.PathMatches(r".*"), HttpProxy, options)]
    return tornado.web.Application(rules, websocket_max_message_size=64 << 20, xheaders=False)




# --- the facilitator's pages ----------------------------------------------------------------

class FacilitatorPages(tornado.web.RequestHandler):
    """/facilitator/ (the questions asked, the passages cited most),
    /facilitator/handout.md and .html, /facilitator/join-qr.png: behind the
    facilitator's own key, on the allowed hosts only."""

    def initialize(self, room: Room, log, name: str | None, qr):
        self.room, self.log, self.name, self.qr = room, log, name, qr

    def get(self, what: str):
        from readingroom.ui.room import facilitator_html, handout_html, handout_markdown

        given = self.get_query_argument("key", "")
        if host_name(self.request.host) not in self.room.hosts or not self.room.facilitator_code or \
                not hmac.compare_digest(given.encode(), self.room.facilitator_code.encode()):
            self.set_status(403)
            return self.finish(refused_page("room-facilitator-only", self.request.headers.get("Accept-Language")))
        self.set_header("Cache-Control", "no-store")
        entries = self.log.entries()
        if what == "":
            self.set_header("Content-Type", "text/html; charset=utf-8")
            self.finish(facilitator_html(entries, self.name, self.room.facilitator_code))
        elif what == "handout.md":
            self.set_header("Content-Type", "text/markdown; charset=utf-8")
            self.set_header("Content-Disposition", 'attachment; filename="reading-room-handout.md"')
            self.finish(handout_markdown(entries, self.name))
        elif what == "handout.html":
            self.set_header("Content-Type", "text/html; charset=utf-8")
            self.set_header("Content-Disposition", 'attachment; filename="reading-room-handout.html"')
            self.finish(handout_html(entries, self.name))
        elif what == "join-qr.png" and self.qr is not None:
            self.set_header("Content-Type", "image/png")
            self.finish(self.qr.read_bytes())
        else:
            self.set_status(404)
            self.finish("not found")


def facilitator_handlers(room: Room, log, name: str | None, qr=None) -> list:
    return [(r"/facilitator/(|handout\.md|handout\.html|join-qr\.png)",
             FacilitatorPages, {"room": room, "log": log, "name": name, "qr": qr})]
