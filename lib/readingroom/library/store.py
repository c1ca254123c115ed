"""The library: one DuckDB file holding documents, passages, their
embeddings and the runs of evaluations.

The schema is versioned. Each migration is a step from one version to the
next, run in a transaction, so a file made by an older Reading Room is brought
up to date when it is opened for writing, and a file from a newer one is
refused instead of being damaged.
"""
from __future__ import annotations

import hashlib
import json
import re
import time
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pyarrow as pa

from readingroom.corpus.document import Document
from readingroom.corpus.passages import Passage
from readingroom.paths import default_library_path

# MIGRATIONS[i] takes a library from schema version i to i + 1.
MIGRATIONS: list[str] = [
    """
    CREATE TABLE meta (key VARCHAR PRIMARY KEY, value VARCHAR);
    CREATE TABLE documents (
        doc_id          VARCHAR PRIMARY KEY,  -- sha256(source, key), see document.py
        source          VARCHAR NOT NULL,     -- the reader that made it: markdown, pdf, sotu ...
        key             VARCHAR NOT NULL,     -- its identity within the source
        location        VARCHAR,              -- path or URL it was read from
        url             VARCHAR,
        title           VARCHAR NOT NULL,
        authors         VARCHAR[] NOT NULL,
        year            INTEGER,
        date            DATE,
        language        VARCHAR,              -- ISO 639-1
        content_sha256  VARCHAR NOT NULL,     -- of the text alone
        fingerprint     VARCHAR NOT NULL,     -- of text, structure, metadata, splitter
        n_chars         INTEGER NOT NULL,
        n_passages      INTEGER NOT NULL,
        n_tokens        INTEGER NOT NULL,
        text            VARCHAR NOT NULL,     -- passages are spans of it
        metadata        JSON,
        ingested_at     TIMESTAMP DEFAULT current_timestamp
    );
    CREATE TABLE passages (
        passage_id  VARCHAR PRIMARY KEY,      -- sha256(doc_id, text, occurrence)
        doc_id      VARCHAR NOT NULL,
        ordinal     INTEGER NOT NULL,
        section     VARCHAR[] NOT NULL,       -- headings from the outermost in
        anchor      VARCHAR,
        char_start  INTEGER NOT NULL,         -- text = documents.text[char_start:char_end]
        char_end    INTEGER NOT NULL,
        page_start  INTEGER,
        page_end    INTEGER,
        text        VARCHAR NOT NULL,
        n_tokens    INTEGER NOT NULL,
        citation    VARCHAR NOT NULL
    );
    CREATE INDEX passages_by_doc ON passages (doc_id);
    """,
    # 2: embeddings. Vectors are keyed by the model's identity and the sha256
    # of the passage text, not by passage id: the same text in two documents
    # (or in a document stored again after an edit) is embedded once.
    # text_sha256 stays nullable because DuckDB cannot add NOT NULL to a table
    # that has an index; store() always sets it.
    # The vector is a FLOAT[] list, not a fixed-size FLOAT[n]: one table holds
    # models of different widths (384, 768), and the list's values still come
    # out of Arrow as one contiguous buffer that numpy reshapes without a copy
    # (measured: 0.38 s per 100k x 384 against 0.29 s for FLOAT[384]).
    """
    ALTER TABLE passages ADD COLUMN text_sha256 VARCHAR;
    UPDATE passages SET text_sha256 = sha256(text);
    CREATE TABLE embedding_models (
        identity    VARCHAR PRIMARY KEY,      -- changes when the weights change
        name        VARCHAR NOT NULL,
        dimensions  INTEGER NOT NULL,
        normalised  BOOLEAN NOT NULL,         -- unit length: inner product = cosine
        created     TIMESTAMP DEFAULT current_timestamp
    );
    CREATE TABLE embeddings (
        model        VARCHAR NOT NULL,        -- embedding_models.identity
        text_sha256  VARCHAR NOT NULL,        -- passages.text_sha256
        vector       FLOAT[] NOT NULL,
        PRIMARY KEY (model, text_sha256)
    );
    """,
    # 3: runs. Every evaluation (and later every tuning job) leaves a row:
    # what ran, on which corpus and data, with which settings, and what it
    # measured, so that numbers can be compared across changes.
    """
    CREATE TABLE runs (
        run_id          VARCHAR PRIMARY KEY,
        kind            VARCHAR NOT NULL,     -- e.g. "retrieval", "answers"
        started         TIMESTAMP NOT NULL,
        seconds         DOUBLE NOT NULL,
        model           VARCHAR,              -- the model(s) measured, by name
        corpus_sha256   VARCHAR NOT NULL,     -- search.corpus_fingerprint at the time
        dataset         VARCHAR,              -- the questions file, as given
        dataset_sha256  VARCHAR,
        settings        JSON NOT NULL,
        metrics         JSON NOT NULL,
        details         JSON                  -- per-question results
    );
    """,
    # 4: news (readingroom.news). An item's text and passages are an ordinary
    # document (source 'news:<outlet>'), so the hybrid search, embeddings and
    # citations work on news as on books; these tables hold what only news
    # has: the feeds read, each item's feed, outlet, guid and time, and the
    # alerts raised. The primary keys are what make re-reading a feed add
    # only new items and an alert happen once per profile, topic and item.
    # Times are UTC.
    """
    CREATE TABLE news_feeds (
        feed_id      VARCHAR PRIMARY KEY,     -- sha256 of the location (news/store.py)
        location     VARCHAR NOT NULL,        -- a file, a URL, or a sample feed's name
        outlet       VARCHAR,                 -- NULL: the feed's own title names it (or each item does)
        added        TIMESTAMP NOT NULL DEFAULT current_timestamp,
        last_read    TIMESTAMP,
        last_status  VARCHAR                  -- 'ok: 3 new' or what went wrong, for `news update`
    );
    CREATE TABLE news_items (
        item_id     VARCHAR PRIMARY KEY,      -- sha256 of the url, else of the feed and the guid
        doc_id      VARCHAR NOT NULL,         -- documents.doc_id: the text and its passages
        feed_id     VARCHAR NOT NULL,
        outlet      VARCHAR NOT NULL,
        guid        VARCHAR,
        url         VARCHAR,
        title       VARCHAR NOT NULL,         -- plain text (feeds' markup removed)
        published   TIMESTAMP,                -- NULL when the feed gave no date
        first_seen  TIMESTAMP NOT NULL
    );
    CREATE TABLE news_alerts (
        profile     VARCHAR NOT NULL,
        topic       VARCHAR NOT NULL,
        item_id     VARCHAR NOT NULL,
        score       DOUBLE NOT NULL,
        created     TIMESTAMP NOT NULL DEFAULT current_timestamp,
        delivered   TIMESTAMP,                -- when the alert command took it (exit status 0)
        delivery    VARCHAR,                  -- what happened when it was handed on
        PRIMARY KEY (profile, topic, item_id)
    );
    """,
    # 5: each passage's language (ISO 639-1) where it is not its document's:
    # a document may mix languages (corpus.language.passage_languages), and a
    # passage's words are read in its own (BM25, the gate, the check). NULL:
    # the document's language (readers use coalesce), as for every passage
    # stored before, so correcting a document's language corrects its passages.
    """
    ALTER TABLE passages ADD COLUMN language VARCHAR;
    """,
]
SCHEMA_VERSION = len(MIGRATIONS)


