"""Study aids for workshop facilitators, every item cited and checked:
a reading guide, discussion questions, a glossary, a quiz (and flashcards),
a timeline and a concept map, made from a document, a section of one, or
documents chosen with search's filters.

    from readingroom.study import Selection, make_aid
    aid = make_aid("guide", lib, Selection(doc="secH2", section="H.2.6"), generator)
    aid.to_markdown(); aid.to_html(); aid.figure()

`make_aid` is the one entry point (the CLI, the notebook and the chat's
Study tab call it). Each item is drafted by the model as JSON (a passage
number and its exact words with every item) and kept only if its quote is in
its passage and the model, as judge, finds what the item says there
(study/check.py). See study/export.py for the files an aid becomes.
"""
from __future__ import annotations

from readingroom.study.conceptmap import ConceptMapSpec
from readingroom.study.build import build_aid
from readingroom.study.core import Aid, AidSpec, Dropped, Quote
from readingroom.study.glossary import GlossarySpec
from readingroom.study.guide import GuideSpec
from readingroom.study.questions import QuestionsSpec
from readingroom.study.quiz import QuizSpec
from readingroom.study.select import Material, Selection, SelectionError, select_material
from readingroom.study.timeline import TimelineSpec

SPECS: dict[str, AidSpec] = {spec.kind: spec for spec in (
    GuideSpec(), QuestionsSpec(), GlossarySpec(), QuizSpec(), TimelineSpec(), ConceptMapSpec())}
KINDS = tuple(SPECS)


def make_aid(kind: str, lib, selection: Selection | Material, generator, *, judge=None,
             max_passages: int | None = None, max_items: int | None = None, max_tokens: int | None = None,
             progress: bool = True, on_item=None) -> Aid:
    """The aid of `kind` (one of KINDS) for the selected text. `judge`: an
    answer.entailment.EntailmentJudge; by default the generator judges.
    `max_items` and `max_tokens` bound each generator call (the tests and
    the notebook at test size keep them small)."""
    import copy

    from readingroom.answer.entailment import EntailmentJudge

    if kind not in SPECS:
        raise ValueError(f"unknown study aid {kind!r}; choose one of {', '.join(KINDS)}")
    spec = copy.copy(SPECS[kind])
    if max_items:
        spec.max_items = max_items
    if max_tokens:
        spec.max_tokens = max_tokens
    if isinstance(selection, Material):
        material = selection
    else:
        material = select_material(lib, selection, **({"max_passages": max_passages} if max_passages else {}))
    judge = judge or EntailmentJudge(generator)
    return build_aid(spec, lib, material, generator, judge, progress=progress, on_item=on_item)


__all__ = ["Aid", "Dropped", "KINDS", "Material", "Quote", "Selection", "SelectionError", "make_aid",
           "select_material"]
