"""The chat: questions to the library as an ipywidgets widget, in JupyterLab
or, through `readingroom app` (Voila), as a web page.

    from readingroom.ui.chat import Chat
    chat = Chat()        # the default library, read-only; the default model
    chat                 # shows it in a notebook

What a reader sees, for each question:
- the model's text as it is written, marked as not yet checked;
- then, in its place, the checked answer (readingroom.answer: invented
  citations removed, unsupported sentences left out, claims attributed), or
  the statement that the library's sources do not answer;
- under it a card for each passage the model was given: its citation, its
  text, its anchor and link, and the checker's marks: which sentences cited
  it, with their support scores, kept or dropped;
- what the check left out, and why.

Follow-up questions get the conversation's earlier answers as history (the
question is rewritten to stand alone before searching). Filters (author,
years, language, source) and settings (model, passages per answer) apply
to the next question. The conversation can be saved as Markdown with its
citations (`markdown()`, `save_markdown()`, and a download link that works
in JupyterLab and Voila alike, a data: URI).

Safety: passage text, titles, authors and everything a model writes are
HTML-escaped wherever they become HTML (ipywidgets' HTML widget sets
innerHTML: unescaped, a passage holding `<img src=x onerror=...>` would run
in the reader's browser). Links are made only from http(s) URLs.

Responsiveness: each answer runs in a background thread, so the kernel
keeps sending widget updates while the model writes; Send is disabled until
the answer is done. Errors (a model not fetched, the app's generation
service gone) are shown in the chat, not as a traceback.

In the app, the model runs once for all sessions in a generation service
(readingroom.ui.service); the chat finds it through environment
variables and shows "waiting: N ahead of you, about M s" while its request
is queued. There the chat also reads the app's newest copy of the library
(readingroom.ui.snapshot: new passages without a restart, writers never
blocked), records each answer in the room's log for the facilitator
(readingroom.ui.room, no names), and takes at most `questions_per_minute`
questions a minute from its reader.
"""
from __future__ import annotations

import base64
import contextlib
import os
import re
import threading
import time
from collections import deque
from datetime import datetime
from pathlib import Path

import ipywidgets as widgets

from readingroom import deployment  # on Binder, the small generator
from readingroom.answer.anchored import CheckedClaim
from readingroom.answer.check import Sentence
from readingroom.answer.pipeline import MAX_ANSWER_TOKENS, Answer, answer_stream
from readingroom.answer.render import (answer_markdown, body_text, escape_html, escape_markdown,
                                      unknown_names_listed)
from readingroom.models.generate import Generator
from readingroom.library.store import Library, LibraryError, open_library
from readingroom.corpus.language import detect_query_language
from readingroom.messages import language_of, message, translator
from readingroom.models.catalogue import CATALOGUE, DEFAULT_GENERATOR, GENERATOR, ModelError
from readingroom.models.fetch import state
from readingroom.answer.check import MIN_CLAIM_WORDS, SUPPORT_THRESHOLD
from readingroom.ui.room import QUESTIONS_VARIABLE, ROOM_VARIABLE
from readingroom.ui.snapshot import SNAPSHOT_VARIABLE, current_snapshot, snapshot_source

MODEL_VARIABLE = "READINGROOM_GENERATOR"  # the model a chat uses unless told otherwise (tests: the small one)
STREAM_INTERVAL = 0.1  # seconds between updates of the streamed text: each update is a message to the browser
DOWNLOAD_NAME = "reading-room-conversation.md"

STYLE = """<style>
.rr-chat { max-width: 60em; }
.rr-chat .widget-html-content { line-height: 1.45; }
.rr-chat a { color: #1a5fb4; text-decoration: underline; }
.rr-header { color: #555; font-size: 0.9em; }
.rr-turn { border-top: 1px solid #ddd; padding: 0.4em 0; }
.rr-asked { font-weight: 600; margin: 0.2em 0; }
.rr-status { color: #666; font-size: 0.85em; font-style: italic; }
.rr-unchecked { color: #777; border-left: 3px solid #e0b000; padding-left: 0.6em; white-space: pre-wrap; line-height: 1.45; }
.rr-label { font-size: 0.8em; text-transform: uppercase; letter-spacing: 0.05em; color: #a07800; }
.rr-checked { white-space: pre-wrap; line-height: 1.45; border-left: 3px solid #2a7; padding-left: 0.6em; }
.rr-early { line-height: 1.45; border-left: 3px solid #2a7; padding-left: 0.6em; margin-bottom: 0.4em; }
.rr-abstained { border-left-color: #999; color: #444; }
.rr-error { color: #b00; white-space: pre-wrap; border-left: 3px solid #b00; padding-left: 0.6em; }
.rr-note { color: #666; font-size: 0.85em; }
.rr-cite { font-weight: 600; color: #2a7; }
.rr-card { border: 1px solid #ddd; border-radius: 4px; margin: 0.3em 0; padding: 0.2em 0.5em; }
.rr-card > summary { cursor: pointer; }
.rr-card .rr-passage { white-space: pre-wrap; margin: 0.4em 0; padding-left: 0.6em; border-left: 3px solid #ccc; }
.rr-badge { font-size: 0.75em; padding: 0 0.4em; border-radius: 3px; background: #eee; }
.rr-badge.rr-cited { background: #d8f0e2; }
.rr-marks { margin: 0.2em 0; padding-left: 1.2em; font-size: 0.9em; }
.rr-kept { color: #165; }
.rr-dropped { color: #a33; text-decoration: line-through; }
.rr-dropped .rr-why { text-decoration: none; display: inline-block; }
.rr-claims { margin: 0.2em 0; padding-left: 1.2em; }
.rr-claim { margin: 0.3em 0; }
.rr-excerpt { margin: 0.2em 0 0.4em 0; padding-left: 0.6em; border-left: 3px solid #ccc; color: #333; font-size: 0.92em; }
.rr-chat mark.rr-quote { background: #fff0a8; padding: 0 0.1em; }
</style>"""


