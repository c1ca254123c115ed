"""Fetching a feed from its URL: only when `update` is asked for, only over
http(s), within a total deadline, and streamed through the same size cap as
a file.

A feed's URL is the reader's, but where it redirects is the server's. So
every hop is checked: only http and https, and never an address on this
machine or its networks (loopback, private, link-local, multicast,
reserved), checked on the addresses DNS gives and on the very address
connected to, so a name that resolves to 127.0.0.1 is refused like the
number. No proxy is used (a proxy would connect on the feed's behalf, past
these checks). A server that trickles its answer is cut off at DEADLINE_S
in all, however often it sends a byte.

Nothing else in Reading Room's news reaches the network: adding a feed
records its URL, digests and alerts read the library.
"""
from __future__ import annotations

import contextlib
import http.client
import ipaddress
import socket
import threading
import time
import urllib.error
import urllib.request
from urllib.parse import urlparse

from readingroom.corpus.textio import SourceError

TIMEOUT_S = 30  # one read
DEADLINE_S = 120  # the whole fetch, redirects and body included
MAX_REDIRECTS = 5
USER_AGENT = "ReadingRoom/0.1 (+offline study tool; feed reader)"
ACCEPT = "application/rss+xml, application/atom+xml, application/xml;q=0.9, */*;q=0.5"

# Networks a test may open explicitly (allow_networks): empty otherwise.
_allowed_networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []


def is_url(location: str) -> bool:
    return urlparse(location).scheme.lower() in ("http", "https")


@contextlib.contextmanager
def allow_networks(*networks: str):
    """Let fetches reach these networks although they are local (for tests
    with a server on 127.0.0.1; nothing in Reading Room itself uses it)."""
    added = [ipaddress.ip_network(n) for n in networks]
    _allowed_networks.extend(added)
    try:
        yield
    finally:
        for n in added:
            _allowed_networks.remove(n)


def refused_address(address: str) -> str | None:
    """Why an IP address may not be fetched from, or None if it may."""
    ip = ipaddress.ip_address(address.split("%")[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    if any(ip in n for n in _allowed_networks):
        return None
    for kind in ("loopback", "link_local", "multicast", "unspecified", "reserved", "private"):
        if getattr(ip, f"is_{kind}"):
            return f"{address} is a {kind.replace('_', '-')} address"
    if not ip.is_global:
        return f"{address} is not a public address"
    return None


class FetchRefused(OSError):
    pass


class _Guard:
    """One fetch: its deadline, and the sockets it opened, shut when the
    deadline passes so that a read blocked on a trickling server returns."""

    def __init__(self, deadline_s: float):
        self.deadline = time.monotonic() + deadline_s
        self.sockets: list[socket.socket] = []
        self.expired = False
        self.timer = threading.Timer(deadline_s, self._expire)
        self.timer.daemon = True
        self.timer.start()

    def _expire(self):
        self.expired = True
        for sock in self.sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def check(self):
        if self.expired or time.monotonic() > self.deadline:
            raise TimeoutError("the total deadline passed")

    def connect(self, address, timeout, source_address=None):
        """socket.create_connection, to a checked address only."""
        host, port = address[0], address[1]
        self.check()
        try:
            found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except socket.gaierror as e:
            raise OSError(f"cannot resolve {host} ({e})") from e
        for *_, sockaddr in found:
            why = refused_address(sockaddr[0])
            if why:
                raise FetchRefused(f"{host} resolves to {why}, refused: feeds are fetched from public addresses only")
        last_error = None
        for family, kind, proto, _, sockaddr in found:
            sock = socket.socket(family, kind, proto)
            try:
                sock.settimeout(min(timeout, max(self.deadline - time.monotonic(), 0.1)))
                sock.connect(sockaddr)
                why = refused_address(sock.getpeername()[0])  # the address really connected to
                if why:
                    raise FetchRefused(f"{host} connected to {why}")
                sock.settimeout(timeout)
                self.sockets.append(sock)
                return sock
            except OSError as e:
                sock.close()
                if isinstance(e, FetchRefused):
                    raise
                last_error = e
        raise last_error or OSError(f"cannot connect to {host}")

    def close(self):
        self.timer.cancel()


def _guarded(connection_class, guard: _Guard):
    class Guarded(connection_class):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self._create_connection = guard.connect
    return Guarded


class _HTTPHandler(urllib.request.HTTPHandler):
    def __init__(self, guard: _Guard):
        super().__init__()
        self.connection = _guarded(http.client.HTTPConnection, guard)

    def http_open(self, req):
        return self.do_open(self.connection, req)


class _HTTPSHandler(urllib.request.HTTPSHandler):
    def __init__(self, guard: _Guard):
        super().__init__()
        self.connection = _guarded(http.client.HTTPSConnection, guard)

    def https_open(self, req):
        return self.do_open(self.connection, req, context=self._context)


class _RedirectHandler(urllib.request.HTTPRedirectHandler):
    max_redirections = MAX_REDIRECTS

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        if not is_url(newurl):
            raise FetchRefused(f"it redirects to {newurl[:200]!r}; only http(s) is followed")
        return super().redirect_request(req, fp, code, msg, headers, newurl)


class DeadlineReader:
    """The response body, read a network read at a time (never blocking for
    a whole buffer while a server trickles), stopped at the deadline."""

    def __init__(self, response, guard: _Guard, url: str, deadline_s: float):
        self.response, self.guard, self.url, self.deadline_s = response, guard, url, deadline_s

    def _overdue(self) -> SourceError:
        return SourceError(self.url, f"took longer than {self.deadline_s:g} s to fetch; cut off, nothing of it "
                                     "was stored")

    def read(self, size: int = -1) -> bytes:
        try:
            self.guard.check()
            data = self.response.read1(size if size and size > 0 else 64 * 1024)
            self.guard.check()
        except (TimeoutError, OSError, http.client.HTTPException) as e:
            if self.guard.expired or time.monotonic() > self.guard.deadline:
                raise self._overdue() from None
            raise SourceError(self.url, f"broke off while being fetched ({type(e).__name__}: {e})") from e
        return data


@contextlib.contextmanager
def open_url(url: str, timeout: float | None = None, deadline: float | None = None):
    """The response body as a binary stream (read lazily: the caller's size
    cap stops the download). SourceError for anything that goes wrong.
    `timeout`: for one read (TIMEOUT_S); `deadline`: for all (DEADLINE_S)."""
    timeout = TIMEOUT_S if timeout is None else timeout
    deadline = DEADLINE_S if deadline is None else deadline
    if not is_url(url):
        raise SourceError(url, "is not an http(s) URL; only those are fetched")
    guard = _Guard(deadline)
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), _HTTPHandler(guard),
                                         _HTTPSHandler(guard), _RedirectHandler())
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT, "Accept": ACCEPT})
    try:
        try:
            response = opener.open(request, timeout=timeout)
        except urllib.error.HTTPError as e:
            raise SourceError(url, f"could not be fetched: the server answered {e.code} {e.reason}") from e
        except Exception as e:  # DNS, refused, timeout, no network (or sockets switched off in tests)
            reason = e.reason if isinstance(e, urllib.error.URLError) else e
            if isinstance(reason, FetchRefused):
                raise SourceError(url, f"could not be fetched: {reason}") from e
            if guard.expired or time.monotonic() > guard.deadline:
                raise SourceError(url, f"took longer than {deadline:g} s to answer; cut off") from e
            raise SourceError(url, f"could not be fetched ({type(reason).__name__}: {reason}); nothing changed") from e
        with response:
            yield DeadlineReader(response, guard, url, deadline)
    finally:
        guard.close()
