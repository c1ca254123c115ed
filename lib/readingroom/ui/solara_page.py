"""The chat page under Solara: every reader's session in this one process.

    SOLARA_APP=readingroom.ui.solara_page   (set by readingroom.ui.solara_server)

Imported once, when the server starts: the library's newest copy (the
app's snapshot pointer, $READINGROOM_SNAPSHOT) is opened and its index,
vectors and embedder loaded then, for every session (readingroom.ui.
shared_search). Each session renders `Page`, whose Chat (its own
conversation, its own connection to the library copy, its own client to
the app's generation service) is made once per session by use_memo and
closed when the session ends. The page speaks its reader's language from
the start (ui.intro: the browser's Accept-Language, which the door passes on
with the session's websocket): the words above the chat and its labels.

A watcher thread loads a new copy as soon as the app announces it, so the
sessions find it ready when they move to it at their next question.
"""
from __future__ import annotations

import os
import threading

import solara
import solara.lab

from readingroom.ui.chat import Chat
from readingroom.ui.intro import intro_html, solara_language
from readingroom.ui.shared_search import SharedSearch
from readingroom.ui.snapshot import SNAPSHOT_VARIABLE
from readingroom.ui.study_tab import chat_with_study

PASSAGES = 5  # passages given to the model for each answer (as chat_page.ipynb)
WATCH_SECONDS = 5.0  # how often the snapshot pointer is read (as the app looks at the library)

if not os.environ.get(SNAPSHOT_VARIABLE):
    raise RuntimeError(f"${SNAPSHOT_VARIABLE} is not set: this page is served by `readingroom app --server solara`")
shared = SharedSearch(os.environ[SNAPSHOT_VARIABLE])
shared.current()  # loaded now, before the server listens: no reader waits for it


def _watch(stop: threading.Event) -> None:
    while not stop.wait(WATCH_SECONDS):
        try:
            shared.current()
        except Exception as e:  # the sessions keep the copy they have; a question tries again
            print(f"the library's new copy could not be loaded: {type(e).__name__}: {e}", flush=True)


stopping = threading.Event()
threading.Thread(target=_watch, args=(stopping,), name="readingroom-snapshots", daemon=True).start()


def new_page(language: str | None = None):
    """One reader's chat and its Study tab, as chat_page.ipynb shows them,
    in `language`."""
    return chat_with_study(Chat(shared=shared, k=PASSAGES, language=language))


@solara.component
def Page():
    language = solara_language(solara.lab.headers.value, solara.lab.cookies.value)
    tabs = solara.use_memo(lambda: new_page(language), dependencies=[])

    def close_when_gone():
        def close():
            tabs.chat.wait(1)
            if tabs.chat.library is not None:
                tabs.chat.library.close()  # this session's connection; the shared index stays
        return close

    solara.use_effect(close_when_gone, dependencies=[])
    with solara.Column(style={"max-width": "62em", "margin": "0 auto", "padding": "1em"}):
        solara.HTML(tag="div", unsafe_innerHTML=intro_html(language))  # our own text, from the catalogue
        solara.display(tabs)
