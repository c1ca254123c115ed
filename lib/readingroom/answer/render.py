"""An answer as the reader gets it: plain text, Markdown, HTML.

An Answer keeps its parts apart (the checked body, the citations, the
reading list); this module writes them out, so that nothing downstream ever
splits a rendered answer back into its parts.

Text from the library, the feeds and the model is untrusted wherever it
becomes markup. There is one escaper per format: `escape_html` (every
"<", ">", "&" and quote) and `escape_markdown` (HTML escaped too, since
Markdown viewers pass raw HTML through; the characters that make links,
emphasis and code backslashed, so an image's "![" becomes "!\\[", no
image; a line-leading "#", ">", "+", "-" or "1." defused). So
`![](https://tracker…)` or `[verify](https://evil…)` in a title, a
quotation or the model's words comes out as inert text. The chat's export
and the news digests use these.
"""
from __future__ import annotations

import html
import re

from readingroom.answer.check.citations import defuse_markers
from readingroom.answer.crosslingual import pivot_name
from readingroom.messages import message
from readingroom.text import shorten

CLOSEST_SHOWN = 3  # passages listed when the answer abstains
SNIPPET_CHARS = 220


# --- escapers ------------------------------------------------------------------------

def escape_html(text) -> str:
    """Text made inert in HTML, attribute values included."""
    return html.escape("" if text is None else str(text), quote=True)


_MD_SPECIAL = re.compile(r"([\\`*_\[\]{}|])")
_MD_LINE_START = re.compile(r"^(\s*)([#>+-]|\d+\.)", re.MULTILINE)


def escape_markdown(text) -> str:
    """Text made inert in Markdown (see the module notes); line breaks kept."""
    text = _MD_SPECIAL.sub(r"\\\1", html.escape("" if text is None else str(text), quote=False))
    return _MD_LINE_START.sub(r"\1\\\2", text)


# --- the parts ---------------------------------------------------------------------------

def not_answered(language: str | None) -> str:
    """That the sources do not answer, in `language` (English if the catalogue lacks it)."""
    return message("not-answered", language)


def where(hit) -> str:
    """A passage's citation with its anchor: 'Engels, ..., ¶5 #sec2'."""
    place = hit.citation or hit.title
    return place + f" #{hit.anchor}" if hit.anchor else place


def closest_passages(passages, language: str | None) -> str:
    """The passages closest to a question the library cannot answer, each
    with its citation and its opening."""
    if not passages:
        return ""
    lines = [f"{message('closest-passages', language)}:"]
    for n, hit in enumerate(passages[:CLOSEST_SHOWN], start=1):
        snippet = shorten(" ".join(hit.text.split()), SNIPPET_CHARS)
        lines.append(f"[{n}] {where(hit)}: “{defuse_markers(snippet)}”")
    return "\n".join(lines)


def body_text(result) -> str:
    """What the answer says, without the reading list: the checked body, or
    when it abstains, that it cannot answer and the closest passages."""
    if not result.abstained:
        crosslingual = getattr(result, "crosslingual", None)
        if crosslingual is None:
            return result.body
        # The reader's language first (a translation the back-check withheld is the checked
        # sentence, marked); how many were checked that way; then what the program checked.
        heading = message("checked-original", result.language, language_name=pivot_name(crosslingual))
        verified = back_check_line(crosslingual, result.language)
        # Every translation withheld: the reader's-language part would only repeat the checked text.
        translated = "" if len(crosslingual.withheld) == len(crosslingual.sentences) else f"{crosslingual.body}\n\n"
        return translated + (f"({verified})\n\n" if verified else "") + f"{heading}:\n{result.body}"
    closest = closest_passages(result.passages, result.language)
    unknown = unknown_names_listed(result)
    why = " " + message("names-unknown", result.language, names=unknown) if unknown else ""
    return result.body + why + ("\n\n" + closest if closest else "")


def unknown_names_listed(result) -> str:
    """The names the gate found the library never mentions (search.relevance.unknown_names),
    as the messages list them: "Bortkiewicz, Tugan-Baranovsky"; "" when the gate found none."""
    return ", ".join((getattr(result, "gate", None) or {}).get("unknown_names") or ())


def back_check_line(crosslingual, language: str | None) -> str:
    """How many translated sentences the translation back confirmed ("" when
    none was checked that way)."""
    checked = crosslingual.back_checked
    if not checked:
        return ""
    return message("translations-verified", language, verified=len(crosslingual.verified), total=len(checked))


def reading_lines(reading: list[dict], escape=lambda s: s) -> list[str]:
    """The reading list, a document a line: '- Engels, The Condition ...
    (1845) <url>: [1] “Results”, ¶12; [3] ¶14', its text through `escape`."""
    lines = []
    for doc in reading:
        who = f"{doc['author']}, " if doc["author"] else ""
        year = f" ({doc['year']})" if doc["year"] else ""
        places = "; ".join(f"[{p['n']}] {p['place']}" + (f" #{p['anchor']}" if p["anchor"] else "")
                           for p in doc["passages"])
        url = f" <{doc['url']}>" if doc["url"] else ""
        lines.append("- " + escape(f"{who}{doc['title']}{year}{url}: {places}"))
    return lines


def reading_heading(language: str | None) -> str:
    return message("read-further", language)


def reading_text(reading: list[dict], language: str | None) -> str:
    return "\n".join([f"{reading_heading(language)}:"] + reading_lines(reading))


def answer_text(result) -> str:
    """The whole answer as text: what it says, then where to read further."""
    text = body_text(result)
    return text + "\n\n" + reading_text(result.further_reading, result.language) if result.further_reading else text


def answer_markdown(result) -> list[str]:
    """One answer as Markdown lines: its body, its sources with their
    quotations, and the reading list, every piece of text escaped."""
    lines = [escape_markdown(body_text(result)), ""]
    if getattr(result, "anchored", False) and not result.abstained:
        lines += [f"_each claim's quote found in its passage and judged by {escape_markdown(result.judge)}_", ""]
    if result.citations:
        lines += [f"**{escape_markdown(message('sources', result.language))}**", ""]
        for c in result.citations:
            hit = result.passages[c["n"] - 1]
            anchor = f" #{hit.anchor}" if hit.anchor else ""
            url = f" <{hit.url}>" if re.match(r"https?://", hit.url or "", re.IGNORECASE) else ""
            lines.append(f"- \\[{c['n']}\\] {escape_markdown(c['citation'] + anchor + url)}")
            for quote in [q["quote"] for q in c.get("quotes", [])] or [c.get("quote")]:
                if quote:  # anchored answers: every claim's quote, the passage's exact words
                    lines.append(f"  > {escape_markdown(' '.join(quote.split()))}")
        lines.append("")
    if result.further_reading:
        lines += [f"**{escape_markdown(reading_heading(result.language))}**", ""]
        lines += reading_lines(result.further_reading, escape_markdown)
        lines.append("")
    return lines
