"""The glossary: the text's own terms, each defined from the text with its
quote, and where else the library uses the term (keyword in context,
explore.stats.kwic, outside the aid's own documents).

Checked: the term is written in its passage (in the normal form of
answer.quotes, so case and hyphenation do not matter), and the quote
supports the definition.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

from readingroom.answer.quotes import normal_form
from readingroom.study.core import AidSpec, Item, lowest_probability, string, text_field

ELSEWHERE = 3  # uses of the term elsewhere in the library, per entry


@dataclass(frozen=True)
class Use:
    """One use of a term in another document: a line of keyword in context."""
    left: str
    match: str
    right: str
    citation: str
    title: str


@dataclass(frozen=True, kw_only=True)
class GlossaryEntry(Item):
    term: str
    definition: str
    elsewhere: tuple[Use, ...] = field(default_factory=tuple)

    def rows(self):
        return [("Term", self.term), ("Definition", self.definition)]


class GlossarySpec(AidSpec):
    kind = "glossary"
    title = "Glossary"
    instructions = ("List the terms a reader of these passages needs explained (names of ideas, "
                    "movements, institutions the text uses), each defined as the text uses it. "
                    "\"term\" is the term as written in the passage; \"definition\" is one plain "
                    "sentence taken from what the passage says.")
    properties = {"term": string(60), "definition": string(300)}
    max_items = 4

    def structural(self, draft, quote, passage):
        term, _ = normal_form(text_field(draft, "term"))
        text, _ = normal_form(passage.text)
        if len(term) < 3 or term not in text:
            return "the term is not written in its passage"
        return None

    def statements(self, draft):
        return [f"In this text, \"{text_field(draft, 'term')}\" means: {text_field(draft, 'definition')}"]

    def make_item(self, draft, quote, verdicts, wrong, also, group, material):
        return GlossaryEntry(quote=quote, probability=lowest_probability(verdicts),
                             term=text_field(draft, "term"), definition=text_field(draft, "definition"))

    def finish(self, aid, lib):
        # One entry per term (the first, best-supported kept), then its uses elsewhere.
        seen, entries = set(), []
        for entry in sorted(aid.items, key=lambda e: -e.probability):
            key = normal_form(entry.term)[0]
            if key not in seen:
                seen.add(key)
                entries.append(entry)
        own = {p.doc_id for p in aid.material.passages}
        aid.items = [replace(e, elsewhere=uses_elsewhere(lib, e.term, own))
                     for e in sorted(entries, key=lambda e: e.term.casefold())]


def uses_elsewhere(lib, term: str, own_documents: set[str], limit: int = ELSEWHERE) -> tuple[Use, ...]:
    from readingroom.explore.stats import kwic

    try:
        hits = kwic(lib, term, width=50, limit=limit + 20, per_document=1)
    except ValueError:  # a term explore's Term cannot search for (no word in it)
        return ()
    uses = [Use(r.left, r.match, r.right, r.citation or "", r.title) for r in hits.itertuples()
            if r.doc_id not in own_documents]
    return tuple(uses[:limit])
