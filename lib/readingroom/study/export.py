"""Aids as files a facilitator hands out: Markdown, HTML ready to print
(the browser's "print to PDF" makes the PDF), an Anki deck of flashcards
(genanki) and CSV for quizzes.

Everything that comes from the corpus or the model is escaped where it
lands: html.escape in HTML and in Anki fields (which are HTML); in Markdown
every character that could start markup (emphasis, links, images, raw
HTML, autolinks, tables) is backslash-escaped and "://" broken, so a
passage cannot add a link or an image; in CSV, html.escape as well (the
quiz tools that import CSV, Anki's among them, read fields as HTML) and a
leading = + - @ is quoted so a spreadsheet does not run it as a formula.
"""
from __future__ import annotations

import base64
import csv
import hashlib
import html
import io
import re
from pathlib import Path

_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()<>#+!|~&$^])")


def md(text: str) -> str:
    """Corpus or model text as inert Markdown, on one line."""
    text = " ".join(str(text).split())
    text = _MARKDOWN_SPECIAL.sub(r"\\\1", text)
    text = text.replace("://", ":\\/\\/").replace("www.", "www\\.")
    return re.sub(r"^([-=]|\d+\.)", r"\\\1", text)


def e(text: str) -> str:
    return html.escape(" ".join(str(text).split()), quote=True)


def _where(aid, n: int) -> str:
    p = aid.material.passage(n)
    return p.citation + (f" #{p.anchor}" if p.anchor else "")


def _intro(aid) -> str:
    material = aid.material
    cut = f" (the first {len(material.passages)}; {material.cut} more left out)" if material.cut else ""
    return (f"Made from {len(material.passages)} passages{cut} with {aid.model}. Every item's quote was "
            f"found word for word in its passage and its statements checked against it by the model "
            f"as judge; {aid.drafted - len(aid.items)} of {aid.drafted} drafted items were left out.")


NOTHING_KEPT = "No item survived the check."


def _groups(aid):
    groups: list[tuple[str, list]] = []
    for item in aid.items:
        if not groups or groups[-1][0] != item.group:
            groups.append((item.group, []))
        groups[-1][1].append(item)
    return groups


# --- Markdown ------------------------------------------------------------------------

def to_markdown(aid) -> str:
    out = [f"# {md(aid.title)}", "", f"_{md(_intro(aid))}_", ""]
    if not aid.items:
        out += [NOTHING_KEPT, ""]
    for group, items in _groups(aid):
        if group:
            out += [f"## {md(group)}", ""]
        for item in items:
            rows = item.rows()
            label, text = rows[0]
            out.append(f"- **{md(label)}:** {md(text)} \\[{item.quote.n}\\]")
            for label, text in rows[1:]:
                out.append(f"  - *{md(label)}:* {md(text)}")
            for quote in item.quotes():
                out.append(f"  > “{md(quote.text)}” \\[{quote.n}\\]")
            for use in getattr(item, "elsewhere", ()):
                out.append(f"  - *elsewhere:* … {md(use.left)} **{md(use.match)}** {md(use.right)} … "
                           f"({md(use.citation)})")
        out.append("")
    if aid.read_aloud:
        out += ["## Key passages to read aloud", ""]
        for quote in aid.read_aloud:
            out += [f"> {md(quote.text)}", ">", f"> — \\[{quote.n}\\] {md(_where(aid, quote.n))}", ""]
    out += ["## Passages cited", ""]
    for p in aid.cited():
        out.append(f"{p.n}. {md(_where(aid, p.n))}")
    return "\n".join(out).rstrip() + "\n"


# --- HTML ----------------------------------------------------------------------------

CSS = """
body { font: 11pt/1.45 Georgia, 'Times New Roman', serif; max-width: 46em; margin: 2em auto; color: #111; }
h1 { font-size: 1.5em; } h2 { font-size: 1.15em; border-bottom: 1px solid #bbb; margin-top: 1.6em; }
.intro { color: #555; font-size: .9em; }
.item { margin: .8em 0; page-break-inside: avoid; break-inside: avoid; }
.label { font-weight: bold; } .sub { margin-left: 1.2em; }
blockquote { margin: .3em 0 .3em 1.2em; padding-left: .7em; border-left: 3px solid #9ab; color: #333; }
.n { font-family: sans-serif; font-size: .85em; color: #456; }
.kwic { font-size: .85em; color: #555; margin-left: 1.2em; }
img { max-width: 100%; }
@media print {
  body { margin: 0; max-width: none; font-size: 10.5pt; }
  a { color: inherit; text-decoration: none; }
  h2 { page-break-after: avoid; break-after: avoid; }
}
"""


def _figure_png(aid) -> str | None:
    fig = aid.figure()
    if fig is None:
        return None
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


FRAGMENT_CSS = """
.rr-study blockquote { margin: .3em 0 .3em 1.2em; padding-left: .7em; border-left: 3px solid #9ab; }
.rr-study .n { font-size: .85em; color: #456; } .rr-study .sub, .rr-study .kwic { margin-left: 1.2em; }
.rr-study .item { margin: .6em 0; } .rr-study img { max-width: 100%; }
"""


