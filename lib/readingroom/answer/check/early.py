"""Sentences checked while the model is still writing.

A reader should not wait for the whole answer before seeing a checked
sentence: with the default model on 2 cores an answer takes 30-40 s, its
first sentence a few seconds after the first word. So each time the
model's text holds one more complete sentence (the next one has begun),
the text so far is checked as a finished answer would be (`check_answer`:
the same steps, the same thresholds), and the claims it keeps among the
complete sentences that were not reported yet are reported, once each.

The check of the finished answer still has the last word, and it is what
the reader is left with. It can keep a sentence the early check did not (a
sentence without a number takes the numbers of the next citing sentence of
its paragraph, which may not be written yet), and in rare cases leave out
one it reported (a "This is stated in [n]." written after it); the chat
replaces the early sentences with the final answer when it is done.

With a meaning check (`judged`, answer.pipeline) each complete claim is
judged as it is reported; the judge's verdicts are kept per answer
(answer.entailment.claim_judge), so the finished answer's check does not
ask again.
"""
from __future__ import annotations

import re

import numpy as np

from readingroom.answer.check.scoring import SupportChecker
from readingroom.answer.check.sentences import Sentence, split_sentences
from readingroom.answer.check.steps import Judged, check_answer

_MAY_END = re.compile(r"[.!?…:;\n]")  # a sentence can only have ended where one of these was written


class EarlyCheck:
    """Feed it the model's text as it grows (`feed`); it returns the claims
    newly checked and kept, each a check.Sentence whose `final` is what the
    reader reads."""

    def __init__(self, passages, checker: SupportChecker, *, passage_vectors: np.ndarray | None = None,
                 answer_language: str | None = None, judged: Judged | None = None):
        self.passages = passages
        self.judged = judged  # the meaning check, as check_answer's: complete sentences only
        self.checker = checker
        self.passage_vectors = passage_vectors
        self.answer_language = answer_language
        self.complete = 0  # complete sentences checked so far
        self.reported: set[str] = set()  # the kept sentences' texts already handed on
        self._read = 0  # how much of the text was looked at
        self._stopped = False  # a stop or line break came since the last sentence was completed

    def feed(self, text: str) -> list[Sentence]:
        # Cheap first: a sentence can only be complete after a stop or a line
        # break, and only counted once the next one has begun.
        if not self._stopped:
            self._stopped = bool(_MAY_END.search(text, self._read))
        self._read = len(text)
        if not self._stopped:
            return []
        sentences = split_sentences(text)
        complete = len(sentences) - 1  # the last one may still be being written
        if complete <= self.complete:
            return []
        # The sentence being written may hold a stop already (a piece can end one and begin another).
        self.complete, self._stopped = complete, bool(sentences and _MAY_END.search(sentences[-1].text))
        checked = check_answer(text, self.passages, self.checker, passage_vectors=self.passage_vectors,
                               answer_language=self.answer_language, judged=self.judged, judged_sentences=complete)
        new = []
        for sentence in checked.sentences[:complete]:
            if sentence.final and sentence.kind == "claim" and sentence.text not in self.reported:
                self.reported.add(sentence.text)
                new.append(sentence)
        return new