escape = escape_html  # text made safe to put in HTML, quotes included (it may land in an attribute)


def safe_link(url: str | None, anchor: str | None = None) -> str | None:
    """An http(s) URL (with the anchor), escaped; None for anything else:
    a javascript: or data: URL in a document's metadata must not become a link."""
    if not url or not re.match(r"^https?://", url.strip(), re.IGNORECASE):
        return None
    url = url.strip()
    if anchor and "#" not in url:
        url += "#" + anchor
    return escape(url)


def marked_citations(escaped_text: str) -> str:
    """Escaped answer text with its [n] markers set off."""
    return re.sub(r"\[(\d{1,3})\]", r'<span class="rr-cite">[\1]</span>', escaped_text)


# --- choosing the model ------------------------------------------------------------

def generator_choices(current: str | None = None) -> list[tuple[str, str]]:
    """(label, name) of the catalogue's generators, saying which are not
    fetched, and of the saved LoRA adapters."""
    choices = []
    for name, artifact in CATALOGUE.items():
        if artifact.role != GENERATOR:
            continue
        where = state(artifact)
        label = name if where in ("verified", "fetched, changed since verified") else f"{name} ({where})"
        choices.append((label, name))
    from readingroom.tune.registry import saved  # LoRA adapters saved here (readingroom tune lora), on their base

    choices += [(f"adapter:{name} (LoRA, runs in transformers)", f"adapter:{name}") for name in saved("adapter")]
    if current and current not in [name for _, name in choices]:
        choices.insert(0, (current, current))
    return choices


class _Reporting(Generator):
    """The generator a turn uses, loaded when first needed (a question the
    gate stops needs no model), telling the turn what it is doing: loading,
    waiting in the app's queue, writing, done writing."""

    backend = "chat"

    def __init__(self, load, name: str, report):
        self._load, self.name, self._report = load, name, report
        self.last_usage = None

    def stream(self, messages, **settings):
        self._report("loading")
        generator = self._load()
        watching = getattr(generator, "watching", None)
        with (watching(lambda n, wait=None: self._report("queue", (n, wait))) if watching
              else contextlib.nullcontext()):
            self._report("waiting")
            yield from generator.stream(messages, **settings)
        self.last_usage = getattr(generator, "last_usage", None)
        self._report("written")


def waiting_words(ahead: int, seconds: float | None, language: str = "en") -> str:
    """"waiting: 3 ahead of you, about 2 min", in `language` (no estimate
    before the room's first answer)."""
    if seconds is None:
        return message("status-waiting", language, ahead=ahead)
    if seconds < 60:
        return message("status-waiting-seconds", language, ahead=ahead, seconds=f"{max(5, round(seconds / 5) * 5):.0f}")
    return message("status-waiting-minutes", language, ahead=ahead, minutes=f"{round(seconds / 60):.0f}")


# --- one question and its answer ---------------------------------------------------

class Turn:
    """The widgets of one question: what was asked, a status line, the
    answer (streamed, then checked), the source cards."""

    def __init__(self, question: str, anchored: bool = False, language: str = "en"):
        self.question = question
        self.anchored = anchored
        # What the status lines speak until the answer says the question's
        # language: the page's, then the question's once it is detected.
        self.language = language
        self.claims: list[CheckedClaim] = []  # anchored: the claims checked so far
        self.checked: list[Sentence] = []  # plain: the claims checked and kept while the model writes
        self.asked = widgets.HTML(f'<div class="rr-asked">{escape(question)}</div>')
        self.status = widgets.HTML()
        self.answer = widgets.HTML()
        self.sources = widgets.HTML()
        self.box = widgets.VBox([self.asked, self.status, self.answer, self.sources])
        self.box.add_class("rr-turn")
        self.status.add_class("rr-status-line")
        self.answer.add_class("rr-answer")
        self.sources.add_class("rr-sources")
        self.pieces: list[str] = []
        self._shown = 0.0
        self.result: Answer | None = None
        self.error: str | None = None

    def say(self, text: str) -> None:
        self.status.value = f'<div class="rr-status">{escape(text)}</div>' if text else ""

    def status_line(self, key: str, **fields) -> None:
        """A status line from the catalogue, in the turn's language."""
        self.say(message(key, self.language, **fields))

    def add(self, piece: str) -> None:
        """A piece of the model's text: shown, marked unchecked, a few times a second."""
        self.pieces.append(piece)
        if time.monotonic() - self._shown >= STREAM_INTERVAL:
            self.show_draft()

    def add_claim(self, claim: CheckedClaim) -> None:
        """An anchored claim, just checked: the kept ones shown at once."""
        self.claims.append(claim)
        self.show_draft()

    def add_checked(self, sentence: Sentence) -> None:
        """A claim of the plain answer, checked and kept while the model still writes."""
        self.checked.append(sentence)
        self.show_draft()

    def show_draft(self) -> None:
        self._shown = time.monotonic()
        if self.anchored:  # the model's JSON means nothing to a reader: the claims checked so far instead
            self.answer.value = claims_so_far_html(self.claims, self.language)
            return
        early = ""
        if self.checked:  # what is already checked, above the draft it came from
            sentences = " ".join(marked_citations(escape(s.final)) for s in self.checked)
            early = (f'<div class="rr-early"><div class="rr-label">'
                     f'{escape(message("checked-so-far", self.language))}</div>{sentences}</div>')
        self.answer.value = (f'{early}<div class="rr-unchecked"><div class="rr-label">'
                             f'{escape(message("draft-writing", self.language))}</div>'
                             f'{escape("".join(self.pieces))}</div>')

    def show(self, result: Answer) -> None:
        """The checked answer in place of the draft, and the source cards."""
        self.result = result
        self.answer.value = answer_html(result)
        self.sources.value = cards_html(result)
        say = translator(result.language)  # the question's language
        seconds = say("seconds", seconds=f"{result.seconds:.0f}") if result.seconds >= 1 else say("under-a-second")
        unknown = unknown_names_listed(result)
        if result.abstained and unknown:  # refused for a name, not for the passages
            self.say(say("status-not-answered-names", names=unknown, seconds=seconds))
        elif result.abstained:
            self.say(say("status-not-answered", seconds=seconds))
        elif result.model:
            self.say(say("status-checked-by", model=result.model, seconds=seconds))
        else:
            self.say(say("status-checked", seconds=seconds))

    def fail(self, message: str) -> None:
        self.error = message
        draft = ""
        if self.pieces:
            draft = (f'<div class="rr-unchecked"><div class="rr-label">'
                     f'{escape(message("draft-unfinished", self.language))}</div>'
                     f'{escape("".join(self.pieces))}</div>')
        self.answer.value = f'<div class="rr-error">{escape(message)}</div>{draft}'
        self.say("")


