"""What a study aid is made from: the passages of one document, of one
section of it, or of a set of documents chosen with search's filters.

    material = select_material(lib, Selection(doc="secH2", section="H.2.6"))

The passages come in reading order (documents by source, year and key), at
most `max_passages` of them: an aid is read by people preparing one session,
and every passage costs the model time, so a selection that is too large is
cut, and says so (`Material.cut`), rather than running for hours.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from readingroom.search.searcher import DocumentTable, Filters

MAX_PASSAGES = 24


class SelectionError(ValueError):
    pass


@dataclass(frozen=True)
class Selection:
    """Which text: `doc` (a document's id, its key, or words of its title),
    optionally one `section` of it (words of a heading, any case); or, with
    no `doc`, every document that `filters` lets through."""
    doc: str | None = None
    section: str | None = None
    filters: Filters = field(default_factory=Filters)


@dataclass(frozen=True)
class SourcePassage:
    """One passage an aid may quote, numbered [n] within the aid."""
    n: int
    passage_id: str
    doc_id: str
    title: str
    authors: tuple[str, ...]
    year: int | None
    section: str
    citation: str
    anchor: str | None
    url: str | None
    text: str


@dataclass(frozen=True)
class Material:
    title: str  # what was chosen, as a heading: "An Anarchist FAQ › H.2.6 ..."
    passages: tuple[SourcePassage, ...]
    cut: int = 0  # passages of the selection left out (beyond max_passages)

    def passage(self, n: int) -> SourcePassage | None:
        """Passage [n] (numbers need not start at 1: a material may be a slice of another)."""
        return next((p for p in self.passages if p.n == n), None)

    def sections(self) -> list[tuple[str, list[SourcePassage]]]:
        """The passages grouped by section, in reading order."""
        groups: list[tuple[str, list[SourcePassage]]] = []
        for p in self.passages:
            if groups and groups[-1][0] == p.section:
                groups[-1][1].append(p)
            else:
                groups.append((p.section, [p]))
        return groups


def find_document(lib, doc: str) -> tuple[str, str]:
    """(doc_id, title) of the document `doc` names: its id, its key, or
    words of its title (then exactly one document must match)."""
    rows = lib.con.execute(
        "SELECT doc_id, title FROM documents WHERE doc_id = ? OR key = ? ORDER BY doc_id", [doc, doc]).fetchall()
    if not rows:
        rows = lib.con.execute(
            "SELECT doc_id, title FROM documents WHERE contains(lower(title), lower(?)) ORDER BY title LIMIT 6",
            [doc]).fetchall()
    if not rows:
        raise SelectionError(f"{lib.path}: no document is called {doc!r} (give its key, id or words of its title)")
    if len(rows) > 1:
        names = "; ".join(title for _, title in rows[:5])
        raise SelectionError(f"{lib.path}: {doc!r} names several documents ({names}): give its key or id")
    return rows[0]


def filtered_documents(lib, filters: Filters) -> list[tuple[str, str]]:
    """(doc_id, title) of the documents `filters` let through (all of them
    for empty filters), in reading order: what a study aid may be made from."""
    docs = lib.con.execute(
        "SELECT doc_id, authors, year, coalesce(language, ''), source, title FROM documents "
        "ORDER BY source, year NULLS LAST, key").fetchall()
    table = DocumentTable(
        doc_ids=np.array([d[0] for d in docs], dtype=object),
        authors=[list(d[1]) for d in docs],
        years=np.array([np.nan if d[2] is None else d[2] for d in docs], dtype=float),
        languages=np.array([d[3] for d in docs], dtype=object),
        sources=np.array([d[4] for d in docs], dtype=object))
    mask = filters.document_mask(table)
    return [(d[0], d[5]) for d, keep in zip(docs, mask.tolist()) if keep]


def document_sections(lib, doc_id: str, limit: int = 300) -> list[str]:
    """The headings of a document's sections (" › " between levels), in
    reading order, at most `limit`: what `Selection.section` may name."""
    rows = lib.con.execute(
        "SELECT array_to_string(section, ' › ') AS heading, min(ordinal) AS first FROM passages "
        "WHERE doc_id = ? AND len(section) > 0 GROUP BY heading ORDER BY first LIMIT ?", [doc_id, limit]).fetchall()
    return [heading for heading, _ in rows if heading]


def select_material(lib, selection: Selection, max_passages: int = MAX_PASSAGES) -> Material:
    if selection.doc:
        doc_id, title = find_document(lib, selection.doc)
        doc_ids = [doc_id]
    elif selection.filters:
        doc_ids = [doc_id for doc_id, _ in filtered_documents(lib, selection.filters)]
        title = f"{len(doc_ids)} documents"
    else:
        raise SelectionError("choose a document (doc=...) or documents with filters")
    if not doc_ids:
        raise SelectionError(f"{lib.path}: no document passes the filters {selection.filters}")
    rows = lib.con.execute(
        """
        SELECT p.passage_id, p.doc_id, d.title, d.authors, d.year, array_to_string(p.section, ' › '),
               p.citation, p.anchor, d.url, p.text
        FROM passages p JOIN documents d USING (doc_id)
        WHERE list_contains(?, p.doc_id)
          AND (CAST(? AS VARCHAR) IS NULL OR contains(lower(array_to_string(p.section, ' › ')), lower(?)))
        ORDER BY d.source, d.year NULLS LAST, d.key, p.ordinal
        """,
        [doc_ids, selection.section, selection.section]).fetchall()
    if not rows:
        raise SelectionError(f"{lib.path}: {title!r} has no section whose heading holds {selection.section!r}")
    if selection.section:
        title = f"{title} › {(rows[0][5] or selection.section).rsplit(' › ', 1)[-1]}"
    passages = tuple(
        SourcePassage(n, pid, doc_id, doc_title, tuple(authors), year, section or "", citation, anchor, url, text)
        for n, (pid, doc_id, doc_title, authors, year, section, citation, anchor, url, text)
        in enumerate(rows[:max_passages], start=1))
    return Material(title, passages, cut=max(len(rows) - max_passages, 0))
