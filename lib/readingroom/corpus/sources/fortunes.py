"""German quotations, as Debian's `fortunes-de` ships them: the file `zitate`
in usr/share/games/fortunes/de, one quotation after another, each ending in a
line '-- Author (where)' and separated by lines holding only '%'.

The quotations are sorted by author, so each author's run becomes one section
and the library's passages never mix two authors. The author line stays in the
text (after an em dash), because a reader asks "what did Kant say about war".
"""
from __future__ import annotations

import re
from pathlib import Path

from readingroom.corpus.document import Block, Document
from readingroom.corpus.sources import Problem, text_and_problems
from readingroom.corpus.textio import SourceError

QUOTATIONS = "zitate"
TITLE = "Zitate (fortunes-de)"
SEPARATOR = re.compile(r"^%\s*$", re.M)
ATTRIBUTION = re.compile(r"^\s*--\s*(.+?)\s*$")
AUTHOR_NAME = re.compile(r"^([^(]+?)\s*(?:\(|$)")  # 'Immanuel Kant (Zum ewigen Frieden)' -> 'Immanuel Kant'


def quotation_blocks(text: str) -> tuple[list[Block], int]:
    """One block per quotation, its section the author; and how many entries
    had no attribution line (kept, under 'Unbekannt')."""
    blocks, unattributed = [], 0
    for entry in SEPARATOR.split(text):
        lines = [line for line in entry.splitlines() if line.strip()]
        if not lines:
            continue
        attribution = next((i for i in range(len(lines) - 1, -1, -1) if ATTRIBUTION.match(lines[i])), None)
        if attribution is None or attribution == 0:
            body, who = lines, None
        else:
            # An attribution may wrap onto a following line: it is all attribution.
            body, who = lines[:attribution], " ".join(
                [ATTRIBUTION.match(lines[attribution]).group(1)] + [s.strip() for s in lines[attribution + 1:]])
        quote = " ".join(line.strip() for line in body)
        if who is None:
            unattributed += 1
            author = "Unbekannt"
            blocks.append(Block(quote, section=(author,)))
            continue
        named = AUTHOR_NAME.match(who)  # None for '-- (anonym)'
        author = named.group(1).strip() if named else who
        blocks.append(Block(f"{quote} — {who}", section=(author,)))
    return blocks, unattributed


def read_folder(folder: Path, version: str):
    """The quotation file of the package's de/ folder as one document."""
    path = folder / QUOTATIONS
    if not path.is_file():
        raise SourceError(folder, f"holds no '{QUOTATIONS}' file (fortunes-de's German quotations)")
    text, problems = text_and_problems(path)
    yield from problems
    if text is None:
        return
    blocks, unattributed = quotation_blocks(text)
    if not blocks:
        yield Problem(str(path), "has no quotations", "warning")
        return
    if unattributed:
        yield Problem(str(path), f"{unattributed} quotations have no '-- Author' line", "warning")
    yield Document(
        source="fortunes-de",
        key=QUOTATIONS,
        title=TITLE,
        blocks=blocks,
        authors=[],
        language="de",
        location=str(path),
        metadata={"package_version": version, "licence": "GPL-2+ (collection); quotations by their authors"},
    )