class LibraryError(Exception):
    pass


class LibraryOutdated(LibraryError):
    """A library with an older schema opened read-only: it must be opened
    once for writing, which upgrades it, before read-only readers can use it."""


@dataclass
class Stored:
    """A document and its passages, ready to be written."""

    document: Document
    fingerprint: str
    passages: list[Passage]


LOCK_RETRY_SECONDS = 5.0  # a lock held for a moment (`readingroom app` copying the library) is waited for


def _connect(path: Path, read_only: bool):
    """duckdb.connect, waiting a few seconds for a lock another process holds
    briefly (the app copies the library for its readers, a second or so)."""
    deadline = time.monotonic() + LOCK_RETRY_SECONDS
    while True:
        try:
            return duckdb.connect(str(path), read_only=read_only)
        except duckdb.IOException as e:
            if "lock" not in str(e).lower() or time.monotonic() > deadline:
                raise
            time.sleep(0.25)


def _lock_holder(error: Exception, read_only: bool) -> str:
    """Why the file could not be opened, naming the process that holds it
    (DuckDB's message gives its PID)."""
    match = re.search(r"PID (\d+)", str(error))
    holder = "another process"
    if match:
        pid = int(match.group(1))
        try:
            command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:
            command = ""
        holder = f"another process (process {pid}" + (f": {command[:160]})" if command else ")")
    if read_only:  # only a writer keeps a reader out
        return f"the library is open for writing in {holder}"
    # DuckDB does not say which: a reader keeps a writer out as surely as another writer.
    return (f"the library is open in {holder}, for writing or read-only, and either keeps writers out "
            "(a notebook kernel or a chat that opened it, a running ingest)")


