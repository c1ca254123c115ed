"""The digest: a reader's news for a time window, as stories.

    from readingroom.news import build_digest, load_profile
    digest = build_digest(lib, load_profile("interests.toml"), since="2024-05-01", until="2024-05-08")
    Path("digest.html").write_text(digest.to_html())

1. The items of the window (store.item_table), scored against the profile's
   topics (interests.score_items); with a profile, only items about at least
   one topic go on.
2. Items about the same event are grouped into stories (stories.py).
3. Each story is summarised with every sentence attributed to its outlet
   and cited (summary.py), the figures outlets give differently are flagged
   (figures.py), and passages of the library's own texts (everything that
   is not news) that bear on the story are linked: searched with the
   headline and lead of its first items, kept when the answer gate's
   strength (answer.retrieval_evidence) reaches RELATED_THRESHOLD.
4. to_markdown() and to_html() write it out (render.py), escaping all feed text.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import time
from dataclasses import dataclass, field

import pandas as pd
from tqdm.auto import tqdm

from readingroom.library.store import Library
from readingroom.news.interests import Profile, Scores, score_items
from readingroom.news.stories import STORY_THRESHOLD, WINDOW_HOURS, cluster, item_vectors
from readingroom.dates import as_utc
from readingroom.news.store import item_table, now
from readingroom.news.summary import NewsHit, Summary, chosen_items, excerpt, lead_sentence, summarise

# Related reading: the answer gate's strength (answer.py) a passage of the
# library's own texts needs to be linked to a story. On the test fixtures,
# the strike stories reach 0.35-0.45 against a passage on strikes, and
# stories on other things (a river, a football match, a bakery) stay at or
# below 0.17 against anything; notebook 07 shows it on the default library.
RELATED_THRESHOLD = 0.35
RELATED_QUERIES = 2  # items of a story (from different outlets first) searched for it
RELATED_K = 2
DEFAULT_DAYS = 7


@dataclass
class StoryItem:
    n: int  # its number in the story: what [n] cites
    item_id: str
    doc_id: str
    outlet: str
    title: str
    url: str | None
    time: dt.datetime
    undated: bool  # the feed gave no date: `time` is when it was first seen
    lead: str
    topics: dict[str, float] = field(default_factory=dict)  # topic -> score, for the topics it is about


@dataclass
class Story:
    title: str
    items: list[StoryItem]
    topics: dict[str, float]  # the best score of any of its items, per topic it is about
    summary: Summary
    disagreements: list = field(default_factory=list)  # figures.Disagreement
    related: list[dict] = field(default_factory=list)  # passages of the library's own texts

    @property
    def outlets(self) -> list[str]:
        return list(dict.fromkeys(i.outlet for i in self.items))

    @property
    def start(self) -> dt.datetime:
        return min(i.time for i in self.items)

    @property
    def end(self) -> dt.datetime:
        return max(i.time for i in self.items)


@dataclass
class Digest:
    title: str
    since: dt.datetime
    until: dt.datetime
    stories: list[Story]
    items_in_window: int
    items_matched: int
    profile: str | None = None
    generated: dt.datetime = field(default_factory=now)
    seconds: float = 0.0
    model: str | None = None

    def to_markdown(self) -> str:
        from readingroom.news.render import markdown

        return markdown(self)

    def to_html(self) -> str:
        from readingroom.news.render import html_page

        return html_page(self)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def window(since=None, until=None, days: float | None = DEFAULT_DAYS) -> tuple[dt.datetime, dt.datetime]:
    """[since, until): by default the `days` before now (UTC)."""
    until = as_utc(until) if until is not None else now()
    since = as_utc(since) if since is not None else until - dt.timedelta(days=days or DEFAULT_DAYS)
    if since >= until:
        raise ValueError(f"the window is empty: since {since} is not before until {until}")
    return since, until


def build_digest(lib: Library, profile: Profile | None = None, since=None, until=None, *,
                 days: float | None = DEFAULT_DAYS, searcher=None, generator=None, model_stories: int | None = None,
                 max_stories: int = 30, story_threshold: float = STORY_THRESHOLD, window_hours: float = WINDOW_HOURS,
                 related_threshold: float = RELATED_THRESHOLD, related_k: int = RELATED_K,
                 scores: Scores | None = None, progress: bool = True) -> Digest:
    """The digest of the window; see the module notes. `generator` writes
    the summaries of the first `model_stories` stories (all by default);
    without one every summary is extractive. `scores`: the window's items
    already scored against the profile (score_items), to save doing it again."""
    from readingroom.search.searcher import searcher_for
    from readingroom.answer.check import SupportChecker

    started = time.perf_counter()
    since, until = window(since, until, days)
    searcher = searcher or searcher_for(lib)
    items = item_table(lib, since, until)
    matched = items
    per_topic: dict[str, dict[str, float]] = {}
    if profile is not None and not items.empty:
        scores = scores if scores is not None else score_items(searcher, profile, items)
        for m in scores.above():
            per_topic.setdefault(m.item_id, {})[m.topic] = m.score
        matched = items[items["item_id"].isin(per_topic)].reset_index(drop=True)
    title = f"News digest for {profile.name}" if profile else "News digest"
    digest = Digest(title, since, until, [], len(items), len(matched), profile.name if profile else None,
                    model=getattr(generator, "name", None))
    if matched.empty:
        digest.seconds = time.perf_counter() - started
        return digest
    vectors = item_vectors(searcher, matched)
    clusters = cluster(vectors, matched["time"], story_threshold, window_hours)
    stories = [_story(matched.iloc[c.rows], per_topic) for c in clusters]
    stories.sort(key=lambda s: (-len(s.outlets), -len(s.items), -max(s.topics.values(), default=0.0), s.start))
    stories = stories[:max_stories]
    checker = SupportChecker(searcher.index.embedder)
    theory = _theory_sources(lib)
    bar = tqdm(stories, desc="summarising stories", unit="story", disable=not progress)
    for number, story in enumerate(bar):
        use_model = generator is not None and (model_stories is None or number < model_stories)
        summarise_story(searcher, story, generator if use_model else None, checker)
        story.disagreements = _disagreements(lib, story)
        if theory and related_k > 0:
            story.related = related_passages(searcher, story, theory, related_threshold, related_k)
    digest.stories = stories
    digest.seconds = time.perf_counter() - started
    return digest


def _story(rows: pd.DataFrame, per_topic: dict) -> Story:
    items = []
    for n, r in enumerate(rows.itertuples(), start=1):
        items.append(StoryItem(n, r.item_id, r.doc_id, r.outlet, r.title, r.url, r.time.to_pydatetime(),
                               bool(r.undated), lead_sentence(r.text, r.title), dict(per_topic.get(r.item_id, {}))))
    topics: dict[str, float] = {}
    for item in items:
        for topic, score in item.topics.items():
            topics[topic] = max(score, topics.get(topic, 0.0))
    return Story(items[0].title, items, dict(sorted(topics.items(), key=lambda kv: -kv[1])),
                 Summary([], "extractive"))


def summarise_story(searcher, story: Story, generator=None, checker=None) -> Summary:
    """Write (or rewrite) a story's summary: by `generator`, checked, or an
    extract without one; see summary.py."""
    from readingroom.answer.check import SupportChecker

    checker = checker or SupportChecker(searcher.index.embedder)
    chosen = chosen_items([i.outlet for i in story.items])
    items = [story.items[p] for p in chosen]
    rows = dict((r[0], r[1:]) for r in searcher.lib.con.execute(
        "SELECT doc_id, text, language FROM documents WHERE doc_id IN (SELECT unnest(?))",
        [[i.doc_id for i in items]]).fetchall())
    hits = []
    for item in items:
        text, language = rows[item.doc_id]
        when = item.time.strftime("%d %b %Y")
        hits.append(NewsHit(passage_id=item.item_id, doc_id=item.doc_id, title=item.title, author="",
                            year=item.time.year, citation=f"{item.outlet}, {when}: {item.title}", anchor=None,
                            score=0.0, text=excerpt(text, item.title), language=language,
                            source=f"news:{item.outlet}", url=item.url, speaker_label=item.outlet))
    story.summary = summarise(hits, [i.n for i in items], [i.lead for i in items], generator=generator,
                              checker=checker)
    return story.summary


def _disagreements(lib: Library, story: Story) -> list:
    from readingroom.news.figures import disagreements

    if len(story.outlets) < 2:
        return []
    texts = dict(lib.con.execute("SELECT doc_id, text FROM documents WHERE doc_id IN (SELECT unnest(?))",
                                 [[i.doc_id for i in story.items]]).fetchall())
    return disagreements([(i.n, i.outlet, texts[i.doc_id]) for i in story.items])


def _theory_sources(lib: Library) -> tuple[str, ...]:
    """The library's sources that are not news: where related reading comes from."""
    rows = lib.con.execute("SELECT DISTINCT source FROM documents WHERE source NOT LIKE 'news:%' ORDER BY 1")
    return tuple(r[0] for r in rows.fetchall())


