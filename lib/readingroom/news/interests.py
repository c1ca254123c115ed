"""A reader's interests: a few named topics, each described in words and,
optionally, by example passages from the library, and how news items are
scored against them.

The profile is a TOML file (or JSON with the same keys):

    name = "study group"

    [[topics]]
    name = "Labour disputes"
    description = "Strikes and walkouts by workers and their unions over pay"
    examples = ["9b1c0f2e4d6a8c10"]   # passage ids, e.g. from `readingroom search --json`
    threshold = 0.45                  # optional; DEFAULT_THRESHOLD otherwise

    [alerts]                          # optional: what to run for each new alert (alerts.py)
    command = ["/usr/local/bin/notify-me", "--quiet"]
    input = "stdin"                   # the alert as JSON on stdin; or "env": READINGROOM_ALERT_* variables

Scoring. Each of a topic's queries (its description, and the text of each
example passage) is searched with the library's hybrid search, kept to the
items being scored (Filters(doc_ids=...), no MMR, so that similar items are
all scored). Fused ranks cannot be compared with a threshold, so each passage
found gets the strength the answer gate uses (search.relevance.retrieval_evidence):

    strength = 0.5 * cosine(query, passage) + 0.5 * coverage

where coverage is the IDF-weighted share of the query's content words that
the passage holds. An example passage is a long query whose words no item
holds all of, so it is scored by its cosine alone. An item's score for a
topic is the best over its passages and the topic's queries, and the item is
about the topic when the score reaches the topic's threshold.

Measured on the Reuters sample against Reuters' own labels (notebook 07,
`threshold_table`; MiniLM vectors): "Crude oil prices, OPEC and oil
production" against `crude` ranks with AUC 0.995, and at the default
threshold, 0.35, flags 18 articles, all labelled crude (recall 0.90).
"Mergers and acquisitions: a company buys another company or a stake in it"
against `acq`: AUC 0.92, but at 0.35 only a quarter of the takeover news is
flagged (precision 1.0, recall 0.26; at 0.25, 0.97 and 0.56): takeovers are
written about in many words. Ranking is reliable; where to cut is per topic,
hence the per-topic threshold.
"""
from __future__ import annotations

import dataclasses
import json
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

DEFAULT_THRESHOLD = 0.35  # the answer gate's threshold; see the module notes for what it means on Reuters
ALERT_INPUTS = ("stdin", "env")


class ProfileError(Exception):
    pass


@dataclass(frozen=True)
class Topic:
    name: str
    description: str
    examples: tuple[str, ...] = ()  # passage ids
    threshold: float = DEFAULT_THRESHOLD


@dataclass
class Profile:
    name: str
    topics: list[Topic]
    alert_command: list[str] | None = None
    alert_input: str = "stdin"
    location: str = ""

    def topic(self, name: str) -> Topic:
        for t in self.topics:
            if t.name == name:
                return t
        raise KeyError(name)


def load_profile(path: str | Path) -> Profile:
    """A Profile from a TOML or JSON file; ProfileError names the file and
    what is wrong with it."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise ProfileError(f"{path}: cannot be read ({e.strerror or e})") from e
    try:
        if path.suffix.lower() == ".json":
            data = json.loads(raw.decode("utf-8-sig"))
        else:
            data = tomllib.loads(raw.decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError, tomllib.TOMLDecodeError) as e:
        kind = "JSON" if path.suffix.lower() == ".json" else "TOML"
        raise ProfileError(f"{path}: is not valid {kind} ({e})") from e
    return profile_from_dict(data, str(path))


def profile_from_dict(data: dict, location: str = "<profile>") -> Profile:
    if not isinstance(data, dict):
        raise ProfileError(f"{location}: a profile is a table of settings with [[topics]]")
    topics_data = data.get("topics") or data.get("topic")
    if not isinstance(topics_data, list) or not topics_data:
        raise ProfileError(f"{location}: has no topics; add at least one [[topics]] with a name and a description")
    topics, names = [], set()
    for n, t in enumerate(topics_data, start=1):
        where = f"{location}, topic {n}"
        if not isinstance(t, dict):
            raise ProfileError(f"{where}: is not a table")
        name = str(t.get("name") or "").strip()
        description = " ".join(str(t.get("description") or "").split())
        examples = t.get("examples") or []
        if not name:
            raise ProfileError(f"{where}: has no name")
        if name in names:
            raise ProfileError(f"{where}: the name {name!r} is used twice")
        if not description and not examples:
            raise ProfileError(f"{where} ({name}): needs a description in words, or example passages, or both")
        if not isinstance(examples, list) or not all(isinstance(e, str) for e in examples):
            raise ProfileError(f"{where} ({name}): examples must be a list of passage ids")
        threshold = t.get("threshold", DEFAULT_THRESHOLD)
        if not isinstance(threshold, (int, float)) or not 0 <= threshold <= 1:
            raise ProfileError(f"{where} ({name}): threshold must be a number between 0 and 1")
        unknown = set(t) - {"name", "description", "examples", "threshold"}
        if unknown:
            raise ProfileError(f"{where} ({name}): unknown settings {', '.join(sorted(unknown))}")
        names.add(name)
        topics.append(Topic(name, description, tuple(examples), float(threshold)))
    alerts = data.get("alerts") or {}
    command = alerts.get("command")
    if command is not None and (not isinstance(command, list) or not command
                                or not all(isinstance(c, str) and c for c in command)):
        raise ProfileError(f"{location}: [alerts] command must be a list of strings, the program first "
                           "(it is run without a shell)")
    alert_input = alerts.get("input", "stdin")
    if alert_input not in ALERT_INPUTS:
        raise ProfileError(f"{location}: [alerts] input must be one of {', '.join(ALERT_INPUTS)}")
    return Profile(name=str(data.get("name") or Path(location).stem), topics=topics, alert_command=command,
                   alert_input=alert_input, location=location)


# --- scoring -----------------------------------------------------------------------------------

@dataclass
class TopicMatch:
    item_id: str
    doc_id: str
    topic: str
    score: float
    passage_id: str
    query: str  # "description" or "example <passage id>"
    cosine: float | None = None
    coverage: float | None = None
    above: bool = False  # the score reaches the topic's threshold

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclass
class Scores:
    """Every item's best score for every topic (0 where no passage of it was found)."""

    matches: list[TopicMatch] = field(default_factory=list)

    def table(self) -> pd.DataFrame:
        columns = [f.name for f in dataclasses.fields(TopicMatch)]
        return pd.DataFrame([m.to_dict() for m in self.matches], columns=columns)

    def above(self) -> list[TopicMatch]:
        return [m for m in self.matches if m.above]