class Library:
    """A DuckDB library file. Open it with `open_library()`."""

    def __init__(self, path: str | Path | None = None, read_only: bool = False):
        self.path = Path(path) if path else default_library_path()
        self.read_only = read_only
        if read_only and not self.path.exists():
            raise LibraryError(f"{self.path}: no library here yet; ingest something first")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.con = _connect(self.path, read_only)
        except duckdb.IOException as e:
            if "lock" in str(e).lower():
                raise LibraryError(f"{self.path}: {_lock_holder(e, read_only)}; close it and try again") from e
            if "not a valid DuckDB database" in str(e):
                raise LibraryError(f"{self.path}: not a Reading Room library (not a DuckDB file)") from e
            raise LibraryError(f"{self.path}: cannot open the library: {e}") from e
        except duckdb.Error as e:
            raise LibraryError(f"{self.path}: not a Reading Room library (DuckDB says: {e})") from e
        try:
            self._migrate()
        except BaseException:
            # Closed now, not when collected: DuckDB refuses this process
            # another connection to the file with other settings while it is open.
            self.con.close()
            raise

    # --- schema -------------------------------------------------------------
    @property
    def schema_version(self) -> int:
        has_meta = self.con.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_name = 'meta'"
        ).fetchone()[0]
        if not has_meta:
            return 0
        row = self.con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        return int(row[0]) if row else 0

    def _migrate(self) -> None:
        version = self.schema_version
        if version > SCHEMA_VERSION:
            raise LibraryError(
                f"{self.path}: schema version {version} was written by a newer Reading Room "
                f"(this one knows up to {SCHEMA_VERSION}); upgrade readingroom to open it"
            )
        if version == SCHEMA_VERSION:
            return
        if self.read_only:
            raise LibraryOutdated(
                f"{self.path}: schema version {version} is older than {SCHEMA_VERSION}; "
                "open it once for writing (e.g. `readingroom stats`) to upgrade it"
            )
        for target in range(version + 1, SCHEMA_VERSION + 1):
            with self.transaction():
                self.con.execute(MIGRATIONS[target - 1])
                self.con.execute(
                    "INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)", [str(target)]
                )

    # --- transactions -------------------------------------------------------
    def transaction(self):
        return _Transaction(self.con)

    # --- writing ------------------------------------------------------------
    def fingerprints(self) -> dict[str, str]:
        return dict(self.con.execute("SELECT doc_id, fingerprint FROM documents").fetchall())

    def documents_by_content(self) -> dict[str, tuple[str, str]]:
        """content_sha256 -> (doc_id, location), to spot the same text under two names."""
        rows = self.con.execute("SELECT content_sha256, doc_id, coalesce(location, key) FROM documents")
        return {sha: (doc_id, where) for sha, doc_id, where in rows.fetchall()}

    def store(self, batch: list[Stored], then=None) -> None:
        """Write documents with their passages, replacing earlier versions, in
        one transaction: after a crash either all of the batch is there or none.
        `then(con)`, if given, runs inside the same transaction (news items
        are written with their documents, or not at all)."""
        if not batch and then is None:
            return
        with self.transaction():
            if batch:
                self._write(batch)
            if then is not None:
                then(self.con)

    def _write(self, batch: list[Stored]) -> None:
        doc_ids = [s.document.doc_id for s in batch]
        documents = _documents_table(batch)
        passages = _passages_table(batch)
        self.con.execute("DELETE FROM passages WHERE doc_id IN (SELECT unnest(?))", [doc_ids])
        self.con.execute("DELETE FROM documents WHERE doc_id IN (SELECT unnest(?))", [doc_ids])
        self.con.register("new_documents", documents)
        self.con.register("new_passages", passages)
        try:
            self.con.execute(
                f"INSERT INTO documents ({', '.join(documents.column_names)}) "
                f"SELECT * FROM new_documents"
            )
            self.con.execute(
                f"INSERT INTO passages ({', '.join(passages.column_names)}) "
                f"SELECT * FROM new_passages"
            )
        finally:
            self.con.unregister("new_documents")
            self.con.unregister("new_passages")

    def copy_documents(self, source: str | Path, doc_ids: list[str]) -> int:
        """Copy documents, their passages and any vectors of those passages
        from another library file (opened read-only), in one transaction:
        a subset to experiment on without splitting or embedding it again.
        Returns how many documents were copied."""
        source = Path(source)
        if source.resolve() == self.path.resolve():
            raise LibraryError(f"{source}: cannot copy a library into itself")
        self.con.execute(f"ATTACH '{_sql_string(source)}' AS source_library (READ_ONLY)")
        try:
            (version,) = self.con.execute(
                "SELECT value FROM source_library.meta WHERE key = 'schema_version'").fetchone()
            if int(version) != SCHEMA_VERSION:
                raise LibraryError(f"{source}: schema version {version}, this library has {SCHEMA_VERSION}; "
                                   "open it once for writing to bring it up to date")
            with self.transaction():
                self.con.execute("DELETE FROM passages WHERE doc_id IN (SELECT unnest(?))", [doc_ids])
                self.con.execute("DELETE FROM documents WHERE doc_id IN (SELECT unnest(?))", [doc_ids])
                (copied,) = self.con.execute(
                    "INSERT INTO documents SELECT * FROM source_library.documents "
                    "WHERE doc_id IN (SELECT unnest(?))", [doc_ids]).fetchone()
                self.con.execute("INSERT INTO passages SELECT * FROM source_library.passages "
                                 "WHERE doc_id IN (SELECT unnest(?))", [doc_ids])
                self.con.execute("INSERT INTO embedding_models SELECT * FROM source_library.embedding_models "
                                 "ON CONFLICT DO NOTHING")
                self.con.execute(
                    "INSERT INTO embeddings SELECT e.* FROM source_library.embeddings e "
                    "SEMI JOIN (SELECT text_sha256 FROM passages WHERE doc_id IN (SELECT unnest(?))) p "
                    "USING (text_sha256) ON CONFLICT DO NOTHING", [doc_ids])
        finally:
            self.con.execute("DETACH source_library")
        return copied

    def remove(self, doc_id: str) -> None:
        with self.transaction():
            self.con.execute("DELETE FROM passages WHERE doc_id = ?", [doc_id])
            self.con.execute("DELETE FROM documents WHERE doc_id = ?", [doc_id])

    # --- reading ------------------------------------------------------------
    def stats(self) -> dict:
        """Counts for the whole library and by source, language and author."""
        q = self.con.execute
        docs, chars, tokens = q(
            "SELECT count(*), coalesce(sum(n_chars), 0), coalesce(sum(n_tokens), 0) FROM documents"
        ).fetchone()
        (passages,) = q("SELECT count(*) FROM passages").fetchone()
        years = q("SELECT min(year), max(year) FROM documents").fetchone()

        def grouped(sql):
            return {str(k): int(v) for k, v in q(sql).fetchall()}

        return {
            "library": str(self.path),
            "schema_version": self.schema_version,
            "documents": docs,
            "passages": passages,
            "characters": int(chars),
            "tokens": int(tokens),
            "years": {"from": years[0], "to": years[1]},
            "by_source": grouped("SELECT source, count(*) FROM documents GROUP BY 1 ORDER BY 2 DESC"),
            "by_language": grouped(
                "SELECT coalesce(language, 'unknown'), count(*) FROM documents GROUP BY 1 ORDER BY 2 DESC"
            ),
            "by_author": grouped(
                "SELECT a, count(*) FROM (SELECT unnest(CASE WHEN len(authors) = 0 "
                "THEN ['unknown'] ELSE authors END) AS a FROM documents) GROUP BY 1 ORDER BY 2 DESC, 1"
            ),
        }

    def documents(self):
        """All documents (without their text) as a pandas DataFrame."""
        return self.con.execute(
            "SELECT doc_id, source, key, title, authors, year, date, language, n_chars, "
            "n_passages, n_tokens, location, url, metadata FROM documents ORDER BY source, year, title"
        ).df()

    def passages(self, doc_id: str):
        """The passages of one document, in order, as a pandas DataFrame."""
        return self.con.execute(
            "SELECT * FROM passages WHERE doc_id = ? ORDER BY ordinal", [doc_id]
        ).df()

    def arrow(self, query: str, params: dict | None = None) -> pa.Table:
        """A query's result as an Arrow table, with no Python object per value.
        It runs on a cursor of its own: duckdb 2 refuses `con.sql()` while an
        `execute()` result is unfinished, and Arrow from `execute()` copies."""
        cursor = self.con.cursor()
        try:
            return cursor.sql(query, params=params).to_arrow_table()
        finally:
            cursor.close()

    def embedding_models(self):
        """The models that have embedded this library, with how many stored
        vectors each has and how many passages still lack one, as a DataFrame."""
        return self.con.execute(
            "SELECT m.identity, m.name, m.dimensions, m.normalised, m.created, "
            "(SELECT count(*) FROM embeddings e WHERE e.model = m.identity) AS vectors, "
            "(SELECT count(*) FROM passages p ANTI JOIN embeddings e "
            " ON e.model = m.identity AND e.text_sha256 = p.text_sha256) AS passages_missing "
            "FROM embedding_models m ORDER BY m.created"
        ).df()

    def document_text(self, doc_id: str) -> str:
        row = self.con.execute("SELECT text FROM documents WHERE doc_id = ?", [doc_id]).fetchone()
        if row is None:
            raise KeyError(doc_id)
        return row[0]

    def close(self) -> None:
        self.con.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class _Transaction:
    def __init__(self, con):
        self.con = con

    def __enter__(self):
        self.con.execute("BEGIN TRANSACTION")

    def __exit__(self, exc_type, exc, tb):
        self.con.execute("ROLLBACK" if exc_type else "COMMIT")