def related_passages(searcher, story: Story, sources: tuple[str, ...], threshold: float = RELATED_THRESHOLD,
                     k: int = RELATED_K) -> list[dict]:
    """Passages of the library's own texts that bear on the story (see the
    module notes): each of its first items' headline and lead is searched,
    and a passage is kept at its best strength over them. Best first."""
    from readingroom.answer.pipeline import retrieval_evidence
    from readingroom.search.searcher import Filters

    best: dict[str, dict] = {}
    for position in chosen_items([i.outlet for i in story.items], RELATED_QUERIES):
        item = story.items[position]
        query = f"{item.title}. {item.lead}"
        hits = searcher.search(query, k=max(k * 2, 4), filters=Filters(sources=sources))
        if not hits:
            continue
        evidence = retrieval_evidence(searcher, query, hits)
        for hit, e in zip(hits, evidence["passages"]):
            if e["strength"] >= threshold and e["strength"] > best.get(hit.passage_id, {}).get("strength", -1):
                best[hit.passage_id] = {
                    "passage_id": hit.passage_id, "doc_id": hit.doc_id, "title": hit.title, "author": hit.author,
                    "citation": hit.citation, "anchor": hit.anchor, "url": hit.url, "text": hit.text,
                    "strength": e["strength"], "item": item.n}
    found = list(best.values())
    found.sort(key=lambda h: -h["strength"])
    return found[:k]
