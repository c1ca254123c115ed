"""The check every study item goes through before anyone sees it.

1. Its passage number names a passage of the aid's material.
2. Its quote is in that passage (answer.quotes.locate_quote: exact in the
   normal form, or repaired when one place fits unambiguously); the item
   then shows the passage's own words.
3. The kind's own structural test (a glossary term appears in its quote, a
   timeline date's year is written there ...).
4. Every statement it makes about the text is supported by the quote read
   in its context, in the judgement of the generator asked yes or no
   (answer.entailment.EntailmentJudge); a quiz's wrong options must NOT be
   supported (a wrong option the quote supports is dropped, the item kept
   if its answer holds).

An item failing any step is not shown; its draft and the reason are
recorded (`Dropped`), so the facilitator and the measurements can see what
the model wrote and why it was left out.
"""
from __future__ import annotations

from readingroom.answer.entailment import quote_context
from readingroom.answer.quotes import locate_quote
from readingroom.study.core import AidSpec, Dropped, Quote, Verdict
from readingroom.study.select import Material, SourcePassage


def find_quote(material: Material, number, words) -> tuple[Quote | None, str]:
    """The quote located in passage [number], or None and why not."""
    passage = material.passage(number) if isinstance(number, int) and not isinstance(number, bool) else None
    if passage is None:
        return None, f"passage [{number}] is not one of the aid's passages"
    if not isinstance(words, str) or not words.strip():
        return None, "no quote"
    span = locate_quote(words, passage.text)
    if span is None:
        return None, f"quote not found in passage [{number}]"
    return quote_of(passage, span.start, span.end, span.repaired), ""


def quote_of(passage: SourcePassage, start: int, end: int, repaired: bool = False) -> Quote:
    return Quote(passage.n, passage.passage_id, passage.citation, passage.anchor, passage.url,
                 passage.text[start:end], start, end, repaired)


def judge_source(material: Material, quote: Quote) -> str:
    """What the judge reads: the quote with its passage around it."""
    return quote_context(material.passage(quote.n).text, quote.start, quote.end)


def check_draft(spec: AidSpec, draft: dict, material: Material, judge,
                group: str = "") -> tuple[object | None, list[Dropped], bool]:
    """(the item or None, what was dropped, whether the quote was located)."""
    def drop(reason):
        return None, [Dropped(spec.kind, draft, reason)], located

    located = False
    quote, why = find_quote(material, draft.get("passage"), draft.get("quote"))
    if quote is None:
        return drop(why)
    located = True
    why = spec.validate(draft) or spec.structural(draft, quote, material.passage(quote.n))
    if why:
        return drop(why)
    source = judge_source(material, quote)
    verdicts = []
    for statement in spec.statements(draft):
        supported, p = judge.supports(source, statement)
        verdicts.append(Verdict(statement, p, supported))
        if not supported:
            return drop(f"the judge finds the quote does not support: {statement!r} (p={p:.2f})")
    dropped = []
    wrong = []
    for option in spec.wrong_options(draft):
        supported, p = judge.supports(source, option)
        if supported:
            dropped.append(Dropped(spec.kind, {**draft, "wrong option": option},
                                   f"wrong option the quote supports (p={p:.2f}): {option!r}"))
        else:
            wrong.append(option)
    also = []
    for extra in draft.get("also") or ():
        if not isinstance(extra, dict):
            continue
        extra_quote, why = find_quote(material, extra.get("passage"), extra.get("quote"))
        if extra_quote is None:
            dropped.append(Dropped(spec.kind, {**draft, "also": extra}, f"further anchor left out: {why}"))
        elif extra_quote.n != quote.n or extra_quote.start != quote.start:
            also.append(extra_quote)
    item = spec.make_item(draft, quote, verdicts, wrong, also, group, material)
    return item, dropped, located
