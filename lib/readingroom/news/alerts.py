"""Alerts: items that reach a topic's threshold, recorded once, and handed
to a command the reader configured (to send mail, a desktop notice ...).

An alert is a row of news_alerts keyed by (profile, topic, item): the same
item never raises the same topic's alert twice, however often alerts are
checked (the key is the database's, and an alert is handed on only by the
run whose insert made it, so two runs at once cannot both send it).

The command is the reader's own, from the profile ([alerts] command, a list:
the program and its arguments) or the command line. It is run without a
shell, with the alert as JSON on its standard input (input = "stdin", the
default) or in READINGROOM_ALERT_* environment variables (input = "env").
Feed text is never put into the command line, so a headline such as
"$(rm -rf ~)" or "; reboot" is only ever data. A command that fails, hangs
(COMMAND_TIMEOUT_S) or cannot be started (any OSError: no such program, a
script without a shebang, an environment too large) is recorded in the
alert's `delivery`; the alert stays pending (`delivered` empty) and is
handed on again by the next check that finds its item, and the rest of the
batch is delivered meanwhile. Long fields are cut (MAX_FIELD_CHARS), so an
enormous headline cannot make the command impossible to start.
"""
from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
from dataclasses import asdict, dataclass, field

from readingroom.library.store import Library
from readingroom.news.digest import window
from readingroom.news.interests import Profile, score_items
from readingroom.news.store import item_table, now

COMMAND_TIMEOUT_S = 60
MAX_FIELD_CHARS = 2000  # a title or passage handed on; the whole item is in the library


def cut(text: str | None, limit: int = MAX_FIELD_CHARS) -> str:
    text = text or ""
    return text if len(text) <= limit else text[: limit - 1] + "…"


@dataclass
class Alert:
    profile: str
    topic: str
    item_id: str
    score: float
    outlet: str
    title: str
    url: str | None
    time: str  # ISO 8601, UTC
    undated: bool
    passage: str  # the passage that matched the topic best

    def __post_init__(self):
        self.outlet, self.title, self.passage = cut(self.outlet), cut(self.title), cut(self.passage)
        self.url = cut(self.url) if self.url else self.url

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False)

    def environment(self) -> dict[str, str]:
        values = {"PROFILE": self.profile, "TOPIC": self.topic, "ITEM_ID": self.item_id,
                  "SCORE": f"{self.score:.4f}", "OUTLET": self.outlet, "TITLE": self.title,
                  "URL": self.url or "", "TIME": self.time, "JSON": self.to_json()}
        # A NUL cannot be passed in the environment; nothing else needs changing.
        return {f"READINGROOM_ALERT_{k}": v.replace("\x00", "") for k, v in values.items()}


@dataclass
class AlertReport:
    new: list[Alert] = field(default_factory=list)
    already: int = 0  # matches that had raised their alert before
    retried: list[Alert] = field(default_factory=list)  # raised before, not delivered yet: handed on again
    delivered: int = 0
    failed: list[str] = field(default_factory=list)  # what went wrong, one line per alert

    def summary(self) -> str:
        lines = [f"{len(self.new)} new alerts ({self.already} raised before"
                 + (f", {len(self.retried)} of them pending, handed on again" if self.retried else "") + ")"
                 + (f"; {self.delivered} handed to the command" if self.delivered or self.failed else "")]
        for a in self.new:
            lines.append(f"  [{a.topic}] {a.outlet}: {a.title} ({a.score:.2f})")
        lines += [f"  failed: {f}" for f in self.failed]
        return "\n".join(lines)