def to_html(aid, figure: bool = True, page: bool = True, nothing_kept: str = NOTHING_KEPT) -> str:
    """A whole HTML page, styled for the screen and for print; with
    `page=False`, the same as one <div> to put inside another page (the
    chat's Study tab). `nothing_kept`: what is said when no item is kept
    ("": nothing, when the page around it says so in the reader's language)."""
    out = [f"<h1>{e(aid.title)}</h1>", f"<p class='intro'>{e(_intro(aid))}</p>"]
    png = _figure_png(aid) if figure else None
    if png:
        out.append(f"<p><img alt='{e(aid.title)}' src='data:image/png;base64,{png}'></p>")
    if not aid.items and nothing_kept:
        out.append(f"<p>{e(nothing_kept)}</p>")
    for group, items in _groups(aid):
        if group:
            out.append(f"<h2>{e(group)}</h2>")
        for item in items:
            rows = item.rows()
            label, text = rows[0]
            parts = [f"<div class='item'><div><span class='label'>{e(label)}:</span> {e(text)} "
                     f"<span class='n'>[{item.quote.n}]</span></div>"]
            for label, text in rows[1:]:
                parts.append(f"<div class='sub'><i>{e(label)}:</i> {e(text)}</div>")
            for quote in item.quotes():
                parts.append(f"<blockquote>“{e(quote.text)}” <span class='n'>[{quote.n}]</span></blockquote>")
            for use in getattr(item, "elsewhere", ()):
                parts.append(f"<div class='kwic'>elsewhere: … {e(use.left)} <b>{e(use.match)}</b> "
                             f"{e(use.right)} … ({e(use.citation)})</div>")
            parts.append("</div>")
            out.append("".join(parts))
    if aid.read_aloud:
        out.append("<h2>Key passages to read aloud</h2>")
        for quote in aid.read_aloud:
            out.append(f"<blockquote class='item'>{e(quote.text)}<br><span class='n'>— [{quote.n}] "
                       f"{e(_where(aid, quote.n))}</span></blockquote>")
    out.append("<h2>Passages cited</h2><ol class='sources'>")
    for p in aid.cited():
        link = ""
        if p.url and p.url.lower().startswith(("https://", "http://")):
            link = f" <a href='{e(p.url)}'>{e(p.url)}</a>"
        out.append(f"<li value='{p.n}'>{e(_where(aid, p.n))}{link}</li>")
    out.append("</ol>")
    if not page:
        return "\n".join([f"<div class='rr-study'><style>{FRAGMENT_CSS}</style>", *out, "</div>"]) + "\n"
    head = ["<!DOCTYPE html>", "<html lang='en'><head><meta charset='utf-8'>",
            f"<title>{e(aid.title)}</title><style>{CSS}</style></head><body>"]
    return "\n".join([*head, *out, "</body></html>"]) + "\n"


# --- quizzes: Anki and CSV -------------------------------------------------------------

def _quiz_items(aid):
    if aid.kind != "quiz":
        raise ValueError(f"only a quiz exports as flashcards or CSV, not a {aid.kind}")
    return aid.items


def _stable_id(text: str) -> int:
    """Anki wants 31-bit-ish ids that stay the same for the same deck."""
    return int(hashlib.sha256(text.encode("utf-8")).hexdigest()[:8], 16) % (1 << 30) + (1 << 30)


def to_anki(aid, path: str | Path) -> Path:
    """The quiz as an Anki deck (.apkg): front the question, back the answer
    with the quote that proves it and its citation."""
    import genanki

    model = genanki.Model(
        _stable_id("readingroom study flashcard v1"), "Reading Room flashcard",
        fields=[{"name": "Question"}, {"name": "Answer"}, {"name": "Quote"}, {"name": "Source"}],
        templates=[{"name": "Card", "qfmt": "{{Question}}",
                    "afmt": "{{FrontSide}}<hr id='answer'>{{Answer}}<blockquote>{{Quote}}</blockquote>"
                            "<small>{{Source}}</small>"}])
    deck = genanki.Deck(_stable_id(aid.title), aid.title)
    for item in _quiz_items(aid):
        deck.add_note(genanki.Note(
            model=model, fields=[e(item.question), e(item.answer), e(item.quote.text),
                                 e(f"[{item.quote.n}] {_where(aid, item.quote.n)}")],
            guid=genanki.guid_for(item.question, item.quote.passage_id)))
    path = Path(path)
    genanki.Package(deck).write_to_file(str(path))
    return path


def _cell(text: str) -> str:
    text = e(text)
    return "'" + text if text[:1] in ("=", "+", "-", "@") else text


def to_csv(aid) -> str:
    """The quiz as CSV: question, answer, wrong options (separated by " | "),
    quote, citation, judge's probability."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["question", "answer", "wrong_options", "quote", "citation", "support"])
    for item in _quiz_items(aid):
        writer.writerow([_cell(item.question), _cell(item.answer), " | ".join(_cell(w) for w in item.wrong),
                         _cell(item.quote.text), _cell(f"[{item.quote.n}] {_where(aid, item.quote.n)}"),
                         f"{item.probability:.2f}"])
    return buffer.getvalue()


def write(aid, path: str | Path) -> Path:
    """The aid written in the format its file name asks for (.md, .html,
    .apkg, .csv)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".apkg":
        return to_anki(aid, path)
    writers = {".md": to_markdown, ".markdown": to_markdown, ".html": to_html, ".htm": to_html, ".csv": to_csv}
    if suffix not in writers:
        raise ValueError(f"{path}: write .md, .html, .apkg (quiz) or .csv (quiz), not {suffix or 'no suffix'}")
    path.write_text(writers[suffix](aid), encoding="utf-8")
    return path
