"""Quiz and flashcards: a question, its answer, and the quote that proves
it; for multiple choice, wrong options the quote does not bear out.

Checked with the same judge as answers: the quote must support the answer
("question — answer" read as one statement), and must NOT support any wrong
option (one it supports is dropped, and recorded). An item left with no
wrong option is still a flashcard. The judge tells support from its
absence, not a contradiction from silence, so "wrong" here means "not what
the text says", which the facilitator should read before using it.
"""
from __future__ import annotations

from dataclasses import dataclass

from readingroom.answer.quotes import normal_form
from readingroom.study.core import AidSpec, Item, lowest_probability, string, text_field

WRONG_OPTIONS = 3


@dataclass(frozen=True, kw_only=True)
class QuizItem(Item):
    question: str
    answer: str
    wrong: tuple[str, ...] = ()  # options the judge found the quote does not support

    def rows(self):
        rows = [("Question", self.question), ("Answer", self.answer)]
        if self.wrong:
            rows.append(("Wrong options", " · ".join(self.wrong)))
        return rows

    def options(self) -> list[str]:
        """The answer and the wrong options, in a fixed order that does not
        always put the answer first (sorted by their text)."""
        return sorted([self.answer, *self.wrong], key=str.casefold)


def as_statement(question: str, answer: str) -> str:
    return f"{question} — {answer}"


class QuizSpec(AidSpec):
    kind = "quiz"
    title = "Quiz"
    instructions = ("Write quiz questions a reader of these passages can answer from them. "
                    "\"question\" is a short question; \"answer\" is its short answer, as the passage "
                    f"gives it; \"wrong\" lists up to {WRONG_OPTIONS} short wrong answers that the "
                    "passage contradicts or does not give.")
    properties = {"question": string(200), "answer": string(160),
                  "wrong": {"type": "array", "maxItems": WRONG_OPTIONS, "items": string(160)}}
    max_items = 3
    max_tokens = 480
    question_field = "question"

    def statements(self, draft):
        return [as_statement(text_field(draft, "question"), text_field(draft, "answer"))]

    def wrong_options(self, draft):
        answer = normal_form(text_field(draft, "answer"))[0]
        seen, options = {answer}, []
        for option in draft.get("wrong") or ():
            option = " ".join(str(option).split())[:160]
            key = normal_form(option)[0]
            if option and key not in seen:
                seen.add(key)
                options.append(option)
        return [as_statement(text_field(draft, "question"), o) for o in options]

    def make_item(self, draft, quote, verdicts, wrong, also, group, material):
        question = text_field(draft, "question")
        prefix = as_statement(question, "")
        return QuizItem(quote=quote, group=group, probability=lowest_probability(verdicts),
                        question=question, answer=text_field(draft, "answer"),
                        wrong=tuple(w.removeprefix(prefix) for w in wrong))
