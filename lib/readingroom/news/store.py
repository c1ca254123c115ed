"""Feeds and their items in the library: adding a feed, updating (reading
each feed and storing the items not seen before), reading items back.

Why items are documents: an item's headline and text are stored as an
ordinary document (source "news:<outlet>") with passages, so the hybrid
search, the embeddings, the citations and the answer checker work on news
with no code of their own; the news tables (schema v4, library.py) hold
only what news adds: the feed, outlet, guid, URL and time of each item, and
the alerts. A digest asks for items by time; a search for "strikes" can
keep to news (Filters(sources=...)) or leave it out.

Adding a feed only records it: a URL is fetched when `update` is asked for,
never before. Updating reads a whole feed before it stores anything (a feed
is bounded by the size cap), then writes the feed's new items, their
documents and passages in one transaction: a feed that turns out malformed,
too large or unreachable adds nothing and removes nothing, and an update
that is killed leaves each feed either stored or not.
"""
from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

import pandas as pd
import pyarrow as pa
from tqdm.auto import tqdm

from readingroom.corpus.corpora import CorpusError
from readingroom.corpus.document import sha256_hex
from readingroom.corpus.language import detect_language
from readingroom.library.store import Library, Stored
from readingroom.corpus.passages import Splitter
from readingroom.corpus.sources import Problem
from readingroom.corpus.textio import SourceError
from readingroom.dates import as_utc
from readingroom.news import reuters
from readingroom.news.feeds import DEFAULT_MAX_MB, read_file, read_stream
from readingroom.news.fetch import is_url, open_url
from readingroom.news.items import NewsItem

# Feeds that are not a file or a URL, by name.
SAMPLE_FEEDS = {reuters.NAME: "Reuters-21578 samples from Debian's r-cran-tm (offline default)"}


class FeedError(Exception):
    pass


@dataclass
class Feed:
    feed_id: str
    location: str
    outlet: str | None = None
    added: dt.datetime | None = None
    last_read: dt.datetime | None = None
    last_status: str | None = None


def feed_location(location: str | Path) -> str:
    """How a feed is recorded: a URL or sample name as given, a file as its
    absolute path (so the same file added twice is one feed)."""
    location = str(location)
    if location in SAMPLE_FEEDS or is_url(location):
        return location
    return str(Path(location).expanduser().resolve())


def feed_id(location: str) -> str:
    return sha256_hex("feed", location)[:16]


def now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)


def add_feed(lib: Library, location: str | Path, outlet: str | None = None) -> Feed:
    """Record a feed: a file (RSS, Atom, Reuters XML, JSONL), an http(s) URL
    (fetched only by update), or a sample feed's name. Adding it again
    changes its outlet if one is given."""
    where = feed_location(location)
    if where not in SAMPLE_FEEDS and not is_url(where):
        path = Path(where)
        if not path.exists():
            raise FeedError(f"{location}: does not exist (a feed is a file, an http(s) URL, "
                            f"or one of: {', '.join(SAMPLE_FEEDS)})")
        if not path.is_file():
            raise FeedError(f"{location}: is not a file")
    outlet = " ".join(outlet.split()) if outlet else None
    with lib.transaction():
        lib.con.execute(
            "INSERT INTO news_feeds (feed_id, location, outlet) VALUES (?, ?, ?) "
            "ON CONFLICT (feed_id) DO UPDATE SET outlet = coalesce(excluded.outlet, news_feeds.outlet)",
            [feed_id(where), where, outlet])
    return next(f for f in feeds(lib) if f.location == where)


def feeds(lib: Library) -> list[Feed]:
    rows = lib.con.execute(
        "SELECT feed_id, location, outlet, added, last_read, last_status FROM news_feeds ORDER BY added, location"
    ).fetchall()
    return [Feed(*row) for row in rows]


def read_feed(feed: Feed, max_mb: float = DEFAULT_MAX_MB, download: bool = True) -> Iterator[NewsItem | Problem]:
    """The items of one feed, from its file, its URL, or the sample package."""
    if feed.location in SAMPLE_FEEDS:
        try:
            folder = reuters.sample_folder(download=download)
        except CorpusError as e:
            if download:
                raise SourceError(feed.location, str(e)) from e
            raise SourceError(feed.location, "the sample package is not downloaded yet; `readingroom news "
                                             "samples` fetches it (once)") from e
        yield from reuters.read_folder(folder, max_mb)
    elif is_url(feed.location):
        with open_url(feed.location) as response:
            yield from read_stream(response, urlparse(feed.location).path, feed.location, feed.location,
                                   feed.outlet, max_mb)
    else:
        yield from read_file(feed.location, feed=feed.location, outlet=feed.outlet, max_mb=max_mb)


