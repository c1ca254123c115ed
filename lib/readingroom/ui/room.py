"""What was asked in the room: one log for every session, the facilitator's
view of it, and the session as a handout.

Each session of the app appends one JSON line per answered question to the
room's log (a file in the app's cache; appends of one short line are whole
on POSIX filesystems). Nothing in it says who asked: no session id, no
address, no time finer than the minute.

    log = RoomLog(path)
    log.record(answer)                  # in a session, after each answer
    entries = log.entries()             # the facilitator's view reads them
    summary = room_summary(entries)     # the questions; the passages cited most
    handout_markdown(entries, room="Manifesto, week 3")
    handout_html(entries, room="Manifesto, week 3")

Corpus text and questions are untrusted: the Markdown escapes <, > and &
(viewers pass raw HTML through), the HTML escapes everything, and links
are made only from http(s) URLs.
"""
from __future__ import annotations

import html
import json
import os
import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

LOG_VARIABLE = "READINGROOM_ROOM_LOG"  # how the app's sessions find the room's log
ROOM_VARIABLE = "READINGROOM_ROOM"  # the room's name, shown in each session's header
QUESTIONS_VARIABLE = "READINGROOM_QUESTIONS_PER_MINUTE"  # each reader's limit in the room
MAX_LINE_BYTES = 256_000  # one answer's record; a longer one is cut to its citations
MAX_ENTRIES = 5_000  # a workshop asks far fewer; bounds what the facilitator's page reads


@dataclass
class Cited:
    """One passage an answer cited."""

    n: int
    passage_id: str
    citation: str
    title: str = ""
    author: str = ""
    year: int | None = None
    anchor: str | None = None
    url: str | None = None
    quote: str = ""


@dataclass
class Entry:
    """One answered question, as the room's log keeps it."""

    question: str
    answer: str
    abstained: bool
    model: str | None
    minute: str  # "2026-12-01 14:05": when, to the minute
    cited: list[Cited] = field(default_factory=list)

    @classmethod
    def of(cls, answer) -> "Entry":
        cited = []
        for c in answer.citations:
            hit = answer.passages[c["n"] - 1] if 0 < c["n"] <= len(answer.passages) else None
            cited.append(Cited(
                n=c["n"], passage_id=c["passage_id"], citation=c.get("citation") or "",
                title=getattr(hit, "title", "") or "", author=getattr(hit, "author", "") or "",
                year=getattr(hit, "year", None), anchor=getattr(hit, "anchor", None),
                url=getattr(hit, "url", None), quote=" ".join((c.get("quote") or "").split())))
        return cls(question=answer.question, answer=answer.body, abstained=answer.abstained, model=answer.model,
                   minute=datetime.now().strftime("%Y-%m-%d %H:%M"), cited=cited)

    @classmethod
    def from_dict(cls, data: dict) -> "Entry":
        return cls(question=str(data["question"]), answer=str(data["answer"]), abstained=bool(data["abstained"]),
                   model=data.get("model"), minute=str(data.get("minute", "")),
                   cited=[Cited(**c) for c in data.get("cited", [])])

    def to_dict(self) -> dict:
        return {"question": self.question, "answer": self.answer, "abstained": self.abstained, "model": self.model,
                "minute": self.minute, "cited": [c.__dict__ for c in self.cited]}


class RoomLog:
    def __init__(self, path):
        self.path = Path(path)

    @classmethod
    def from_environment(cls) -> "RoomLog | None":
        path = os.environ.get(LOG_VARIABLE)
        return cls(path) if path else None

    def record(self, answer) -> Entry:
        entry = Entry.of(answer)
        line = json.dumps(entry.to_dict(), ensure_ascii=False)
        if len(line.encode()) > MAX_LINE_BYTES:
            entry.answer = entry.answer[:2000] + " …"
            for c in entry.cited:
                c.quote = c.quote[:300]
            line = json.dumps(entry.to_dict(), ensure_ascii=False)
        # One write of one line with O_APPEND: sessions writing at once do not interleave.
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, (line + "\n").encode())
        finally:
            os.close(fd)
        return entry

    def entries(self) -> list[Entry]:
        """The log's entries, oldest first (a damaged line is skipped, not fatal)."""
        if not self.path.exists():
            return []
        entries = []
        with self.path.open(encoding="utf-8", errors="replace") as f:
            for line in f:
                try:
                    entries.append(Entry.from_dict(json.loads(line)))
                except (ValueError, KeyError, TypeError):
                    continue
                if len(entries) >= MAX_ENTRIES:
                    break
        return entries


@dataclass
class PassageCount:
    passage_id: str
    citation: str
    title: str
    author: str
    times: int


@dataclass
class RoomSummary:
    questions: list[str]  # in the order asked
    answered: int
    abstained: int
    passages: list[PassageCount]  # cited most first


def room_summary(entries: list[Entry], top: int = 10) -> RoomSummary:
    counts: Counter = Counter()
    about: dict[str, Cited] = {}
    for entry in entries:
        for c in {c.passage_id: c for c in entry.cited}.values():  # once per answer
            counts[c.passage_id] += 1
            about.setdefault(c.passage_id, c)
    passages = [PassageCount(pid, about[pid].citation, about[pid].title, about[pid].author, n)
                for pid, n in counts.most_common(top)]
    abstained = sum(e.abstained for e in entries)
    return RoomSummary([e.question for e in entries], len(entries) - abstained, abstained, passages)


