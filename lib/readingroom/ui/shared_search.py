"""One search index for every reader in the process (the app under Solara).

Under Voila every reader's kernel loads torch, the embedder, the BM25
index and the vectors for itself (about 600 MB each). Under Solara all
readers' sessions are threads of one process, so the read-only things are
loaded once here and shared:

    shared = SharedSearch(pointer)      # the app's snapshot pointer (readingroom.ui.snapshot)
    library, searcher = shared.open()   # per session: its own connection, the one index
    shared.is_current(library)          # False once a newer snapshot came: open() again

What is shared and why that is safe across the sessions' threads:
- the SearchIndex (BM25 matrix, vectors, document table): numpy arrays
  only read after loading;
- the embedder: a torch model is safe to call from several threads; its
  fast tokenizer is not promised to be (huggingface/tokenizers#537,
  "Already borrowed"; eight threads encoding at once here raised nothing,
  with the versions of today). Encoding in parallel gains nothing anyway
  (torch already uses every core for one call), so texts are encoded one
  call at a time behind a lock: a query, or an answer's sentences for the
  check, takes milliseconds;
- the snapshot's DuckDB database: each session gets a connection of its
  own (DuckDB connections must not be used from two threads at once); in
  one process they share the one opened database and its cache.

A new snapshot (the library changed) is loaded once, by whichever comes
first (the page's watcher, or a reader's question), under a lock; the
sessions move to it at their next question. The generation before stays
open for sessions still using it, and goes when the last lets it go.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

from readingroom.library.store import Library, open_library
from readingroom.search.index import SearchIndex
from readingroom.search.searcher import Searcher
from readingroom.ui.snapshot import current_snapshot

WARM_UP_QUESTION = "What does the library say about this?"
# One lock for every generation's embedder: they are the same loaded model
# (models.embed keeps one per process), its tokenizer included.
_ENCODING = threading.Lock()


class LockedEmbedder:
    """An embedder whose queries are encoded one at a time (see the module notes)."""

    def __init__(self, embedder):
        self._embedder = embedder

    def encode_query(self, text: str):
        with _ENCODING:
            return self._embedder.encode_query(text)

    def encode_documents(self, texts, *args, **kwargs):
        with _ENCODING:
            return self._embedder.encode_documents(texts, *args, **kwargs)

    def __getattr__(self, name):  # identity, name, dimensions, ...: as the embedder's
        return getattr(self._embedder, name)


@dataclass(frozen=True)
class Generation:
    """One snapshot, opened once, with its index."""

    path: Path
    library: Library  # held open so the database stays open for the sessions' connections
    index: SearchIndex


def load_generation(path: Path) -> Generation:
    from readingroom.models.quiet import quiet_transformers

    library = open_library(path, read_only=True)
    try:
        with quiet_transformers():
            index = SearchIndex.load(library)
    except BaseException:
        library.close()
        raise
    if index.embedder is not None:
        index.embedder = LockedEmbedder(index.embedder)
    return Generation(path, library, index)


def warm_up(index: SearchIndex) -> None:
    """What the first question would otherwise wait for, done once for the
    process: the question-language detector and the embedder's first call."""
    from readingroom.answer.prompt import question_language

    question_language(WARM_UP_QUESTION, {x for x in index.docs.languages.tolist() if x})
    if index.embedder is not None:
        index.embedder.encode_query(WARM_UP_QUESTION)


class SharedSearch:
    """The newest snapshot's index, loaded once for all sessions."""

    def __init__(self, pointer):
        self.pointer = Path(pointer)
        self._lock = threading.Lock()
        self._generation: Generation | None = None

    def current(self) -> Generation:
        """The newest snapshot's generation, loading it if it is new (once:
        other threads asking meanwhile wait for it)."""
        newest = current_snapshot(self.pointer)
        generation = self._generation
        if generation is not None and generation.path == newest:
            return generation
        with self._lock:
            if self._generation is None or self._generation.path != newest:
                first = self._generation is None
                self._generation = load_generation(newest)
                if first:
                    warm_up(self._generation.index)
                # The generation before is not closed here: sessions still
                # searching it hold connections to its database, which DuckDB
                # keeps open until the last of them is closed.
            return self._generation

    def open(self) -> tuple[Library, Searcher]:
        """For one session: a connection of its own to the newest snapshot,
        and a Searcher on it over the shared index."""
        generation = self.current()
        library = open_library(generation.path, read_only=True)
        return library, Searcher(library, index=generation.index)

    def is_current(self, library: Library) -> bool:
        return Path(library.path) == current_snapshot(self.pointer)
