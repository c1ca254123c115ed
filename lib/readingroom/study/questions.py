"""Discussion questions: open questions for a group, each anchored to the
passages that bear on it (its quote, and up to two more), with a note on
where readers may disagree.

What is checked: every anchor's quote is located in its passage (an anchor
that is not is left out, the question kept if its first anchor stands), and
what the question says the first quote says (`says`) is supported by it.
The question and the note on disagreement are prompts for a discussion,
not claims about the text, and are shown as such.
"""
from __future__ import annotations

from dataclasses import dataclass

from readingroom.answer.claims import MAX_QUOTE_CHARS
from readingroom.study.core import AidSpec, Item, lowest_probability, string, text_field


@dataclass(frozen=True, kw_only=True)
class DiscussionQuestion(Item):
    question: str
    says: str  # what the quote says that bears on the question (checked)
    disagreement: str  # where readers may disagree (a prompt, not checked)

    def rows(self):
        return [("Question", self.question), ("The text says", self.says),
                ("Where readers may disagree", self.disagreement)]


class QuestionsSpec(AidSpec):
    kind = "questions"
    title = "Discussion questions"
    instructions = ("Write open questions for a group discussing these passages: questions with no "
                    "one right answer, that the passages bear on. \"question\" is the question; "
                    "\"says\" is one sentence on what the quoted words say that bears on it; "
                    "\"disagreement\" is one sentence on where readers may disagree; \"also\" lists "
                    "up to two more passages with their quotes that bear on it (or is empty).")
    max_items = 2
    max_tokens = 480
    question_field = "question"

    @property
    def properties(self):
        return {"question": string(250), "says": string(300), "disagreement": string(300),
                "also": {"type": "array", "maxItems": 2, "items": {
                    "type": "object", "required": ["passage", "quote"], "additionalProperties": False,
                    "properties": {"passage": {"type": "integer"},
                                   "quote": {"type": "string", "maxLength": MAX_QUOTE_CHARS}}}}}

    def statements(self, draft):
        return [text_field(draft, "says")]

    def make_item(self, draft, quote, verdicts, wrong, also, group, material):
        return DiscussionQuestion(quote=quote, also=tuple(also), group=group,
                                  probability=lowest_probability(verdicts),
                                  question=text_field(draft, "question"), says=text_field(draft, "says"),
                                  disagreement=text_field(draft, "disagreement"))
