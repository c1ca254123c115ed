"""Fetching a feed from its URL: only when `update` is asked for, only over
http(s), with a timeout, and streamed through the same size cap as a file.

Nothing else in Reading Room's news reaches the network: adding a feed
records its URL, digests and alerts read the library.
"""
from __future__ import annotations

import contextlib
import urllib.error
import urllib.request
from urllib.parse import urlparse

from readingroom.corpus.textio import SourceError

TIMEOUT_S = 30
USER_AGENT = "ReadingRoom/0.1 (+offline study tool; feed reader)"


def is_url(location: str) -> bool:
    return urlparse(location).scheme.lower() in ("http", "https")


@contextlib.contextmanager
def open_url(url: str, timeout: float = TIMEOUT_S):
    """The response body as a binary stream (read lazily: the caller's size
    cap stops the download). SourceError for anything that goes wrong."""
    if not is_url(url):
        raise SourceError(url, "is not an http(s) URL; only those are fetched")
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT,
                                                   "Accept": "application/rss+xml, application/atom+xml, "
                                                             "application/xml;q=0.9, */*;q=0.5"})
    try:
        response = urllib.request.urlopen(request, timeout=timeout)  # noqa: S310 (scheme checked above)
    except urllib.error.HTTPError as e:
        raise SourceError(url, f"could not be fetched: the server answered {e.code} {e.reason}") from e
    except Exception as e:  # DNS, refused, timeout, no network (or sockets switched off in tests)
        raise SourceError(url, f"could not be fetched ({type(e).__name__}: {e}); nothing changed") from e
    with response:
        yield response