def example_texts(lib, topic: Topic) -> dict[str, str]:
    if not topic.examples:
        return {}
    rows = dict(lib.con.execute("SELECT passage_id, text FROM passages WHERE passage_id IN (SELECT unnest(?))",
                                [list(topic.examples)]).fetchall())
    missing = [e for e in topic.examples if e not in rows]
    if missing:
        raise ProfileError(f"topic {topic.name!r}: no passage with id {', '.join(missing)} in this library")
    return {e: rows[e] for e in topic.examples}


def score_items(searcher, profile: Profile, items: pd.DataFrame) -> Scores:
    """Score items (rows of store.item_table: item_id, doc_id) against each
    topic of the profile; see the module notes."""
    from readingroom.search.relevance import retrieval_evidence
    from readingroom.search.searcher import Filters

    scores = Scores()
    if items.empty:
        return scores
    item_of = dict(zip(items["doc_id"], items["item_id"]))
    filters = Filters(doc_ids=tuple(item_of))
    (n_passages,) = searcher.lib.con.execute(
        "SELECT count(*) FROM passages WHERE doc_id IN (SELECT unnest(?))", [list(item_of)]).fetchone()
    # Every passage of the items may be scored: no diversity step, enough candidates.
    settings = dataclasses.replace(searcher.settings, mmr_lambda=1.0, candidates=max(100, n_passages))
    for topic in profile.topics:
        best: dict[str, TopicMatch] = {}
        queries = ([("description", topic.description)] if topic.description else []) + [
            (f"example {pid}", text) for pid, text in example_texts(searcher.lib, topic).items()]
        for label, query in queries:
            hits = searcher.search(query, k=n_passages, filters=filters, settings=settings)
            if not hits:
                continue
            evidence = retrieval_evidence(searcher, query, hits)
            for hit, e in zip(hits, evidence["passages"]):
                score = e["strength"] if label == "description" or e["cosine"] is None else e["cosine"]
                item_id = item_of[hit.doc_id]
                if item_id not in best or score > best[item_id].score:
                    best[item_id] = TopicMatch(item_id, hit.doc_id, topic.name, round(float(score), 4),
                                               hit.passage_id, label, e["cosine"], e["coverage"])
        for item_id, doc_id in zip(items["item_id"], items["doc_id"]):
            match = best.get(item_id) or TopicMatch(item_id, doc_id, topic.name, 0.0, "", "")
            match.above = match.score >= topic.threshold
            scores.matches.append(match)
    return scores


def threshold_table(scores: pd.DataFrame, topic: str, truth: dict[str, bool],
                    thresholds=(0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5)) -> pd.DataFrame:
    """How a topic's threshold trades precision for recall, against known
    answers (item id -> about the topic or not), from a Scores.table()."""
    rows = scores[scores["topic"] == topic]
    about = rows["item_id"].map(truth).fillna(False).astype(bool)
    out = []
    for t in thresholds:
        flagged = rows["score"] >= t
        hits = int((flagged & about).sum())
        out.append({"threshold": t, "flagged": int(flagged.sum()), "right": hits,
                    "precision": hits / flagged.sum() if flagged.sum() else float("nan"),
                    "recall": hits / about.sum() if about.sum() else float("nan")})
    return pd.DataFrame(out).set_index("threshold")
