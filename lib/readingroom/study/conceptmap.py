"""The concept map: the text's main concepts and how the text links them,
each link with its quote, drawn as a graph (figures.concept_map_figure).

Checked: the two concepts differ, each is written in the passage, and the
quote supports "<concept> <link> <concept>".
"""
from __future__ import annotations

from dataclasses import dataclass

from readingroom.answer.quotes import normal_form
from readingroom.study.core import AidSpec, Item, lowest_probability, string, text_field


@dataclass(frozen=True, kw_only=True)
class ConceptLink(Item):
    source: str
    relation: str
    target: str

    def rows(self):
        return [("Link", f"{self.source} → {self.relation} → {self.target}")]


class ConceptMapSpec(AidSpec):
    kind = "map"
    title = "Concept map"
    instructions = ("Name the main concepts of these passages and how the text links them. Each item "
                    "is one link: \"source\" and \"target\" are concepts (a word or two, as written "
                    "in the passage); \"relation\" is a short verb phrase saying how the text links "
                    "them (for example \"is opposed by\", \"leads to\", \"is part of\").")
    properties = {"source": string(60), "relation": string(80), "target": string(60)}
    max_items = 4

    def structural(self, draft, quote, passage):
        source, target = (normal_form(text_field(draft, name))[0] for name in ("source", "target"))
        if source == target:
            return "a concept linked to itself"
        text = normal_form(passage.text)[0]
        for concept in (source, target):
            if concept not in text:
                return f"the concept {concept!r} is not written in its passage"
        return None

    def statements(self, draft):
        return [f"{text_field(draft, 'source')} {text_field(draft, 'relation')} {text_field(draft, 'target')}"]

    def make_item(self, draft, quote, verdicts, wrong, also, group, material):
        return ConceptLink(quote=quote, probability=lowest_probability(verdicts),
                           source=text_field(draft, "source"), relation=text_field(draft, "relation"),
                           target=text_field(draft, "target"))
