"""News: feeds matched to a reader's interests, digests whose every sentence
says which outlet reports it, and alerts.

    from readingroom import open_library
    from readingroom.news import add_feed, update, load_profile, build_digest, check_alerts

    lib = open_library()
    add_feed(lib, "reuters-21578")                  # the offline sample; or a file, or an http(s) URL
    print(update(lib).summary())                    # reads the feeds (fetches URLs), stores new items
    profile = load_profile("interests.toml")        # topics described in words
    digest = build_digest(lib, profile, since="1987-02-26", until="1987-03-03")
    open("digest.html", "w").write(digest.to_html())
    print(check_alerts(lib, profile, since="1987-02-26", until="1987-03-03").summary())

One idea per module:
    items.py      an item, its stable id, its text as a library document
    feeds.py      RSS, Atom, JSONL and Reuters XML, streamed, capped
    reuters_xml.py  the Reuters XML formats (Reuters-21578, RCV1) that feeds.py reads
    reuters.py    the offline sample feed (Debian's r-cran-tm), pinned
    fetch.py      fetching a URL, only on update
    store.py      feeds and items in the library; update
    interests.py  profiles and scoring items against topics
    stories.py    grouping items about the same event
    figures.py    figures outlets give differently
    summary.py    checked, attributed summaries (or extracts)
    digest.py     a window's stories, with related reading
    render.py     Markdown and HTML, escaped
    alerts.py     alert records and the reader's command
    timeline.py   items per day, plotted
"""
from readingroom.news.alerts import AlertReport, alerts_table, check_alerts
from readingroom.news.digest import Digest, build_digest
from readingroom.news.feeds import DEFAULT_MAX_MB, read_file
from readingroom.news.interests import Profile, ProfileError, Topic, load_profile, score_items
from readingroom.news.items import NewsItem
from readingroom.news.store import SAMPLE_FEEDS, FeedError, add_feed, feeds, item_table, update

__all__ = [
    "AlertReport", "DEFAULT_MAX_MB", "Digest", "FeedError", "NewsItem", "Profile", "ProfileError",
    "SAMPLE_FEEDS", "Topic", "add_feed", "alerts_table", "build_digest", "check_alerts", "feeds", "item_table",
    "load_profile", "read_file", "score_items", "update",
]