def answer_html(result: Answer) -> str:
    if result.anchored:
        return anchored_answer_html(result)
    kind = "rr-checked rr-abstained" if result.abstained else "rr-checked"
    parts = [f'<div class="{kind}">{marked_citations(escape(body_text(result)))}</div>']
    say = translator(result.language)  # the notes speak the question's language
    notes = []
    dropped = [s for s in result.sentences if s.kind == "claim" and not s.final]
    kept = [s for s in result.sentences if s.final]
    if result.raw:
        notes.append(say("note-sentences-kept", kept=len(kept), dropped=len(dropped)))
        if result.judge:
            notes.append(say("note-meaning-judged", judge=result.judge))
    else:
        notes.append(not_asked_note(result))
    if result.invented_citations:
        notes.append(say("note-invented-removed", numbers=", ".join(f"[{n}]" for n in result.invented_citations)))
    if result.rewrite != "none" or result.crosslingual is not None:
        notes.append(say("note-searched-for", question=result.rewritten_question))
    if result.crosslingual is not None:
        notes.append(say("translated-by", model=result.model or "the model"))
    parts.append(f'<div class="rr-note">{escape("; ".join(notes))}</div>')
    items = [f'<li class="rr-dropped">{escape(s.text)} <span class="rr-why">({escape(why_dropped(s))})</span></li>'
             for s in dropped]
    return ("".join(parts) + withheld_html(result.crosslingual, result.language)
            + left_out_html(items, result.raw, result.language))


def not_asked_note(result: Answer) -> str:
    """Why the gate asked no model: the names the library never mentions,
    or no passage close enough."""
    unknown = unknown_names_listed(result)
    if unknown:
        return message("note-not-asked-names", result.language, names=unknown)
    return message("note-not-asked", result.language)


def withheld_html(crosslingual, language: str | None = None) -> str:
    """The translations the back-check withheld, folded away: each with what
    it said when translated back and the judge's probability, so that the
    reader can see why the checked sentence stands alone."""
    withheld = crosslingual.withheld if crosslingual is not None else []
    if not withheld:
        return ""
    items = []
    for s in withheld:
        back = f"“{s.back_translation}”" if s.back_translation is not None else "refused by the translator"
        support = f", support {s.back_probability:.2f}" if s.back_probability is not None else ""
        if s.reverse_probability is not None:
            support += f", reverse {s.reverse_probability:.2f}"
        items.append(f'<li class="rr-dropped">{escape(s.translation or "")} <span class="rr-why">'
                     f'(translated back: {escape(back)}{escape(support)})</span></li>')
    summary = message("summary-withheld", language, count=len(items))
    return (f'<details class="rr-withheld"><summary>{escape(summary)}</summary>'
            f'<ul class="rr-marks">{"".join(items)}</ul></details>')


def left_out_html(items: list[str], raw: str, language: str | None = None) -> str:
    """What the check left out (list items, already escaped) and the model's
    own text, each folded away under its summary (in `language`)."""
    parts = []
    if items:
        summary = message("summary-left-out", language, count=len(items))
        parts.append(f'<details class="rr-left-out"><summary>{escape(summary)}</summary>'
                     f'<ul class="rr-marks">{"".join(items)}</ul></details>')
    if raw:
        summary = message("summary-raw", language)
        parts.append(f'<details class="rr-raw"><summary>{escape(summary)}</summary>'
                     f'<div class="rr-unchecked">{escape(raw)}</div></details>')
    return "".join(parts)