# --- updating ---------------------------------------------------------------------------------

@dataclass
class FeedResult:
    feed: Feed
    new: int = 0
    known: int = 0  # already stored (from this feed or another)
    repeated: int = 0  # the same item twice in this feed
    problems: list[Problem] = field(default_factory=list)
    error: str | None = None  # the feed could not be read: nothing of it was stored

    @property
    def status(self) -> str:
        if self.error:
            return f"error: {self.error}"
        return f"ok: {self.new} new, {self.known} already stored" + (
            f", {self.repeated} repeated" if self.repeated else "")


@dataclass
class UpdateReport:
    results: list[FeedResult] = field(default_factory=list)
    new_items: list[str] = field(default_factory=list)  # item ids, in the order read
    new_documents: list[str] = field(default_factory=list)
    embedded: object = None  # the embed.EmbedReport of the new items, when they were embedded
    notes: list[Problem] = field(default_factory=list)  # about the update as a whole
    seconds: float = 0.0

    @property
    def problems(self) -> list[Problem]:
        found = [p for r in self.results for p in r.problems]
        return found + [Problem(r.feed.location, r.error) for r in self.results if r.error] + self.notes

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.level == "error"]

    def summary(self) -> str:
        lines = [f"{len(self.new_items)} new items from {len(self.results)} feeds in {self.seconds:.1f} s"]
        for r in self.results:
            lines.append(f"  {r.feed.location}: {r.status}")
        for p in [p for r in self.results for p in r.problems] + self.notes:
            lines.append(f"    {p.level}: {p}")
        if self.embedded is not None:
            lines.append(f"  {self.embedded.summary()}")
        return "\n".join(lines)


def update(lib: Library, locations: Iterable[str] | None = None, *, max_mb: float = DEFAULT_MAX_MB,
           splitter: Splitter | None = None, embed: bool = True, embedder=None, download: bool = True,
           progress: bool = True) -> UpdateReport:
    """Read feeds (all recorded ones, or those named) and store their new
    items; then embed the new items' passages (with the embedder that has
    embedded most of the library, else the default) so they can be matched
    to interests by meaning as well as by words."""
    started = time.perf_counter()
    splitter = splitter or Splitter()
    chosen = feeds(lib)
    if locations is not None:
        named = []
        for given in locations:
            found = [f for f in chosen if f.location == feed_location(given) or f.feed_id == given]
            if not found:
                raise FeedError(f"{given}: not a recorded feed (add it with `readingroom news add-feed`)")
            named += [f for f in found if f not in named]
        chosen = named
    report = UpdateReport()
    for feed in tqdm(chosen, desc="reading feeds", unit="feed", disable=not progress):
        result = FeedResult(feed)
        try:
            items = list(read_feed(feed, max_mb, download))
        except SourceError as e:
            result.error = e.problem if e.location in (feed.location, str(Path(feed.location))) else str(e)
            items = None
        if items is not None:
            new_items, new_docs = _store_items(lib, feed, items, splitter, result)
            report.new_items += new_items
            report.new_documents += new_docs
        lib.con.execute("UPDATE news_feeds SET last_read = ?, last_status = ? WHERE feed_id = ?",
                        [now(), result.status[:2000], feed.feed_id])
        report.results.append(result)
    if embed and report.new_documents:
        report.embedded = _embed(lib, report, embedder, progress)
    report.seconds = time.perf_counter() - started
    return report


