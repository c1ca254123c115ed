"""News: feeds read into items, stored as searchable documents, matched to
interests, grouped into stories, summarised with attribution, alerts.

The feeds are the small files in data/fixtures/news/ (three made-up outlets
reporting the same made-up events, and broken feeds); the Reuters sample
comes from the cache `bash setup.sh test` fills. Models are the real ones:
MiniLM for vectors, SmolLM2-135M (llama.cpp) for summaries. Network off."""
from __future__ import annotations

import datetime as dt
import io
import json
import re
import shutil
import sys

import duckdb
import pandas as pd
import pytest
from click.testing import CliRunner

from readingroom import Block, Document, ingest, open_library
from readingroom.answer.check import SupportChecker, check_answer
from readingroom.library import store as library_module
from readingroom.cli import main
from readingroom.library.store import Stored
from readingroom.news import (
    FeedError, ProfileError, add_feed, build_digest, check_alerts, item_table, load_profile, read_file, score_items,
    update,
)
from readingroom.news import reuters
from readingroom.dates import parse_date
from readingroom.news.feeds import iter_xml
from readingroom.news.interests import profile_from_dict
from readingroom.news.items import plain_line
from readingroom.news.render import html_page, markdown, safe_url
from readingroom.news.summary import NewsHit, attributed, news_problem
from readingroom.news.timeline import items_per_day, plot_timeline
from readingroom.corpus.passages import Splitter
from readingroom.search.searcher import Filters, Searcher, searcher_for
from readingroom.corpus.sources import Problem
from readingroom.corpus.textio import SourceError

FEEDS = ["harbour-gazette.rss", "daily-ledger.atom", "wire-export.jsonl"]
WINDOW = ("2024-04-30", "2024-05-05")
STRIKES = ("The strike is the weapon of the workers. When the dockers of a port stop work together, "
           "no ship is loaded and no wage is paid until the employers come to terms with their union.")
