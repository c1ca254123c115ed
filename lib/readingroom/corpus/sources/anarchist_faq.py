"""An Anarchist FAQ, as Debian's `anarchism` package ships it: one Markdown
file per section (secA1.md.gz ...), each question a heading.

Question headings ('H.1.1 What was Bakunin's critique of Marxism?') become the
section path and are kept out of the passage text, so a question can serve as
a search query whose answer is its section. Anchors follow the FAQ's own
links ('secH1.md#sech11').
"""
from __future__ import annotations

import re
from pathlib import Path

from readingroom.corpus.document import Document
from readingroom.corpus.sources import Problem, text_and_problems
from readingroom.corpus.sources.markdown import markdown_blocks, slug
from readingroom.corpus.textio import SourceError

TITLE = "An Anarchist FAQ"
AUTHORS = ["Anarchist FAQ Editorial Collective"]
# Index pages, link lists and site notes: navigation, not content.
NAVIGATION = {"index", "links", "alinks", "arlinks", "contact", "pdf", "book",
              "translations", "supplementary", "new", "biblio"}
QUESTION = re.compile(r"^([A-J])\.((?:\d+\.?)+)\s")
WRAPPED_HEADING = re.compile(r"^(#{1,6} [^\n]*[^?\n])\n(?![#\n])([^\n]+)$", re.M)
HEADING_LINE = re.compile(r"#{1,6} [^\n]*[^?\n]")  # a line WRAPPED_HEADING joins the next one to


def faq_anchor(heading: str) -> str:
    """'sech11' for 'H.1.1 ...', as the FAQ's own cross-references write it."""
    m = QUESTION.match(heading)
    if not m:
        return slug(heading)
    return f"sec{m.group(1).lower()}{m.group(2).replace('.', '')}"


def unwrap_headings(text: str) -> str:
    """The package's Markdown wraps long headings onto a second line, which
    Markdown would read as a paragraph; join them back. What WRAPPED_HEADING
    substituted until nothing changed, looking only at lines that start with
    '#' (a regex anchored at every line start scanned all 11 MB twice): a
    heading takes in the lines after it (not empty, not a heading) until it
    ends with '?'."""
    pieces, copied = [], 0
    starts = [0] if text.startswith("#") else []
    starts += [m.start() + 1 for m in re.finditer("\n#", text)]
    for start in starts:
        end = _line_end(text, start)
        if not HEADING_LINE.fullmatch(text, start, end):
            continue
        lines = [text[start:end]]
        while end < len(text) and text[end - 1] != "?":
            following = _line_end(text, end + 1)
            if following == end + 1 or text[end + 1] == "#":
                break
            lines.append(text[end + 1:following])
            end = following
        if len(lines) > 1:
            pieces += [text[copied:start], " ".join(lines)]
            copied = end
    return "".join(pieces) + text[copied:] if pieces else text


def _line_end(text: str, start: int) -> int:
    end = text.find("\n", start)
    return len(text) if end == -1 else end


def faq_files(folder: Path) -> list[Path]:
    files = sorted(folder.glob("*.md")) + sorted(folder.glob("*.md.gz"))
    return sorted((f for f in files if f.name.split(".")[0] not in NAVIGATION), key=lambda f: f.name)


def read_folder(folder: Path, version: str):
    """Documents from the package's markdown/ folder."""
    files = faq_files(folder)
    if not files:
        raise SourceError(folder, "holds no An Anarchist FAQ Markdown files (secA1.md.gz ...)")
    for path in files:
        text, problems = text_and_problems(path)
        yield from problems
        if text is None:
            continue
        blocks, title = markdown_blocks(unwrap_headings(text), anchor_for=faq_anchor)
        if not blocks:
            yield Problem(str(path), "has no paragraphs of text", "warning")
            continue
        stem = path.name.split(".")[0]
        yield Document(
            source="anarchist-faq",
            key=stem,
            title=f"{TITLE}: {title}" if title else TITLE,
            blocks=blocks,
            authors=list(AUTHORS),
            language="en",
            location=str(path),
            metadata={"edition": version, "section_file": f"{stem}.md", "licence": "GPL-2"},
        )