def _sql_string(path: Path) -> str:
    return str(path).replace("'", "''")


def open_library(path: str | Path | None = None, read_only: bool = False) -> Library:
    return Library(path, read_only=read_only)


def _documents_table(batch: list[Stored]) -> pa.Table:
    docs = [s.document for s in batch]
    texts = [d.text for d in docs]
    return pa.table({
        "doc_id": [d.doc_id for d in docs],
        "source": [d.source for d in docs],
        "key": [d.key for d in docs],
        "location": [d.location for d in docs],
        "url": [d.url for d in docs],
        "title": [d.title for d in docs],
        "authors": pa.array([list(d.authors) for d in docs], pa.list_(pa.string())),
        "year": pa.array([d.year for d in docs], pa.int32()),
        "date": pa.array([d.date for d in docs], pa.string()),
        "language": [d.language for d in docs],
        "content_sha256": [d.content_sha256 for d in docs],
        "fingerprint": [s.fingerprint for s in batch],
        "n_chars": pa.array([len(t) for t in texts], pa.int32()),
        "n_passages": pa.array([len(s.passages) for s in batch], pa.int32()),
        "n_tokens": pa.array([sum(p.n_tokens for p in s.passages) for s in batch], pa.int32()),
        "text": texts,
        "metadata": [json.dumps(d.metadata, ensure_ascii=False, default=str) for d in docs],
    })