def why_dropped(sentence) -> str:
    if sentence.repeats:
        return "says again what an earlier sentence says"
    if sentence.misattributed:
        return (f"names {sentence.misattributed} as the speaker, but the passage it cites is not by "
                f"{sentence.misattributed} and does not name them")
    if sentence.meaning_doubted:
        return (f"the words match (support {sentence.support:.2f}), but the judge did not find the claim "
                f"in the passage ({sentence.meaning:.2f})")
    if not sentence.valid:
        if sentence.invalid:
            return "cites only passages it was not given: " + ", ".join(f"[{n}]" for n in sentence.invalid)
        return "cites no passage"
    if sentence.words < MIN_CLAIM_WORDS:
        return f"too short to be a claim (support {sentence.support:.2f})"
    return f"support {sentence.support:.2f}, below {SUPPORT_THRESHOLD:.2f}"


def cards_html(result: Answer) -> str:
    """A card for each passage the model was given (or, when the gate
    stopped the question, the closest ones): closed, a click opens it."""
    if not result.passages:
        return ""
    cited = {c["n"] for c in result.citations}
    say = translator(result.language)  # the question's language
    quoted = {c["n"]: [q["span"] for q in c.get("quotes", [])] for c in result.citations}
    heading = say("closest-passages") if result.abstained else say("sources-given")
    cards = [f'<div class="rr-note">{escape(heading)}:</div>']
    for n, hit in enumerate(result.passages, start=1):
        if result.abstained:
            badge = f'<span class="rr-badge">{escape(say("badge-closest"))}</span>'
        elif n in cited:
            badge = f'<span class="rr-badge rr-cited">{escape(say("badge-cited"))}</span>'
        else:
            badge = f'<span class="rr-badge">{escape(say("badge-not-cited"))}</span>'
        about = ", ".join(escape(x) for x in (hit.author, hit.title, hit.year, hit.source) if x)
        where = f' <span class="rr-anchor">#{escape(hit.anchor)}</span>' if hit.anchor else ""
        link = safe_link(hit.url, hit.anchor)
        link_html = (f' · <a href="{link}" target="_blank" rel="noopener noreferrer">{escape(say("open-source"))}</a>'
                     if link else "")
        marks = [claim_mark(c) for c in result.claims if c.passage == n]
        for s in result.sentences:
            if n not in s.valid:
                continue
            if s.final:
                marks.append(f'<li class="rr-kept">✓ kept, support {s.support:.2f}: {escape(s.final)}</li>')
            else:
                marks.append(f'<li class="rr-dropped">✗ {escape(s.text)} <span class="rr-why">'
                             f'(dropped: {escape(why_dropped(s))})</span></li>')
        marks_html = (f'<div class="rr-note">Sentences of the answer that cite it:</div>'
                      f'<ul class="rr-marks">{"".join(marks)}</ul>') if marks else ""
        cards.append(
            f'<details class="rr-card" data-n="{n}"><summary><b>[{n}]</b> {escape(hit.citation or hit.title)} '
            f'{badge}</summary><div class="rr-note">{about}{where}{link_html}</div>'
            f'<div class="rr-passage">{highlighted(hit.text, quoted.get(n, []))}</div>{marks_html}</details>')
    return "".join(cards)


# --- anchored answers: each claim with its quote marked in its passage ------------------

EXCERPT_CHARS = 200  # of the passage shown on each side of a claim's quote


def highlighted(text: str, spans, start: int = 0, end: int | None = None) -> str:
    """text[start:end], escaped, with the spans (passage offsets) in <mark>.
    Each piece is escaped on its own, so a mark never cuts an entity."""
    end = len(text) if end is None else end
    parts, at = [], start
    for left, right in sorted(spans):
        left, right = max(left, at), min(right, end)
        if right <= left:
            continue
        parts += [escape(text[at:left]), f'<mark class="rr-quote">{escape(text[left:right])}</mark>']
        at = right
    parts.append(escape(text[at:end]))
    return "".join(parts)


def excerpt_html(text: str, span) -> str:
    """The passage around a quote, the quote marked, cut at spaces."""
    left, right = max(span.start - EXCERPT_CHARS, 0), min(span.end + EXCERPT_CHARS, len(text))
    if left > 0:
        cut = text.find(" ", left, span.start)
        left = cut + 1 if cut >= 0 else left
    if right < len(text):
        cut = text.rfind(" ", span.end, right)
        right = cut if cut > span.end else right
    return (("… " if left > 0 else "") + highlighted(text, [(span.start, span.end)], left, right)
            + (" …" if right < len(text) else ""))


def claim_html(claim: CheckedClaim, hit) -> str:
    """A kept claim, its [n], and its quote marked in the passage's words."""
    return (f'<li class="rr-claim rr-kept" data-n="{claim.passage}">{escape(claim.text)} '
            f'<span class="rr-cite">[{claim.passage}]</span> <span class="rr-note">support {claim.support:.2f}'
            f'</span><div class="rr-excerpt">{excerpt_html(hit.text, claim.span)}</div></li>')


def claim_mark(claim: CheckedClaim) -> str:
    if claim.kept:
        return f'<li class="rr-kept">✓ kept, support {claim.support:.2f}: {escape(claim.text)}</li>'
    return (f'<li class="rr-dropped">✗ {escape(claim.text)} <span class="rr-why">(left out: '
            f'{escape(claim.reason)})</span></li>')