# --- the handout -------------------------------------------------------------------------

def _md(text) -> str:
    return html.escape("" if text is None else str(text), quote=False)


def _link(url: str | None) -> str | None:
    return url.strip() if url and re.match(r"^https?://", url.strip(), re.IGNORECASE) else None


def handout_markdown(entries: list[Entry], room: str | None = None) -> str:
    title = f"Reading Room: {room}" if room else "Reading Room"
    lines = [f"# {_md(title)}", "", f"_{len(entries)} questions asked in the room; "
             f"exported {datetime.now().strftime('%Y-%m-%d %H:%M')}. Every answer was checked by the program "
             "against the passages it cites; read the sources._", ""]
    summary = room_summary(entries)
    if summary.passages:
        lines += ["## The passages that came up most", ""]
        lines += [f"- {_md(p.citation)} ({p.times}×)" for p in summary.passages]
        lines.append("")
    for i, entry in enumerate(entries, start=1):
        lines += [f"## {i}. {_md(entry.question)}", "", _md(entry.answer), ""]
        if entry.cited:
            lines += ["**Sources**", ""]
            for c in entry.cited:
                where = f" #{c.anchor}" if c.anchor else ""
                link = _link(c.url)
                # An autolink: its brackets are Markdown's; inside, what could end or break it is encoded.
                url = (" <" + link.replace("<", "%3C").replace(">", "%3E").replace(" ", "%20") + ">") if link else ""
                lines.append(f"- [{c.n}] {_md(c.citation)}{_md(where)}{url}")
                if c.quote:
                    lines.append(f"  > {_md(c.quote)}")
            lines.append("")
    return "\n".join(lines).rstrip() + "\n"


HANDOUT_STYLE = ("body{font-family:Georgia,serif;max-width:46em;margin:2em auto;line-height:1.5;padding:0 1em}"
                 "h2{font-size:1.15em;margin-top:1.6em}blockquote{color:#444;border-left:3px solid #ccc;"
                 "margin:0.3em 0;padding-left:0.8em}.answer{white-space:pre-wrap}.note{color:#666;font-size:0.9em}")


def handout_html(entries: list[Entry], room: str | None = None) -> str:
    e = lambda text: html.escape("" if text is None else str(text), quote=True)  # noqa: E731
    title = f"Reading Room: {room}" if room else "Reading Room"
    parts = [f'<!doctype html><html><head><meta charset="utf-8"><title>{e(title)}</title>'
             f"<style>{HANDOUT_STYLE}</style></head><body><h1>{e(title)}</h1>",
             f'<p class="note">{len(entries)} questions asked in the room; exported '
             f"{e(datetime.now().strftime('%Y-%m-%d %H:%M'))}. Every answer was checked by the program against "
             "the passages it cites; read the sources.</p>"]
    summary = room_summary(entries)
    if summary.passages:
        items = "".join(f"<li>{e(p.citation)} ({p.times}×)</li>" for p in summary.passages)
        parts.append(f"<h2>The passages that came up most</h2><ul>{items}</ul>")
    for i, entry in enumerate(entries, start=1):
        parts.append(f"<h2>{i}. {e(entry.question)}</h2><div class=\"answer\">{e(entry.answer)}</div>")
        if entry.cited:
            items = []
            for c in entry.cited:
                where = f" #{e(c.anchor)}" if c.anchor else ""
                link = _link(c.url)
                url = (f' <a href="{e(link)}" rel="noopener noreferrer">{e(link)}</a>' if link else "")
                quote = f"<blockquote>{e(c.quote)}</blockquote>" if c.quote else ""
                items.append(f"<li>[{c.n}] {e(c.citation)}{where}{url}{quote}</li>")
            parts.append(f"<p><b>Sources</b></p><ul>{''.join(items)}</ul>")
    parts.append("</body></html>")
    return "".join(parts)


def facilitator_html(entries: list[Entry], room: str | None, code: str) -> str:
    """The facilitator's page: the questions (newest first, no names), the
    passages cited most, and the handout's two downloads."""
    e = lambda text: html.escape("" if text is None else str(text), quote=True)  # noqa: E731
    summary = room_summary(entries)
    title = f"Reading Room: {room}" if room else "Reading Room"
    questions = "".join(f"<li>{e(q)}</li>" for q in reversed(summary.questions)) or "<li>none yet</li>"
    passages = "".join(f"<li>{e(p.citation)} <span class=\"note\">({p.times}×)</span></li>"
                       for p in summary.passages) or "<li>none yet</li>"
    key = e(code)
    return (f'<!doctype html><html><head><meta charset="utf-8"><title>{e(title)}: facilitator</title>'
            f'<meta http-equiv="refresh" content="30"><style>{HANDOUT_STYLE}</style></head><body>'
            f"<h1>{e(title)}</h1><p class=\"note\">{summary.answered} answered, {summary.abstained} not "
            "answered from the library. The page refreshes every 30 seconds. Nobody's name is kept.</p>"
            f'<p><a href="handout.md?key={key}" download="reading-room-handout.md">Handout (Markdown)</a> · '
            f'<a href="handout.html?key={key}" download="reading-room-handout.html">Handout (HTML)</a> · '
            f'<a href="join-qr.png?key={key}">The join QR code</a></p>'
            f'<h2>Questions asked, newest first</h2><ol reversed class="rr-room-questions">{questions}</ol>'
            f'<h2>Passages cited most</h2><ol class="rr-room-passages">{passages}</ol></body></html>')
