"""A digest as Markdown and as a standalone HTML page.

Everything that came from a feed (titles, outlets, leads, summaries built
from them, URLs) is untrusted. In HTML it is escaped with html.escape, links
are written only for http(s) URLs (never javascript: or data:), and the page
carries a Content-Security-Policy that forbids scripts, so even a mistake in
escaping could not run one. In Markdown the same text is escaped too (a
Markdown viewer renders raw HTML), and so are the characters that would make
it a link, emphasis or heading.
"""
from __future__ import annotations

import re
from urllib.parse import urlparse

from readingroom.answer.render import escape_html, escape_markdown
from readingroom.text import shorten

CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src 'none'; base-uri 'none'; form-action 'none'"
STYLE = """
body{font-family:Georgia,serif;max-width:46rem;margin:2rem auto;padding:0 1rem;color:#222;line-height:1.5}
h1{font-size:1.6rem;margin-bottom:.2rem} h2{font-size:1.2rem;margin:2rem 0 .3rem;border-top:1px solid #ddd;padding-top:1rem}
.meta{color:#666;font-size:.9rem} .topics span{background:#eef;border-radius:3px;padding:0 .3rem;margin-right:.3rem}
.differ{background:#fff6e5;border-left:3px solid #e0a030;padding:.3rem .8rem;margin:.8rem 0}
.related{background:#f3f7f3;border-left:3px solid #6a9;padding:.3rem .8rem;margin:.8rem 0}
ol.items{font-size:.9rem;color:#333} .note{color:#888;font-size:.85rem}
"""


def safe_url(url: str | None) -> str | None:
    """The URL if it is an http(s) one, else None (no javascript:, data:, file:)."""
    if not isinstance(url, str) or not url.strip():
        return None
    url = url.strip()
    try:
        scheme = urlparse(url).scheme.lower()
    except ValueError:
        return None
    return url if scheme in ("http", "https") and not any(c in url for c in "\x00\n\r\t <>\"'`") else None


def when(moment, undated: bool = False) -> str:
    text = f"{moment:%d %b %Y %H:%M} UTC"
    return f"undated (first seen {text})" if undated else text


def day_range(start, end) -> str:
    a, b = f"{start:%d %b %Y}", f"{end:%d %b %Y}"
    return a if a == b else f"{a} – {b}"


# --- Markdown --------------------------------------------------------------------------------

def md(text: str) -> str:
    """Feed text on one line, made inert in Markdown (answer.render.escape_markdown)."""
    return escape_markdown(" ".join(str(text).split()))


def _md_citations(sentence: str) -> str:
    """A summary sentence (feed words and [n] markers): the words escaped,
    the markers kept as citations."""
    parts = re.split(r"(\[\d{1,3}\])", sentence)
    return "".join(p if re.fullmatch(r"\[\d{1,3}\]", p) else _md_keep_spaces(p) for p in parts)


def _md_keep_spaces(text: str) -> str:
    if not text.strip():
        return text
    lead, trail = text[:len(text) - len(text.lstrip())], text[len(text.rstrip()):]
    return (" " if lead else "") + md(text) + (" " if trail else "")


def markdown(digest) -> str:
    lines = [f"# {md(digest.title)}", "",
             f"{day_range(digest.since, digest.until)} · {len(digest.stories)} stories from "
             f"{digest.items_matched} of {digest.items_in_window} items · generated {digest.generated:%d %b %Y %H:%M} UTC", ""]
    if not digest.stories:
        lines.append("No items in this window" + (" match the profile's topics." if digest.profile else "."))
    for number, story in enumerate(digest.stories, start=1):
        lines += [f"## {number}. {md(story.title)}", ""]
        meta = [f"{len(story.outlets)} outlet{'s' * (len(story.outlets) > 1)}, {len(story.items)} "
                f"item{'s' * (len(story.items) > 1)}", day_range(story.start, story.end)]
        if story.topics:
            meta.insert(0, "Topics: " + ", ".join(f"{md(t)} ({s:.2f})" for t, s in story.topics.items()))
        lines += [" · ".join(meta), ""]
        lines += [" ".join(_md_citations(s) for s in story.summary.sentences), ""]
        if story.summary.method == "extractive" and story.summary.note:
            lines += [f"*({md(story.summary.note)})*", ""]
        if story.disagreements:
            lines += ["**Where the outlets differ** (figures for the same thing; read the sentences):", ""]
            for d in story.disagreements:
                reports = "; ".join(f"{md(outlet)}: {', '.join(f'{md(v)} [{n}]' for v, n, _ in rs)}"
                                    for outlet, rs in d.reports.items())
                lines.append(f"- {md(d.unit)}: {reports}")
            lines.append("")
        lines += ["**Items**", ""]
        for item in story.items:
            url = safe_url(item.url)
            title = f"[{md(item.title)}](<{url}>)" if url else md(item.title)
            lines.append(f"{item.n}. {md(item.outlet)}, {when(item.time, item.undated)}: {title}")
        lines.append("")
        if story.related:
            lines += ["**Related reading in the library**", ""]
            for r in story.related:
                where = md(r["citation"]) + (f" \\#{md(r['anchor'])}" if r.get("anchor") else "")
                lines.append(f"- {where}: “{md(_snippet(r['text']))}” (strength {r['strength']:.2f})")
            lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def _snippet(text: str, limit: int = 220) -> str:
    return shorten(" ".join(text.split()), limit)