def claims_so_far_html(claims: list[CheckedClaim], language: str | None = None) -> str:
    kept = [c for c in claims if c.kept]
    lines = "".join(f'<li class="rr-claim rr-kept">{escape(c.text)} <span class="rr-cite">[{c.passage}]</span> '
                    f'<span class="rr-excerpt">“<mark class="rr-quote">{escape(c.quote)}</mark>”</span></li>'
                    for c in kept)
    note = message("note-claims-so-far", language, kept=len(kept), dropped=len(claims) - len(kept))
    return (f'<div class="rr-unchecked"><div class="rr-label">{escape(note)}</div>'
            f'<ul class="rr-claims">{lines}</ul></div>')


def anchored_answer_html(result: Answer) -> str:
    """The checked claims, each with its quote marked in its passage; or
    the abstention; then what the check left out and why."""
    if result.abstained:
        parts = [f'<div class="rr-checked rr-abstained">{marked_citations(escape(body_text(result)))}</div>']
    else:
        items = "".join(claim_html(c, result.passages[c.passage - 1]) for c in result.kept_claims)
        parts = [f'<div class="rr-checked rr-anchored"><ul class="rr-claims">{items}</ul></div>']
    dropped = result.dropped_claims
    if result.raw:
        note = message("note-claims-kept", result.language, kept=len(result.kept_claims), dropped=len(dropped),
                       judge=result.judge)
        if result.abstained and result.kept_claims:
            note += "; " + message("note-kept-off-topic", result.language)
    else:
        note = not_asked_note(result)
    parts.append(f'<div class="rr-note">{escape(note)}</div>')
    return "".join(parts) + left_out_html([claim_mark(c) for c in dropped], result.raw, result.language)


# --- the conversation as Markdown ---------------------------------------------------

def conversation_markdown(answers: list[Answer], library: str | None = None) -> str:
    lines = ["# A conversation with the library", ""]
    about = [f"exported {datetime.now().strftime('%Y-%m-%d %H:%M')}"]
    if library:
        about.insert(0, f"library: {library}")
    models_used = sorted({a.model for a in answers if a.model})
    if models_used:
        about.append("model: " + ", ".join(models_used))
    lines += ["_" + escape_markdown("; ".join(about)) + "_", "",
              "Answers were checked by the program: every claim cites a passage it was given and shares enough "
              "of its words and meaning to count as supported. Overlap is not proof: read the sources.", ""]
    for i, a in enumerate(answers, start=1):
        lines += [f"## {i}. {escape_markdown(a.question)}", ""]
        if a.rewrite != "none":
            lines += [f"_searched for: {escape_markdown(a.rewritten_question)}_", ""]
        lines += answer_markdown(a)
    return "\n".join(lines).rstrip() + "\n"


def data_link(data: bytes, filename: str, mime: str, label: str, css_class: str = "rr-download") -> str:
    """An <a download> with the file in a data: URI: works in JupyterLab
    and in Voila, where the kernel's files cannot be reached."""
    encoded = base64.b64encode(data).decode("ascii")
    return (f'<a class="{escape(css_class)}" download="{escape(filename)}" '
            f'href="data:{escape(mime)};base64,{encoded}">{escape(label)}</a>')


def download_link(markdown: str, filename: str = DOWNLOAD_NAME, language: str | None = None) -> str:
    """The conversation's Markdown as a download link (data_link), labelled in `language`."""
    return data_link(markdown.encode("utf-8"), filename, "text/markdown;charset=utf-8",
                     message("download-conversation", language))


class SearchFilters:
    """The filter widgets (author, years, language, source) for a library's
    documents, and the search Filters they set: the chat's, and the Study
    tab's own; labelled in `language` (the catalogue's; None: English)."""

    def __init__(self, docs, language: str | None = None, passage_languages: list[str] | None = None):
        authors = sorted({a for names in docs.authors for a in names}) if docs else []
        # The passages' languages where known (a German passage in an English
        # document is filtered by its own: search.index.SearchIndex.mask).
        languages = passage_languages if passage_languages is not None else \
            sorted({x for x in docs.languages.tolist() if x}) if docs else []
        sources = sorted({x for x in docs.sources.tolist() if x}) if docs else []
        years = [int(y) for y in docs.years.tolist() if y == y] if docs else []  # y == y: not NaN

        self.author = widgets.Dropdown(options=[("", "")] + [(a, a) for a in authors])
        self.language = widgets.Dropdown(options=[("", "")] + [(x, x) for x in languages])
        self.source = widgets.Dropdown(options=[("", "")] + [(x, x) for x in sources])
        low, high = (min(years), max(years)) if years else (0, 0)
        self.years = widgets.IntRangeSlider(value=(low, high), min=low, max=high, continuous_update=False,
                                            layout=widgets.Layout(display="flex" if years else "none"))
        self.all_years = (low, high)
        self.widgets = (self.author, self.years, self.language, self.source)
        for w in self.widgets:
            w.add_class("rr-filter")
        self.set_language(language)

    def set_language(self, language: str | None) -> None:
        """Label the filters in `language`: each "any ..." choice and each description."""
        say = translator(language)
        for w, what in ((self.author, "author"), (self.language, "language"), (self.source, "source")):
            value = w.value
            w.options = [(say(f"any-{what}"), "")] + list(w.options[1:])
            w.value = value
            w.description = say(f"filter-{what}")
        self.years.description = say("filter-years")

    def filters(self):
        """The search filters set in the widgets."""
        from readingroom.search.searcher import Filters

        low, high = self.years.value
        if (low, high) == tuple(self.all_years):
            low = high = None
        return Filters.of(author=self.author.value or None, year_from=low, year_to=high,
                          language=self.language.value or None, source=self.source.value or None)

    def observe(self, handler) -> None:
        for w in self.widgets:
            w.observe(handler, names="value")