HOUSING = ("The housing question is not solved by the landlord's charity: tenants who organise can stop "
           "the rent from rising, as the rent strikes of the cities showed.")


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    """BM25 indexes go to a cache of the tests' own (models and corpora stay where they are)."""
    import readingroom.search.ann as ann_module
    import readingroom.search.index as index_module

    folder = tmp_path_factory.mktemp("cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(index_module, "cache_dir", lambda: folder)
        mp.setattr(ann_module, "cache_dir", lambda: folder)
        yield folder


@pytest.fixture(autouse=True)
def private_cache(cache):
    yield cache


@pytest.fixture(scope="module")
def newsroom(tmp_path_factory, cache):
    """A library with the three fixture feeds, embedded, and two passages of
    'theory' for related reading. Tests that add to it use their own profile."""
    from readingroom.models.embed import embed_library

    path = tmp_path_factory.mktemp("newsroom") / "library.duckdb"
    with open_library(path) as lib:
        ingest(lib, [Document("text", "strikes", "On Strikes", [Block(STRIKES)], authors=["Ada Theorist"],
                              year=1906, language="en"),
                     Document("text", "housing", "The Housing Question", [Block(HOUSING)],
                              authors=["Ben Theorist"], year=1872, language="en")], progress=False)
        embed_library(lib, progress=False)
        for name in FEEDS:
            add_feed(lib, f"data/fixtures/news/{name}")
        report = update(lib, progress=False)
        assert report.embedded is not None and report.embedded.embedded > 0
    lib = open_library(path)
    yield lib
    lib.close()


def profile(name="study group", **alerts):
    data = load_profile("data/fixtures/news/interests.toml")
    data.name = name
    if alerts:
        data.alert_command = alerts.get("command")
        data.alert_input = alerts.get("input", "stdin")
    return data


# --- reading feeds ------------------------------------------------------------------------------

def test_rss_atom_and_jsonl_become_items_with_outlet_time_url_and_plain_text(fixtures):
    rss = [i for i in read_file(fixtures / "news/harbour-gazette.rss") if not isinstance(i, Problem)]
    strike = rss[0]
    assert strike.outlet == "The Harbour Gazette" and strike.language == "en"
    assert strike.published == dt.datetime(2024, 5, 1, 7, 30)  # +0200 in the feed, stored in UTC
    assert strike.url == "https://gazette.example.org/2024/05/01/dock-strike" and strike.authors == ["Mara Quill"]
    assert [b.text[:20] for b in strike.blocks] == ["About 4,000 dockwork", "The union's secretar", "Ships were queuing i"]
    rent = rss[1]
    assert "document.cookie" not in " ".join(b.text for b in rent.blocks)  # the description's script is gone
    atom = [i for i in read_file(fixtures / "news/daily-ledger.atom")]
    assert [i.outlet for i in atom] == ["Daily Ledger"] * 3
    assert atom[1].blocks[0].text.startswith("The River Wend fell")  # type="xhtml" content
    assert atom[2].published == dt.datetime(2024, 5, 2, 14, 45) and atom[2].url is None
    wire = list(read_file(fixtures / "news/wire-export.jsonl"))
    assert [i.outlet for i in wire[:3]] == ["Bay Wire Service"] * 3
    assert [type(p) for p in wire[3:]] == [Problem, Problem]
    assert "line 4: is not valid JSON" in str(wire[3]) and "line 5: has neither a title nor any text" in str(wire[4])
    # Stable ids: by URL when there is one, else by feed and guid.
    again = [i for i in read_file(fixtures / "news/harbour-gazette.rss") if not isinstance(i, Problem)]
    assert [i.item_id for i in again] == [i.item_id for i in rss]
    assert rss[3].url is None and rss[3].item_id == rss[5].item_id  # the repeated guid


def test_markup_in_titles_is_removed_but_angle_brackets_that_are_text_stay():
    assert plain_line("<script>alert('x')</script>Mayor <b>defends</b> budget") == "Mayor defends budget"
    assert plain_line("COMPUTER TERMINAL SYSTEMS <CPML> COMPLETES SALE") == "COMPUTER TERMINAL SYSTEMS <CPML> COMPLETES SALE"
    assert plain_line("Fish &amp; chips") == "Fish & chips"


def test_feed_dates_in_their_usual_forms():
    assert parse_date("Wed, 01 May 2024 09:30:00 +0200") == dt.datetime(2024, 5, 1, 7, 30)
    assert parse_date("2024-05-01T09:30:00Z") == dt.datetime(2024, 5, 1, 9, 30)
    assert parse_date("2024-05-01") == dt.datetime(2024, 5, 1)
    assert parse_date("26-FEB-1987 15:18:06.67") == dt.datetime(1987, 2, 26, 15, 18, 6, 670000)
    assert parse_date("last Tuesday") is None and parse_date("") is None


def test_a_malformed_feed_and_an_xml_bomb_are_refused_with_where_and_why(fixtures):
    with pytest.raises(SourceError, match=r"malformed\.rss: is not well-formed XML at line 13, column 6"):
        list(read_file(fixtures / "news/malformed.rss"))
    with pytest.raises(SourceError, match=r"entity-bomb\.rss: uses XML entities or a DTD, which are refused"):
        list(read_file(fixtures / "news/entity-bomb.rss"))
    with pytest.raises(SourceError, match="not a feed this reader knows"):
        list(iter_xml(io.BytesIO(b"<html><body>hi</body></html>"), "f", "page.html"))


class EndlessFeed(io.RawIOBase):
    """An RSS feed that never ends: only a streaming reader with a cap stops."""

    def __init__(self):
        self.sent = 0
        self.pending = b"<rss version='2.0'><channel><title>Endless</title>"

    def readable(self):
        return True

    def readinto(self, buffer):
        while len(self.pending) < len(buffer):
            self.pending += b"<item><title>More</title><description>" + b"x" * 500 + b"</description></item>"
        n = len(buffer)
        buffer[:n], self.pending = self.pending[:n], self.pending[n:]
        self.sent += n
        return n


def test_an_enormous_feed_stops_at_the_size_cap_while_streaming():
    stream = EndlessFeed()
    with pytest.raises(SourceError, match=r"endless\.rss: is over the 0\.5 MB limit for one feed"):
        for _ in iter_xml(io.BufferedReader(stream), "f", "endless.rss", max_mb=0.5):
            pass
    assert stream.sent < 2 * 1024 * 1024  # it stopped near the cap, it did not read on


# --- storing ------------------------------------------------------------------------------------

def test_update_stores_new_items_as_documents_and_rereading_adds_only_new_ones(library, fixtures, tmp_path):
    feed = tmp_path / "gazette.rss"
    shutil.copy(fixtures / "news/harbour-gazette.rss", feed)
    add_feed(library, feed)
    add_feed(library, fixtures / "news/wire-export.jsonl")
    first = update(library, embed=False, progress=False)
    assert [r.new for r in first.results] == [5, 3] and first.results[0].repeated == 1
    sources = dict(library.con.execute("SELECT source, count(*) FROM documents GROUP BY 1").fetchall())
    assert sources == {"news:The Harbour Gazette": 5, "news:Bay Wire Service": 3}
    doc = library.documents().set_index("source").loc["news:Bay Wire Service"].iloc[0]
    assert doc.title.startswith("Bay Wire Service: ")
    # The items are searchable like any passage, and can be kept apart by source.
    hits = Searcher(library).search("dockworkers walk out", 3, Filters.of(source="news:The Harbour Gazette"))
    assert hits and hits[0].title == "The Harbour Gazette: Dockworkers walk out at Northport over pay"
    again = update(library, embed=False, progress=False)
    assert [(r.new, r.known) for r in again.results] == [(0, 5), (0, 3)]
    text = feed.read_text().replace("</channel>", "<item><title>Ferry crews join the strike</title>"
                                    "<guid>gazette-ferry</guid><pubDate>Sat, 04 May 2024 08:00:00 +0100</pubDate>"
                                    "<description>Ferry crews said they would stop work.</description></item></channel>")
    feed.write_text(text)
    third = update(library, embed=False, progress=False)
    assert [r.new for r in third.results] == [1, 0] and len(third.new_items) == 1
    assert library.con.execute("SELECT count(*) FROM news_items").fetchone()[0] == 9
    status = {f: s for f, s in library.con.execute("SELECT location, last_status FROM news_feeds").fetchall()}
    assert status[str(feed)] == "ok: 1 new, 5 already stored, 1 repeated"


@pytest.mark.slow
def test_update_embeds_the_new_items_only(library, fixtures):
    ingest(library, [Document("text", "t", "Theory", [Block(STRIKES)], language="en")], progress=False)
    add_feed(library, fixtures / "news/daily-ledger.atom")
    report = update(library, progress=False)
    (news,) = library.con.execute("SELECT count(*) FROM passages WHERE doc_id IN (SELECT unnest(?))",
                                  [report.new_documents]).fetchone()
    assert report.embedded.embedded == news == library.con.execute("SELECT count(*) FROM embeddings").fetchone()[0]


def test_an_item_without_a_date_is_kept_with_the_time_it_was_first_seen(library, fixtures):
    add_feed(library, fixtures / "news/harbour-gazette.rss")
    report = update(library, embed=False, progress=False)
    assert any("item 5: has no date; stored with the time it was first seen" in str(p) for p in report.problems)
    assert any("item 6: repeats an item" in str(p) for p in report.problems)
    letters = item_table(library).set_index("title").loc["Letters: the ferry timetable"]
    assert letters.undated and letters.time == letters.first_seen and pd.isna(letters.published)


def test_a_broken_feed_adds_nothing_and_takes_nothing_away(library, fixtures, tmp_path):
    add_feed(library, fixtures / "news/daily-ledger.atom")
    update(library, embed=False, progress=False)
    before = library.con.execute("SELECT item_id, doc_id FROM news_items ORDER BY 1").fetchall()
    passages = library.con.execute("SELECT count(*) FROM passages").fetchone()[0]
    big = tmp_path / "big.rss"
    big.write_text("<rss><channel><title>Big</title>" + "<item><title>x</title><description>"
                   + "y" * 2000 + "</description></item>" * 1 + "<item><title>z</title></item>" * 1000
                   + "</channel></rss>")
    for bad in (fixtures / "news/malformed.rss", fixtures / "news/entity-bomb.rss", big):
        add_feed(library, bad)
    report = update(library, embed=False, progress=False, max_mb=0.02)
    errors = {r.feed.location.rsplit("/", 1)[-1]: r.error for r in report.results if r.error}
    assert "line 13, column 6" in errors["malformed.rss"] and "refused for safety" in errors["entity-bomb.rss"]
    assert "over the 0.02 MB limit" in errors["big.rss"]
    assert library.con.execute("SELECT item_id, doc_id FROM news_items ORDER BY 1").fetchall() == before
    assert library.con.execute("SELECT count(*) FROM passages").fetchone()[0] == passages
    assert report.new_items == []  # not even the malformed feed's first, good item


def test_news_items_are_written_with_their_documents_or_not_at_all(library):
    doc = Document("news:X", "k", "X: a headline", [Block("A headline."), Block("Some text of the item.")])
    stored = Stored(doc, doc.fingerprint(Splitter().signature), Splitter().split(doc))

    def fail(con):
        con.execute("INSERT INTO news_items (item_id, doc_id, feed_id, outlet, title, first_seen) "
                    "VALUES ('i', ?, 'f', 'X', 'a headline', now())", [doc.doc_id])
        raise RuntimeError("killed half way")

    with pytest.raises(RuntimeError):
        library.store([stored], then=fail)
    assert library.con.execute("SELECT count(*) FROM documents").fetchone()[0] == 0
    assert library.con.execute("SELECT count(*) FROM news_items").fetchone()[0] == 0


@pytest.mark.filterwarnings("ignore:A test tried to use socket")
def test_a_url_is_recorded_by_add_feed_and_fetched_only_by_update(library, fixtures):
    add_feed(library, "http://192.0.2.1/feed.xml")  # TEST-NET-1; the sockets are off anyway
    add_feed(library, fixtures / "news/wire-export.jsonl")
    assert library.con.execute("SELECT last_read FROM news_feeds").fetchall() == [(None,), (None,)]
    report = update(library, embed=False, progress=False)
    url, wire = sorted(report.results, key=lambda r: not r.feed.location.startswith("http"))
    assert url.error and "could not be fetched" in url.error and wire.new == 3
    with pytest.raises(FeedError, match="does not exist"):
        add_feed(library, "no/such/feed.rss")
    with pytest.raises(FeedError, match="not a recorded feed"):
        update(library, ["elsewhere.rss"], embed=False, progress=False)


def test_schema_4_is_reached_from_a_version_3_library(tmp_path, monkeypatch):
    path = tmp_path / "old.duckdb"
    with monkeypatch.context() as m:
        m.setattr(library_module, "MIGRATIONS", library_module.MIGRATIONS[:3])
        m.setattr(library_module, "SCHEMA_VERSION", 3)
        written = library_module._passages_table  # as a Reading Room of schema 3 wrote them
        m.setattr(library_module, "_passages_table", lambda batch: written(batch).drop(["language"]))
        with open_library(path) as lib:
            ingest(lib, [Document("text", "a", "A", [Block("Some old text in the library.")], language="en")],
                   progress=False)
            assert lib.schema_version == 3
    with open_library(path) as lib:
        assert lib.schema_version == library_module.SCHEMA_VERSION >= 4
        tables = {r[0] for r in lib.con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
        assert {"news_feeds", "news_items", "news_alerts"} <= tables
        assert lib.con.execute("SELECT count(*) FROM documents").fetchone()[0] == 1


def test_the_reuters_sample_is_read_from_the_pinned_package(library):
    try:
        folder = reuters.sample_folder(download=False)
    except Exception as e:
        pytest.fail(f"{e} (the test set-up, `bash setup.sh test`, fetches it)")
    items = list(reuters.read_folder(folder))
    assert len(items) == 81 and not any(isinstance(i, Problem) for i in items)
    assert len({i.item_id for i in items}) == 80  # NEWID 10 is in reuters-21578.xml and in acq/
    opec = next(i for i in items if i.title == "OPEC MAY HAVE TO MEET TO FIRM PRICES - ANALYSTS")
    assert opec.published == dt.datetime(1987, 2, 26, 17, 34, 11, 890000) and opec.authors == ["Ted D'Afflisio"]
    assert opec.metadata["topics"] == ["crude"] and opec.blocks[0].text.startswith("OPEC may be forced to meet")
    assert not opec.blocks[-1].text.endswith("Reuter")
    add_feed(library, reuters.NAME)
    report = update(library, embed=False, download=False, progress=False)
    assert report.results[0].new == 80 and report.results[0].repeated == 1


# --- interests ---------------------------------------------------------------------------------

def test_a_profile_with_a_mistake_is_refused_naming_the_file_and_the_mistake(tmp_path):
    bad = tmp_path / "bad.toml"
    for text, message in [
        ("name = 'x'", "has no topics"),
        ("[[topics]]\nname = 'a'", "needs a description"),
        ("[[topics]]\nname = 'a'\ndescription = 'b'\nthreshold = 3", "threshold must be a number between 0 and 1"),
        ("[[topics]]\nname = 'a'\ndescription = 'b'\n[alerts]\ncommand = 'mail me'", "must be a list of strings"),
        ("[[topics]\nname = ", "is not valid TOML"),
    ]:
        bad.write_text(text)
        with pytest.raises(ProfileError, match=message) as e:
            load_profile(bad)
        assert str(bad) in str(e.value)
    with pytest.raises(ProfileError, match="cannot be read"):
        load_profile(tmp_path / "missing.toml")
    as_json = tmp_path / "interests.json"
    as_json.write_text(json.dumps({"name": "j", "topics": [{"name": "a", "description": "b", "threshold": 0.5}],
                                   "alerts": {"command": ["notify-me"], "input": "env"}}))
    loaded = load_profile(as_json)
    assert (loaded.topics[0].threshold, loaded.alert_command, loaded.alert_input) == (0.5, ["notify-me"], "env")


@pytest.mark.slow
def test_items_are_scored_against_topics_with_the_hybrid_search(newsroom):
    items = item_table(newsroom, *WINDOW)
    scores = score_items(searcher_for(newsroom), profile(), items).table().merge(items[["item_id", "title"]])
    labour = scores[scores.topic == "Labour disputes"].set_index("title")
    assert labour.loc["Dockworkers walk out at Northport over pay", "above"]
    assert labour.loc["Strike at Northport enters second day", "above"]
    assert not labour.loc["Northport United win the cup final", "above"]
    assert labour.score.idxmax() in ("Dockworkers walk out at Northport over pay", "Strike at Northport enters second day")
    housing = scores[scores.topic == "Housing"].set_index("title")
    assert housing.loc["Council votes to freeze rents for two years", "above"]
    assert not housing.loc["River Wend falls to a record low after dry spring", "above"]
    # A topic given by an example passage alone: more like this one.
    bakery = newsroom.con.execute("SELECT p.passage_id FROM passages p JOIN news_items i USING (doc_id) "
                                  "WHERE i.title LIKE 'Cooperative bakery%'").fetchone()[0]
    by_example = profile_from_dict({"topics": [{"name": "like this", "examples": [bakery], "threshold": 0.9}]})
    table = score_items(searcher_for(newsroom), by_example, items).table().merge(items[["item_id", "title"]])
    assert table.set_index("title").score.idxmax() == "Cooperative bakery opens on the waterfront"
    with pytest.raises(ProfileError, match="no passage with id"):
        score_items(searcher_for(newsroom), profile_from_dict({"topics": [{"name": "x", "examples": ["nope"]}]}),
                    items)


# --- digests --------------------------------------------------------------------------------------

@pytest.mark.slow
def test_a_digest_groups_stories_across_outlets_attributes_and_flags_differing_figures(newsroom):
    digest = build_digest(newsroom, profile(), *WINDOW, progress=False)
    titles = [s.title for s in digest.stories]
    strike = digest.stories[titles.index("Dockworkers walk out at Northport over pay")]
    assert set(strike.outlets) == {"The Harbour Gazette", "Daily Ledger", "Bay Wire Service"}
    rent = digest.stories[titles.index("Council votes to freeze rents for two years")]
    assert [i.outlet for i in rent.items] == ["The Harbour Gazette", "Bay Wire Service"]
    assert "Northport United win the cup final" not in titles  # about none of the topics
    for story in digest.stories:
        assert story.summary.method == "extractive"
        for sentence, item in zip(story.summary.sentences, story.items):
            assert sentence.startswith(f"{item.outlet} reports: “") and sentence.endswith(f"[{item.n}]")
    (workers,) = [d for d in strike.disagreements if d.unit == "dockworker"]
    assert {o: [v for v, _, _ in r] for o, r in workers.reports.items()} == {
        "The Harbour Gazette": ["4,000 dockworkers"], "Daily Ledger": ["3,500 dockworkers"]}
    (tenants,) = rent.disagreements
    assert tenants.unit == "tenant" and tenants.items == [1, 2]
    # Related reading comes from the library's own texts, never from news.
    assert [r["title"] for r in strike.related] == ["On Strikes"]
    assert all(not r["doc_id"] in set(item_table(newsroom)["doc_id"]) for s in digest.stories for r in s.related)
    markdown_text = digest.to_markdown()
    assert "**Where the outlets differ**" in markdown_text and "4,000 dockworkers \\[1\\]" not in markdown_text
    assert "The Harbour Gazette: 4,000 dockworkers [1]; Daily Ledger: 3,500 dockworkers [2]" in markdown_text


@pytest.mark.slow
def test_feed_text_is_escaped_in_html_and_markdown(newsroom):
    digest = build_digest(newsroom, None, *WINDOW, related_k=0, progress=False)
    item = digest.stories[0].items[0]
    item.title = "<script>alert('title')</script> [click](javascript:alert(1)) **bold**"
    item.outlet = 'Evil "Outlet" <img src=x onerror=alert(2)>'
    item.url = "javascript:alert(3)"
    digest.stories[0].summary.sentences = ["<script>alert('summary')</script> reports: “x” [1]"]
    page = html_page(digest)
    assert "<script" not in page and "<img" not in page
    assert 'href="javascript' not in page and "javascript:alert(3)" not in page
    assert "&lt;script&gt;alert(&#x27;title&#x27;)&lt;/script&gt;" in page
    assert 'http-equiv="Content-Security-Policy"' in page and "default-src 'none'" in page
    assert 'href="#s1-1">[1]</a>' in page  # the citation still links to the item
    text = markdown(digest)
    assert "<script" not in text and "<img" not in text and "javascript:alert(3)" not in text
    assert "\\[click\\](javascript:alert(1)) \\*\\*bold\\*\\*" in text
    assert safe_url("https://a.example/x?y=1") == "https://a.example/x?y=1"
    assert safe_url("javascript:alert(1)") is None and safe_url("data:text/html,x") is None


def test_the_news_rules_drop_misattributed_sentences_and_figures_no_item_gives():
    gazette = NewsHit("p1", "d1", "Strike", "", 2024, "c1", None, 0.0,
                      "Strike. About 4,000 dockworkers walked off the job.", speaker_label="The Harbour Gazette")
    ledger = NewsHit("p2", "d2", "Strike", "", 2024, "c2", None, 0.0,
                     "Strike. Some 3,500 dockworkers stopped work.", speaker_label="Daily Ledger")
    hits = [gazette, ledger]
    assert news_problem("The Harbour Gazette reports that 4,000 dockworkers walked off the job [1].", hits) is None
    assert "names The Harbour Gazette" in news_problem("Harbour Gazette says 3,500 dockworkers stopped [2].", hits)
    assert "figures no cited item gives (5000)" in news_problem("The Daily Ledger says 5,000 stopped work [2].", hits)
    assert "names what no cited item names (Maine)" in news_problem(
        "The Harbour Gazette reports that 4,000 dockworkers in Maine walked off the job [1].", hits)
    assert news_problem("According to the union, as quoted by the Harbour Gazette's report, "
                        "4,000 dockworkers walked off the job [1].", hits) is None


def test_a_source_the_outlet_quotes_is_named_as_quoted_by_the_outlet_never_according_to_twice():
    wire = NewsHit("p1", "d1", "Factory report", "", 2024, "c1", None, 0.0,
                   "The ministry said output fell by 4 percent in March.", speaker_label="Reuters")
    checked = check_answer("According to the ministry, output fell by 4 percent in March [1].", [wire],
                           SupportChecker(None))
    (sentence,) = checked.sentences
    assert sentence.supported and sentence.attributed_to == "Reuters"  # the checker named the outlet
    said = attributed(sentence)
    assert said == "According to the ministry, as quoted by Reuters, output fell by 4 percent in March [1]."
    assert said.lower().count("according to") == 1
    # A sentence the model attributed to the outlet itself is left as written.
    (own,) = check_answer("Reuters reports that output fell by 4 percent in March [1].", [wire],
                          SupportChecker(None)).sentences
    assert own.attributed_to is None and attributed(own) == own.final


@pytest.mark.slow
def test_summaries_by_the_model_are_checked_and_fall_back_to_extracts(newsroom, generator):
    # One story by the model (about 10-40 s here, with the machine shared), one extract.
    digest = build_digest(newsroom, profile(), *WINDOW, generator=generator, model_stories=1, max_stories=2,
                          related_k=0, progress=False)
    assert len(digest.stories) == 2 and digest.stories[1].summary.raw == ""
    for number, story in enumerate(digest.stories):
        summary = story.summary
        assert summary.sentences
        if number == 0:
            assert summary.raw  # the model was asked
        if summary.method == "extractive":
            continue
        hits = {i.n: i for i in story.items}
        for sentence in summary.sentences:
            cited = [hits[n] for n in map(int, re.findall(r"\[(\d+)\]", sentence))]
            assert cited, sentence
            assert any(i.outlet.lower().removeprefix("the ") in sentence.lower() for i in cited), sentence


# --- alerts -----------------------------------------------------------------------------------------

RECORDER = """
import json, os, sys
data = sys.stdin.read()
with open(sys.argv[1], "a") as out:
    out.write(json.dumps({"stdin": data, "title": os.environ.get("READINGROOM_ALERT_TITLE")}) + "\\n")
"""


@pytest.mark.slow
def test_alerts_are_raised_once_and_handed_to_the_command_without_a_shell(library, tmp_path, cache):
    feed = tmp_path / "evil.rss"
    feed.write_text(
        "<rss><channel><title>Evil Gazette</title><language>en</language>"
        "<item><title>Dockers strike: $(touch PWNED) `touch PWNED2`; touch PWNED3 | tee x</title>"
        "<guid>e1</guid><pubDate>Wed, 01 May 2024 09:00:00 GMT</pubDate>"
        "<description>Dockworkers and their union went on strike over pay at the port.</description></item>"
        "<item><title>Tide tables for May</title><guid>e2</guid><pubDate>Wed, 01 May 2024 10:00:00 GMT</pubDate>"
        "<description>High water at the harbour mouth is at six in the morning.</description></item>"
        "</channel></rss>")
    add_feed(library, feed)
    update(library, progress=False)
    log = tmp_path / "alerts.jsonl"
    command = [sys.executable, "-c", RECORDER, str(log)]
    reader = profile("alert test", command=command)
    report = check_alerts(library, reader, *WINDOW)
    assert [(a.topic, a.outlet) for a in report.new] == [("Labour disputes", "Evil Gazette")]
    assert report.delivered == 1 and not report.failed
    (received,) = [json.loads(line) for line in log.read_text().splitlines()]
    alert = json.loads(received["stdin"])
    assert alert["title"] == "Dockers strike: $(touch PWNED) `touch PWNED2`; touch PWNED3 | tee x"
    assert alert["topic"] == "Labour disputes" and received["title"] is None  # stdin, not the environment
    assert not list(tmp_path.glob("PWNED*")) and not list(tmp_path.parent.glob("PWNED*"))
    # Never the same alert twice: not on the next check, not by the database.
    assert check_alerts(library, reader, *WINDOW).new == [] and len(log.read_text().splitlines()) == 1
    with pytest.raises(duckdb.ConstraintException):
        library.con.execute("INSERT INTO news_alerts (profile, topic, item_id, score) "
                            "SELECT profile, topic, item_id, 1.0 FROM news_alerts")
    # In the environment instead, for another profile; and a failing command is recorded (the alert stays
    # pending: the next check hands it on again, tests/test_hardening.py).
    by_env = check_alerts(library, profile("by env"), *WINDOW, command=command, alert_input="env")
    assert by_env.delivered == 1
    assert json.loads(log.read_text().splitlines()[-1])["title"].startswith("Dockers strike: $(touch PWNED)")
    failing = check_alerts(library, profile("failing"), *WINDOW,
                           command=[sys.executable, "-c", "import sys; sys.exit(3)"])
    assert failing.delivered == 0 and "exit status 3" in failing.failed[0]
    delivery = dict(library.con.execute("SELECT profile, delivery FROM news_alerts").fetchall())
    assert delivery == {"alert test": "exit status 0", "by env": "exit status 0", "failing": "exit status 3"}
    missing = check_alerts(library, profile("missing"), *WINDOW, command=["/no/such/program"])
    assert "no such program" in missing.failed[0]


# --- the command line and the timeline ---------------------------------------------------------------

@pytest.mark.slow
def test_cli_news_add_update_digest_alerts(tmp_path, fixtures, cache):
    db = str(tmp_path / "cli.duckdb")
    run = CliRunner().invoke
    for name in FEEDS:
        assert run(main, ["news", "add-feed", str(fixtures / "news" / name), "--db", db]).exit_code == 0
    result = run(main, ["news", "update", "--no-embed", "--quiet", "--db", db])
    assert result.exit_code == 1 and "11 new items from 3 feeds" in result.output  # two bad JSONL lines
    assert "line 4: is not valid JSON" in result.output
    out = tmp_path / "digest.html"
    result = run(main, ["news", "digest", "--profile", str(fixtures / "news/interests.toml"), "--since", WINDOW[0],
                        "--until", WINDOW[1], "--extractive", "--format", "html", "-o", str(out), "--quiet",
                        "--db", db])
    assert result.exit_code == 0, result.output
    page = out.read_text()
    assert "Dockworkers walk out at Northport over pay" in page and "<script" not in page
    result = run(main, ["news", "alerts", "--profile", str(fixtures / "news/interests.toml"), "--since", WINDOW[0],
                        "--until", WINDOW[1], "--dry-run", "--db", db])
    assert result.exit_code == 0 and "new alerts" in result.output
    listed = run(main, ["news", "alerts", "--list", "--db", db])
    assert "Labour disputes" in listed.output and "not handed on" in listed.output
    bad = tmp_path / "bad.toml"
    bad.write_text("name = 1\n[[topics]]\n")
    result = run(main, ["news", "digest", "--profile", str(bad), "--db", db])
    assert result.exit_code == 1 and "bad.toml" in result.output and "Traceback" not in result.output
    result = run(main, ["news", "feeds", "--db", db])
    assert "ok: 3 new" in result.output


@pytest.mark.slow
def test_timeline_counts_items_per_day_and_outlet(newsroom):
    items = item_table(newsroom, *WINDOW)
    table = items_per_day(items)
    assert set(table.columns) == {"The Harbour Gazette", "Daily Ledger", "Bay Wire Service"}
    assert table.sum().sum() == len(items) and len(table) >= 3
    fig = plot_timeline(table, title="test")
    assert len(fig.axes) == 1
