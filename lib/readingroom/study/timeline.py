"""The timeline: dated events and dated writings the text mentions, each
with its quote, in order of date, and plotted (figures.timeline_figure).

Checked: the date has a year, that year is written in the passage near the
quote (in what the judge reads), and the quote supports "in <date>, <event>".
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from readingroom.answer.entailment import quote_context
from readingroom.study.core import AidSpec, Item, lowest_probability, string, text_field

YEAR = re.compile(r"(?<!\d)(1[0-9]{3}|20[0-9]{2})(?!\d)")


@dataclass(frozen=True, kw_only=True)
class TimelineEvent(Item):
    date: str
    year: int
    event: str

    def rows(self):
        return [("Date", self.date), ("Event", self.event)]


def year_of(date: str) -> int | None:
    found = YEAR.search(date)
    return int(found.group(1)) if found else None


class TimelineSpec(AidSpec):
    kind = "timeline"
    title = "Timeline"
    instructions = ("List the dated events and dated writings these passages mention (only those "
                    "with a year written in the passage). \"date\" is the date as the passage gives "
                    "it, with its year; \"event\" is one short sentence on what happened or what "
                    "was written.")
    properties = {"date": string(40), "event": string(250)}
    max_items = 4

    def validate(self, draft):
        why = super().validate(draft)
        event = text_field(draft, "event")
        if why is None and (len(event.split()) < 3 or event == text_field(draft, "date")):
            return "the event says nothing"
        return why

    def structural(self, draft, quote, passage):
        year = year_of(text_field(draft, "date"))
        if year is None:
            return "the date has no year"
        if str(year) not in quote_context(passage.text, quote.start, quote.end):
            return f"{year} is not written near the quote"
        return None

    def statements(self, draft):
        return [f"In {text_field(draft, 'date')}: {text_field(draft, 'event')}"]

    def make_item(self, draft, quote, verdicts, wrong, also, group, material):
        return TimelineEvent(quote=quote, probability=lowest_probability(verdicts),
                             date=text_field(draft, "date"), year=year_of(text_field(draft, "date")),
                             event=text_field(draft, "event"))

    def finish(self, aid, lib):
        aid.items.sort(key=lambda e: (e.year, e.quote.n, e.quote.start))