# --- the widget -------------------------------------------------------------------------

def _quiet_loading(library):
    """No progress bar from transformers while the library's embedder loads:
    in a notebook it is a widget of its own, above the chat, in the app too.
    transformers is imported only when the library has vectors to need it."""
    if library.embedding_models().empty:
        return contextlib.nullcontext()
    from readingroom.models.quiet import quiet_transformers

    return quiet_transformers()


class Chat(widgets.VBox):
    """Questions to a library, answered from its passages with checked
    citations. `library`: a Library, a path, or None for the default one
    (opened read-only: many kernels can read one file, in the app each
    session has its own); `generator`: a generate.Generator to use (by
    default the app's generation service when there is one, else the model
    chosen in the settings, `model` or $READINGROOM_GENERATOR or the default
    model, loaded at the first question); `k`: passages per answer;
    `anchored`: answers as quote-anchored claims (the option's first
    value); `judge`: their judge, an EntailmentJudge or a model's name
    (default: $READINGROOM_JUDGE, else the answering model)."""

    def __init__(self, library=None, *, generator: Generator | None = None, model: str | None = None,
                 k: int = 5, max_tokens: int = MAX_ANSWER_TOKENS, questions_per_minute: int | None = None,
                 room_log=None, anchored: bool = False, judge=None, shared=None, language: str | None = None):
        from readingroom.ui.room import RoomLog

        # `shared`: a readingroom.ui.shared_search.SharedSearch, the one index of
        # a process serving many sessions (the app under Solara); this session
        # gets its own connection to the library's newest copy from it.
        self.shared = shared

        self.answers: list[Answer] = []
        self.snapshot_pointer = os.environ.get(SNAPSHOT_VARIABLE) if library is None else None
        if questions_per_minute is None and os.environ.get(QUESTIONS_VARIABLE):
            questions_per_minute = int(os.environ[QUESTIONS_VARIABLE])
        self.questions_per_minute = questions_per_minute
        self.asked_at: deque[float] = deque()
        self.room_log = room_log if room_log is not None else RoomLog.from_environment()
        self.turns: list[Turn] = []
        self.thread: threading.Thread | None = None
        self.max_tokens = max_tokens
        self.judge = judge
        self.problem: str | None = None  # why the chat cannot answer at all, when it cannot
        self.library: Library | None = None
        self.searcher = None

        if generator is None:
            from readingroom.ui.service import RemoteGenerator

            generator = RemoteGenerator.from_environment()
        self.generator = generator
        self.shared_model = generator is not None and getattr(generator, "backend", "") == "service"
        model = model or os.environ.get(MODEL_VARIABLE) or deployment.current().generator or DEFAULT_GENERATOR

        # The page's own labels come before any question: in the page's
        # language (the reader's browser's, ui.intro), else the catalogue's English.
        self.page_language = language
        self.header = widgets.HTML()
        self.header.add_class("rr-header")
        self.conversation = widgets.VBox()
        self.conversation.add_class("rr-conversation")
        self.question = widgets.Textarea(layout=widgets.Layout(width="100%", height="4.5em"))
        self.question.add_class("rr-question")
        self.send_button = widgets.Button(button_style="primary", icon="paper-plane")
        self.send_button.add_class("rr-send")
        self.new_button = widgets.Button(icon="eraser", layout=widgets.Layout(width="auto"))
        self.new_button.add_class("rr-new")
        self.export_link = widgets.HTML()
        self.export_link.add_class("rr-export")
        self.notice = widgets.HTML()
        self.notice.add_class("rr-notice")

        self._open(library)
        self._build_settings(model, k, anchored)
        self.send_button.on_click(self._on_send)
        self.new_button.on_click(self._on_new)
        self._update_export()

        self.filters_and_settings = widgets.Accordion(children=[widgets.VBox([self.filter_box, self.settings_box])])
        self.filters_and_settings.add_class("rr-settings")
        super().__init__([widgets.HTML(STYLE), self.header, self.conversation,
                          widgets.HBox([self.question, self.send_button], layout=widgets.Layout(width="100%")),
                          self.notice, self.filters_and_settings, widgets.HBox([self.new_button, self.export_link])])
        self.add_class("rr-chat")
        self.set_language(language)  # the labels, and the header with what went wrong, if anything did
        if self.problem:
            self.send_button.disabled = True

    # --- set-up ------------------------------------------------------------------
    def _open(self, library) -> None:
        from readingroom.search.searcher import searcher_for

        try:
            if self.shared is not None:
                self.library, self.searcher = self.shared.open()
                self._describe()  # warmed up once for the process, by the SharedSearch
                return
            if isinstance(library, Library):
                self.library = library
            elif self.snapshot_pointer:
                self.library = open_library(current_snapshot(self.snapshot_pointer), read_only=True)
            else:
                self.library = open_library(library, read_only=True)
            with _quiet_loading(self.library):
                self.searcher = searcher_for(self.library)
        except (LibraryError, ModelError, OSError) as e:
            self.problem = str(e)
            return
        self._warm_up()
        self._describe()

    def set_language(self, language: str | None) -> None:
        """Speak `language` (the catalogue's; None: English) before any
        question: the header, the labels, the filters and settings. Answers
        speak their question's language, whatever this is. Called again
        under Voila, whose page learns its reader's language only after the
        chat is made (ui.intro.page_language)."""
        self.page_language = language
        say = translator(language)
        self.question.placeholder = say("ask-placeholder")
        self.send_button.description = say("answering") if self.busy else say("send")
        self.send_button.tooltip = say("send-tooltip")
        self.new_button.description = say("new-conversation")
        self.new_button.tooltip = say("new-conversation-tooltip")
        self.filters_and_settings.titles = (say("filters-and-settings"),)
        self.search_filters.set_language(language)
        self.filter_box.children[0].value = f"<b>{escape(say('search-only-in'))}</b> {escape(say('years-note'))}"
        self.settings_box.children[0].value = f"<b>{escape(say('settings'))}</b>"
        if self.shared_model:
            name = self.model_choice.value
            self.model_choice.options = [(say("shared-model", model=name), name)]
            self.model_choice.value = name
        self.model_choice.description = say("setting-model")
        self.passages.description = say("setting-passages")
        self.passages.tooltip = say("setting-passages-tooltip")
        self.anchored.description = say("setting-anchored")
        self.anchored.tooltip = say("setting-anchored-tooltip")
        self._describe()
        self._update_export()

    def _describe(self) -> None:
        say = translator(self.page_language)
        if self.searcher is None:  # the library could not be opened (self.problem says why)
            problem = say("library-cannot-open", error=self.problem or "")
            self.header.value = f'<div class="rr-error">{escape(problem)}</div>'
            return
        index = self.searcher.index
        how = say("search-by-both") if index.embedder is not None else say("search-by-words")
        documents = len(index.docs.doc_ids)
        room = os.environ.get(ROOM_VARIABLE) if self.snapshot_pointer else None
        where = say("room-library", room=room) if room else self.library_name
        self.header.value = (f"<div><b>{escape(say('chat-header-ask'))}</b> "
                             + escape(say("chat-header", documents=f"{documents:,}", passages=f"{len(index):,}",
                                          where=where, how=how)) + "</div>")
        if self.problem:  # the library opened; the model is what is missing
            self.header.value += f'<div class="rr-error">{escape(self.problem)}</div>'


    @property
    def library_name(self) -> str:
        if self.snapshot_pointer:  # a copy in the app's cache: the original's name means something
            return snapshot_source(self.snapshot_pointer).name
        return self.library.path.name if self.library else "the library"

    def _follow_snapshot(self, turn: "Turn") -> None:
        """In the app: when the library has changed since this session
        opened its copy, move to the newest copy (new passages without a
        restart). Called in the answer's thread, before searching."""
        if not self.snapshot_pointer or self.library is None:
            return
        if self.shared is not None:
            if self.shared.is_current(self.library):
                return
            turn.status_line("status-new-passages")
            library, searcher = self.shared.open()
        else:
            newest = current_snapshot(self.snapshot_pointer)
            if newest == self.library.path:
                return
            from readingroom.search.searcher import searcher_for

            turn.status_line("status-new-passages")
            library = open_library(newest, read_only=True)
            with _quiet_loading(library):
                searcher = searcher_for(library)
        old, self.library, self.searcher = self.library, library, searcher
        old.close()
        self._describe()

    def _warm_up(self) -> None:
        """Load now what the first question would otherwise wait for: the
        question-language detector (a model per language) and the
        embedder's first call. A page opens a second or two later; the
        first answer comes that much sooner."""
        from readingroom.answer.prompt import question_language

        index = self.searcher.index
        question_language("What does the library say about this?", {x for x in index.docs.languages.tolist() if x})
        if index.embedder is not None:
            index.embedder.encode_query("What does the library say about this?")

    def _build_settings(self, model: str, k: int, anchored: bool = False) -> None:
        index = self.searcher.index if self.searcher else None
        self.search_filters = SearchFilters(index.docs if index else None,
                                            passage_languages=index.languages() if index else None)
        self.author, self.years = self.search_filters.author, self.search_filters.years
        self.language, self.source = self.search_filters.language, self.search_filters.source
        self.all_years = self.search_filters.all_years
        self.filter_box = widgets.VBox([widgets.HTML(), self.author, self.years, self.language, self.source])

        if self.shared_model:
            try:
                name = self.generator.name
            except ModelError as e:
                name = "unavailable"
                self.problem = str(e)
            choices = [(name, name)]  # labelled "(the app's model, shared by everyone)" by set_language
        else:
            current = getattr(self.generator, "name", None) or model
            choices = generator_choices(current)
            if current not in [c[1] for c in choices]:
                choices.insert(0, (current, current))
            name = current
        self.model_choice = widgets.Dropdown(options=choices, value=name, disabled=self.shared_model,
                                             layout=widgets.Layout(width="32em"))
        self.passages = widgets.IntSlider(value=k, min=1, max=10)
        self.anchored = widgets.Checkbox(value=anchored, indent=False)
        self.model_choice.add_class("rr-model")
        self.passages.add_class("rr-k")
        self.anchored.add_class("rr-anchored-option")
        self.settings_box = widgets.VBox([widgets.HTML(), self.model_choice, self.passages, self.anchored])

    # --- what the widgets say --------------------------------------------------------
    def filters(self):
        """The search filters set in the widgets."""
        return self.search_filters.filters()

    @property
    def busy(self) -> bool:
        return self.thread is not None and self.thread.is_alive()

    def ask(self, question: str) -> Turn | None:
        """Ask as if typed and sent; returns the new turn (None if busy or empty)."""
        self.question.value = question
        before = len(self.turns)
        self.send_button.click()
        return self.turns[-1] if len(self.turns) > before else None

    def wait(self, timeout: float | None = None) -> None:
        """Until the answer being written is done (for scripts and tests)."""
        if self.thread is not None:
            self.thread.join(timeout)

    def markdown(self) -> str:
        """The conversation so far as Markdown, with each answer's citations."""
        return conversation_markdown(self.answers, self.library_name if self.library else None)

    def save_markdown(self, path) -> Path:
        path = Path(path)
        path.write_text(self.markdown(), encoding="utf-8")
        return path

    def _update_export(self) -> None:
        self.export_link.value = download_link(self.markdown(), language=self.page_language) if self.answers else ""

    def _set_busy(self, busy: bool) -> None:
        self.send_button.disabled = busy or bool(self.problem)
        self.new_button.disabled = busy
        self.model_choice.disabled = busy or self.shared_model
        say = translator(self.page_language)
        self.send_button.description = say("answering") if busy else say("send")

    # --- handlers --------------------------------------------------------------------
    def too_many_questions(self) -> float | None:
        """Seconds to wait when this reader has asked their questions for
        the minute (the room shares one model); None when they may ask."""
        if not self.questions_per_minute:
            return None
        now = time.monotonic()
        while self.asked_at and now - self.asked_at[0] >= 60:
            self.asked_at.popleft()
        if len(self.asked_at) < self.questions_per_minute:
            return None
        return 60 - (now - self.asked_at[0])

    def _on_send(self, _button=None) -> None:
        question = self.question.value.strip()
        if not question or self.busy or self.problem:
            return
        wait = self.too_many_questions()
        if wait is not None:
            n = self.questions_per_minute
            words = message("question-limit", self.page_language, n=n, seconds=max(1, round(wait)))
            self.notice.value = f'<div class="rr-note rr-limit">{escape(words)}</div>'
            return
        self.notice.value = ""
        self.asked_at.append(time.monotonic())
        self.question.value = ""
        turn = Turn(question, anchored=self.anchored.value, language=language_of(self.page_language))
        self.turns.append(turn)
        self.conversation.children = (*self.conversation.children, turn.box)
        turn.status_line("status-searching")
        self._set_busy(True)
        # Read the widgets here, in the kernel's thread; the worker only writes.
        job = dict(filters=self.filters(), k=self.passages.value, model=self.model_choice.value,
                   history=list(self.answers), anchored=self.anchored.value)
        self.thread = threading.Thread(target=self._answer, args=(turn, job), name="readingroom-chat", daemon=True)
        self.thread.start()

    def _on_new(self, _button=None) -> None:
        if self.busy:
            return
        self.answers.clear()
        self.turns.clear()
        self.conversation.children = ()
        self._update_export()

    def _generator_for(self, name: str):
        if self.generator is not None and (self.shared_model or getattr(self.generator, "name", None) == name):
            return self.generator
        from readingroom.models.generate import load_generator

        return load_generator(name)  # loaded once per kernel and kept

    def _answer(self, turn: Turn, job: dict) -> None:
        def report(what, n=None):
            if what == "loading" and not self.shared_model:
                turn.status_line("status-loading-model", model=job["model"])
            elif what == "queue" and n and n[0]:
                turn.say(waiting_words(*n, language=turn.language))
            elif what == "waiting":
                turn.status_line("status-reading")
            elif what == "written" and turn.pieces:  # not after a follow-up's rewrite, which shows nothing
                turn.show_draft()
                turn.status_line("status-checking")
            elif what == "written":
                turn.status_line("status-searching")

        generator = _Reporting(lambda: self._generator_for(job["model"]), job["model"], report)
        try:
            turn.language = language_of(detect_query_language(turn.question) or self.page_language)
            self._follow_snapshot(turn)
            result = None
            anchored = job.get("anchored", False)
            for item in answer_stream(self.searcher, turn.question, generator=generator, k=job["k"],
                                      filters=job["filters"], history=job["history"], anchored=anchored,
                                      judge=self.judge, max_tokens=None if anchored else self.max_tokens):
                if isinstance(item, Answer):
                    result = item
                elif isinstance(item, CheckedClaim):
                    turn.add_claim(item)
                elif isinstance(item, Sentence):
                    turn.add_checked(item)
                else:
                    if not turn.pieces:
                        turn.status_line("status-writing")
                    turn.add(item)
            turn.show(result)
            self.answers.append(result)
            if self.room_log is not None:
                try:
                    self.room_log.record(result)
                except OSError:
                    pass  # the facilitator's log is a convenience: the reader's answer stands
        except (ModelError, LibraryError, ValueError, LookupError, OSError) as e:
            turn.fail(str(e))
        except Exception as e:  # shown in the chat: a traceback means nothing to a workshop's readers
            turn.fail(message("went-wrong", turn.language, error=f"{type(e).__name__}: {e}"))
        finally:
            self._update_export()
            self._set_busy(False)


__all__ = ["Chat", "SearchFilters", "conversation_markdown", "data_link", "download_link", "cards_html", "answer_html"]