def _store_items(lib: Library, feed: Feed, items: list, splitter: Splitter,
                 result: FeedResult) -> tuple[list[str], list[str]]:
    ids = [i.item_id for i in items if isinstance(i, NewsItem)]
    known = {r[0] for r in lib.con.execute(
        "SELECT item_id FROM news_items WHERE item_id IN (SELECT unnest(?))", [ids]).fetchall()}
    seen: set[str] = set()
    batch: list[Stored] = []
    rows: list[dict] = []
    first_seen = now()
    for item in items:
        if isinstance(item, Problem):
            result.problems.append(item)
            continue
        item_id = item.item_id
        if item_id in seen:
            result.repeated += 1
            result.problems.append(Problem(item.location, "repeats an item read before in this feed (same "
                                                          "url or guid); stored once", "warning"))
            continue
        seen.add(item_id)
        if item_id in known:
            result.known += 1
            continue
        if item.published is None:
            unreadable = item.metadata.get("unreadable_date")
            why = f"has a date that cannot be read ({unreadable!r})" if unreadable else "has no date"
            result.problems.append(Problem(item.location, f"{why}; stored with the time it was first seen",
                                           "warning"))
        doc = item.document()
        if doc.language is None:
            doc.language = detect_language(doc.text)
        passages = splitter.split(doc)
        if not passages:
            result.problems.append(Problem(item.location, "has no text to store", "warning"))
            continue
        batch.append(Stored(doc, doc.fingerprint(splitter.signature), passages))
        rows.append({"item_id": item_id, "doc_id": doc.doc_id, "feed_id": feed.feed_id, "outlet": item.outlet,
                     "guid": item.guid, "url": item.url, "title": item.title or doc.title,
                     "published": item.published, "first_seen": first_seen})
    if not batch:
        return [], []
    table = pa.table({
        "item_id": [r["item_id"] for r in rows], "doc_id": [r["doc_id"] for r in rows],
        "feed_id": [r["feed_id"] for r in rows], "outlet": [r["outlet"] for r in rows],
        "guid": pa.array([r["guid"] for r in rows], pa.string()), "url": pa.array([r["url"] for r in rows], pa.string()),
        "title": [r["title"] for r in rows],
        "published": pa.array([r["published"] for r in rows], pa.timestamp("us")),
        "first_seen": pa.array([r["first_seen"] for r in rows], pa.timestamp("us")),
    })

    def write_items(con):
        con.register("new_news_items", table)
        try:
            con.execute(f"INSERT INTO news_items ({', '.join(table.column_names)}) SELECT * FROM new_news_items")
        finally:
            con.unregister("new_news_items")

    lib.store(batch, then=write_items)
    result.new = len(rows)
    return [r["item_id"] for r in rows], [r["doc_id"] for r in rows]


def _embed(lib: Library, report: UpdateReport, embedder, progress: bool):
    from readingroom.models.embed import embed_library
    from readingroom.models.catalogue import DEFAULT_EMBEDDER, ModelError
    from readingroom.search.searcher import preferred_embedder

    model = embedder or preferred_embedder(lib) or DEFAULT_EMBEDDER
    try:
        return embed_library(lib, model, doc_ids=report.new_documents, progress=progress)
    except (ModelError, ImportError, LookupError) as e:
        report.notes.append(Problem(
            "embedding", f"the new items are stored but not embedded ({e}); they are matched by words "
                         "only until `readingroom embed` runs", "warning"))
        return None


# --- reading items back ---------------------------------------------------------------------------

def item_table(lib: Library, since: dt.datetime | dt.date | str | None = None,
               until: dt.datetime | dt.date | str | None = None, outlets: Iterable[str] | None = None,
               item_ids: Iterable[str] | None = None) -> pd.DataFrame:
    """Items with their text, oldest first. An item's `time` is its
    published time, or when it was first seen if the feed gave none
    (`undated`). `since` is inclusive, `until` exclusive."""
    where, params = [], {}
    if since is not None:
        where.append("coalesce(i.published, i.first_seen) >= $since")
        params["since"] = as_utc(since)
    if until is not None:
        where.append("coalesce(i.published, i.first_seen) < $until")
        params["until"] = as_utc(until)
    if outlets is not None:
        where.append("i.outlet IN (SELECT unnest($outlets))")
        params["outlets"] = list(outlets)
    if item_ids is not None:
        where.append("i.item_id IN (SELECT unnest($ids))")
        params["ids"] = list(item_ids)
    sql = ("SELECT i.item_id, i.doc_id, i.feed_id, i.outlet, i.title, i.url, i.guid, i.published, i.first_seen, "
           "coalesce(i.published, i.first_seen) AS time, i.published IS NULL AS undated, d.text, d.language, "
           "d.metadata FROM news_items i JOIN documents d USING (doc_id) "
           + ("WHERE " + " AND ".join(where) if where else "") + " ORDER BY time, i.item_id")
    table = lib.con.execute(sql, params).df()
    for column in ("url", "guid"):  # None, not NaN, where a feed gave none
        table[column] = table[column].astype(object).where(table[column].notna(), None)
    return table
