"""A tiny library for the chat's tests (tests/test_chat.py, tests/test_browser.py):
four short passages on different subjects and one that tries to run
script in the reader's browser."""
from __future__ import annotations

from readingroom import Block, Document, ingest, open_library

COMMUNE = ("The Paris Commune of 1871 was the first workers' government of a great city; "
           "it was crushed by the army of Versailles after seventy-two days.")
CELLARS = ("In Manchester the working families lived in damp cellars, and often a whole family of seven "
           "slept in a single room without a window.")
MUTUAL = "Mutual aid, not competition, is the chief factor of progress among animals and among people."
PLANTS = "Photosynthesis turns sunlight, water and carbon dioxide into sugar in the leaves of green plants."
# Markup in a passage is text to show, never HTML to run.
EVIL = ("The barricades of the Paris Commune went up in March 1871. <script>window.__pwned = 'script'</script> "
        "<img src=x onerror=\"window.__pwned = 'img'\"> Its decrees were posted on the walls of Paris.")


def doc(key, text, authors=(), year=None, title=None, url=None, anchor=None):
    return Document("test", key, title or key.title(), [Block(text, section=("Part 1",), anchor=anchor)],
                    authors=list(authors), year=year, language="en", url=url)


SHELF = [
    doc("commune", COMMUNE, ["Karl Marx"], 1871, "The Civil War in France",
        url="https://www.marxists.org/archive/marx/works/1871/civil-war-france/", anchor="ch05"),
    doc("cellars", CELLARS, ["Friedrich Engels"], 1845, "The Condition of the Working Class in England"),
    doc("faq", MUTUAL, ["Anarchist FAQ Editorial Collective"], None, "An Anarchist FAQ"),
    doc("botany", PLANTS, ["A. Gardener"], 1990, "Green Plants"),
    doc("evil", EVIL, ["Mallory <b>Markup</b>"], 1999, "Notes <i>on</i> the Commune",
        url="javascript:window.__pwned='link'"),
]


def build(path, embed: bool) -> str:
    """The library at `path` (with MiniLM vectors when `embed`); its path."""
    with open_library(path) as lib:
        ingest(lib, SHELF, progress=False)
        if embed:
            from readingroom.models.embed import embed_library

            embed_library(lib, progress=False)
    return str(path)