def check_alerts(lib: Library, profile: Profile, since=None, until=None, *, days: float | None = 7,
                 searcher=None, command: list[str] | None = None, alert_input: str | None = None,
                 deliver: bool = True, scores=None) -> AlertReport:
    """Score the window's items against the profile, record an alert for
    each (topic, item) at or above the topic's threshold that has none yet,
    and hand each new one to the command (the profile's unless `command`
    is given). `scores`: the window's items already scored (score_items).
    Returns what was new."""
    from readingroom.search.searcher import searcher_for

    since, until = window(since, until, days)
    searcher = searcher or searcher_for(lib)
    items = item_table(lib, since, until)
    report = AlertReport()
    if items.empty:
        return report
    texts = dict(lib.con.execute("SELECT passage_id, text FROM passages WHERE doc_id IN (SELECT unnest(?))",
                                 [items["doc_id"].tolist()]).fetchall())
    by_item = {r.item_id: r for r in items.itertuples()}
    matches = (scores if scores is not None else score_items(searcher, profile, items)).above()
    # (topic, item) -> delivered yet?
    known = {(t, i): d for t, i, d in lib.con.execute(
        "SELECT topic, item_id, delivered IS NOT NULL FROM news_alerts WHERE profile = ?", [profile.name]).fetchall()}
    for m in matches:
        r = by_item[m.item_id]
        alert = Alert(profile.name, m.topic, m.item_id, m.score, r.outlet, r.title, r.url,
                      r.time.to_pydatetime().isoformat(), bool(r.undated),
                      " ".join(texts.get(m.passage_id, "").split()))
        if (m.topic, m.item_id) in known:
            report.already += 1
            if not known[(m.topic, m.item_id)]:
                report.retried.append(alert)
            continue
        report.new.append(alert)
    if report.new:
        # Only the rows this run inserted are new: another run at the same
        # time may have raised some of them a moment ago.
        inserted = []
        with lib.transaction():
            for a in report.new:
                if lib.con.execute("INSERT INTO news_alerts (profile, topic, item_id, score) VALUES (?, ?, ?, ?) "
                                   "ON CONFLICT DO NOTHING RETURNING item_id",
                                   [a.profile, a.topic, a.item_id, a.score]).fetchall():
                    inserted.append(a)
        report.already += len(report.new) - len(inserted)
        report.new = inserted
    command = command if command is not None else profile.alert_command
    how = alert_input or profile.alert_input
    if not deliver or not command:
        report.retried = []  # they stay pending, as they were
    for alert in report.new + report.retried:
        if not deliver or not command:
            _record(lib, alert, None, "not handed on (no alert command)")
            continue
        ok, what = run_command(command, alert, how)
        _record(lib, alert, now() if ok else None, what)
        if ok:
            report.delivered += 1
        else:
            report.failed.append(f"[{alert.topic}] {alert.title}: {what}")
    return report


def run_command(command: list[str], alert: Alert, how: str = "stdin") -> tuple[bool, str]:
    """Run the reader's command for one alert, without a shell; (it took
    it, what happened)."""
    if isinstance(command, str) or not command:
        raise ValueError("the alert command must be a list: the program, then its arguments")
    env = {**os.environ, **alert.environment()} if how == "env" else {**os.environ}
    data = alert.to_json().encode("utf-8") + b"\n" if how == "stdin" else b""
    try:
        done = subprocess.run(list(command), input=data, env=env, capture_output=True, timeout=COMMAND_TIMEOUT_S,
                              shell=False, check=False)
    except FileNotFoundError:
        return False, f"cannot run {command[0]!r}: no such program"
    except PermissionError:
        return False, f"cannot run {command[0]!r}: not allowed to execute it"
    except subprocess.TimeoutExpired:
        return False, f"{command[0]!r} did not finish within {COMMAND_TIMEOUT_S} s"
    except (OSError, ValueError, subprocess.SubprocessError) as e:  # ENOEXEC (no shebang), E2BIG, a NUL
        return False, f"cannot run {command[0]!r}: {getattr(e, 'strerror', None) or e}"
    if done.returncode != 0:
        tail = done.stderr.decode("utf-8", "replace").strip()[-300:]
        return False, f"exit status {done.returncode}" + (f": {tail}" if tail else "")
    return True, "exit status 0"


def _record(lib: Library, alert: Alert, delivered: dt.datetime | None, what: str) -> None:
    lib.con.execute("UPDATE news_alerts SET delivered = ?, delivery = ? WHERE profile = ? AND topic = ? AND item_id = ?",
                    [delivered, what, alert.profile, alert.topic, alert.item_id])


def alerts_table(lib: Library, profile: str | None = None):
    """Recorded alerts, newest first, with their items' outlet and title."""
    where = "WHERE a.profile = ?" if profile else ""
    return lib.con.execute(
        "SELECT a.created, a.profile, a.topic, a.score, i.outlet, i.title, i.url, a.delivered, a.delivery, a.item_id "
        f"FROM news_alerts a JOIN news_items i USING (item_id) {where} ORDER BY a.created DESC, a.topic, i.title",
        [profile] if profile else []).df()