# --- HTML ------------------------------------------------------------------------------------------

e = escape_html


def _html_citations(sentence: str, anchor_prefix: str) -> str:
    parts = re.split(r"\[(\d{1,3})\]", sentence)
    out = []
    for i, p in enumerate(parts):
        if i % 2:
            out.append(f'<a href="#{anchor_prefix}-{int(p)}">[{int(p)}]</a>')
        else:
            out.append(e(p))
    return "".join(out)


def html_page(digest) -> str:
    out = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
           f'<meta http-equiv="Content-Security-Policy" content="{CSP}">',
           '<meta name="referrer" content="no-referrer">',
           f"<title>{e(digest.title)}</title><style>{STYLE}</style></head><body>",
           f"<h1>{e(digest.title)}</h1>",
           f'<p class="meta">{e(day_range(digest.since, digest.until))} · {len(digest.stories)} stories from '
           f"{digest.items_matched} of {digest.items_in_window} items · generated "
           f"{e(f'{digest.generated:%d %b %Y %H:%M}')} UTC</p>"]
    if not digest.stories:
        out.append("<p>No items in this window" + (" match the profile's topics." if digest.profile else ".") + "</p>")
    for number, story in enumerate(digest.stories, start=1):
        prefix = f"s{number}"
        out.append(f'<section id="{prefix}"><h2>{number}. {e(story.title)}</h2>')
        meta = f"{len(story.outlets)} outlet(s), {len(story.items)} item(s), {e(day_range(story.start, story.end))}"
        topics = "".join(f"<span>{e(t)} {s:.2f}</span>" for t, s in story.topics.items())
        out.append(f'<p class="meta topics">{topics} {meta}</p>')
        out.append("<p>" + " ".join(_html_citations(s, prefix) for s in story.summary.sentences) + "</p>")
        if story.summary.method == "extractive" and story.summary.note:
            out.append(f'<p class="note">({e(story.summary.note)})</p>')
        if story.disagreements:
            out.append('<div class="differ"><strong>Where the outlets differ</strong> '
                       '(figures for the same thing; read the sentences):<ul>')
            for d in story.disagreements:
                reports = "; ".join(
                    f"{e(outlet)}: " + ", ".join(f'{e(v)} <a href="#{prefix}-{n}">[{n}]</a>' for v, n, _ in rs)
                    for outlet, rs in d.reports.items())
                out.append(f"<li>{e(d.unit)}: {reports}</li>")
            out.append("</ul></div>")
        out.append('<ol class="items">')
        for item in story.items:
            url = safe_url(item.url)
            title = f'<a href="{e(url)}" rel="noopener noreferrer nofollow">{e(item.title)}</a>' if url else e(item.title)
            out.append(f'<li id="{prefix}-{item.n}" value="{item.n}">{e(item.outlet)}, '
                       f"{e(when(item.time, item.undated))}: {title}</li>")
        out.append("</ol>")
        if story.related:
            out.append('<div class="related"><strong>Related reading in the library</strong><ul>')
            for r in story.related:
                where = e(r["citation"]) + (f" #{e(r['anchor'])}" if r.get("anchor") else "")
                out.append(f"<li>{where}: “{e(_snippet(r['text']))}” <span class=\"note\">(strength "
                           f"{r['strength']:.2f})</span></li>")
            out.append("</ul></div>")
        out.append("</section>")
    out.append("</body></html>")
    return "\n".join(out) + "\n"