def _passages_table(batch: list[Stored]) -> pa.Table:
    ps = [p for s in batch for p in s.passages]
    return pa.table({
        "passage_id": [p.passage_id for p in ps],
        "doc_id": [p.doc_id for p in ps],
        "ordinal": pa.array([p.ordinal for p in ps], pa.int32()),
        "section": pa.array([list(p.section) for p in ps], pa.list_(pa.string())),
        "anchor": pa.array([p.anchor for p in ps], pa.string()),
        "char_start": pa.array([p.char_start for p in ps], pa.int32()),
        "char_end": pa.array([p.char_end for p in ps], pa.int32()),
        "page_start": pa.array([p.page_start for p in ps], pa.int32()),
        "page_end": pa.array([p.page_end for p in ps], pa.int32()),
        "text": [p.text for p in ps],
        "n_tokens": pa.array([p.n_tokens for p in ps], pa.int32()),
        "citation": [p.citation for p in ps],
        # Equal to DuckDB's sha256(text), which the migration used to backfill.
        "text_sha256": [hashlib.sha256(p.text.encode()).hexdigest() for p in ps],
        # NULL: the document's language (most passages); set where a document mixes languages.
        "language": pa.array([p.language if p.language != s.document.language else None
                              for s in batch for p in s.passages], pa.string()),
    })
