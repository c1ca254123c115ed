"""Checking a generated answer against the passages it was given.

The small models cite numbers that were never given, state things no
passage says, and follow instructions found inside passages. So nothing a
model writes reaches the reader unchecked; this package is the check:
sentences (the answer as immutable sentence records), citations (markers
read, invented ones removed), scoring (the support score), attribution
(whose claim a sentence states), steps (the check as a pipeline of
those) and early (the same check, run while the model writes). Its notes
are in each module; `check_answer` is the entry point.
"""
from readingroom.answer.check.attribution import speaker
from readingroom.answer.check.citations import all_citation_markers, cited_numbers, count_markers
from readingroom.answer.check.early import EarlyCheck
from readingroom.answer.check.scoring import MIN_CLAIM_WORDS, SUPPORT_THRESHOLD, SupportChecker, best_quote
from readingroom.answer.check.sentences import Sentence, split_sentences
from readingroom.answer.check.steps import Checked, check_answer

__all__ = ["Checked", "EarlyCheck", "Sentence", "SupportChecker", "check_answer", "split_sentences", "cited_numbers",
           "all_citation_markers", "count_markers", "speaker", "best_quote", "MIN_CLAIM_WORDS",
           "SUPPORT_THRESHOLD"]
