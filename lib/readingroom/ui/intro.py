"""The words above the chat, in the reader's language, before any question.

The reader's language is the first their browser asks for (Accept-Language)
that the message catalogue has (readingroom.messages.preferred_language):
- under Solara (readingroom.ui.solara_page), from a cookie the room's door
  sets when it serves the page (LANGUAGE_COOKIE: the page request carries
  the reader's languages; a websocket's handshake need not, as Chromium 150
  under an emulated locale shows), else from the headers of the session's
  websocket, which the door passes on as the browser sent them
  (`solara_language`);
- under Voila, from $HTTP_ACCEPT_LANGUAGE, which Voila sets in the page's
  kernel when the app asks it to pass that header on
  (VoilaConfiguration.http_header_envs, readingroom.ui.app); with a
  preheated kernel the page waits for its request first (`page_language`).
In a notebook it is English, the catalogue's fallback.

The text is our own Markdown from the catalogue ("page-intro"), never the
corpus's, rendered here rather than by a Markdown widget that would ask a
CDN for KaTeX.
"""
from __future__ import annotations

import os
from functools import lru_cache
from html import escape

from readingroom.messages import languages, message, preferred_language

ACCEPT_LANGUAGE_VARIABLE = "HTTP_ACCEPT_LANGUAGE"  # Voila's name for the header (RFC 3875)
LANGUAGE_COOKIE = "readingroom-language"  # the catalogue's code for the page's reader, set by the door


def page_language() -> str:
    """The reader's language where Voila serves this kernel's page; English
    elsewhere. A preheated kernel runs the page before its reader asks for
    it: this waits for that request (voila.utils.wait_for_request, which
    returns at once outside a preheated kernel)."""
    if os.environ.get("VOILA_PREHEAT") == "True" and ACCEPT_LANGUAGE_VARIABLE not in os.environ:
        # voila is there: it runs this kernel
        from voila.utils import wait_for_request

        wait_for_request()
    return preferred_language(os.environ.get(ACCEPT_LANGUAGE_VARIABLE))


def solara_language(headers: dict | None, cookies: dict | None = None) -> str:
    """The reader's language from a Solara session's cookies (the door's
    LANGUAGE_COOKIE, when it is a language the catalogue has) or its headers
    (solara.lab.headers: lower-case names, each with a list of values)."""
    chosen = (cookies or {}).get(LANGUAGE_COOKIE)
    if chosen and chosen in languages():
        return chosen
    values = (headers or {}).get("accept-language") or []
    return preferred_language(values[0] if values else None)


@lru_cache(maxsize=None)
def intro_html(language: str | None, title: bool = True) -> str:
    """The page's title (with `title`) and what the chat can do and cannot,
    as HTML, in `language`."""
    import markdown

    heading = f"<h1>{escape(message('page-title', language))}</h1>\n" if title else ""
    return heading + markdown.markdown(message("page-intro", language))


def served_by_voila() -> bool:
    """Whether Voila runs this kernel (it sets $VOILA_PREHEAT in every kernel it starts)."""
    return "VOILA_PREHEAT" in os.environ


def intro(language: str | None, title: bool | None = None):
    """`intro_html` to display in a notebook, or in the page Voila serves;
    `title` None: the title only there (a notebook has its own heading)."""
    from IPython.display import HTML

    return HTML(intro_html(language, served_by_voila() if title is None else title))


__all__ = ["LANGUAGE_COOKIE", "page_language", "solara_language", "intro_html", "intro", "served_by_voila"]
