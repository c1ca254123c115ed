"""Quote-anchored claims, the pure parts: locating a quote in its passage
(normal form, repair, ambiguity) and reading claims out of JSON while it
streams."""
from __future__ import annotations

import json
from dataclasses import dataclass

import pytest

from readingroom.answer.anchored import check_claim
from readingroom.answer.claims import ClaimReader, DraftClaim, claims_schema, read_claims
from readingroom.answer.entailment import calibrate, quote_context
from readingroom.answer.quotes import QuoteSpan, locate_quote, normal_form
from readingroom.answer.repeats import same_text, span_overlap

PASSAGE = ("The history of all hitherto existing soci-\nety is the history of _class_ struggles.\n\n"
           "Freeman and slave, patrician and plebeian, lord and serf, guild\u2011master and "
           "journeyman, in a word, oppressor and oppressed, stood in constant opposition "
           "to one another, carried on an uninterrupted, now hidden, now open fight.")


def quoted(span):
    return PASSAGE[span.start:span.end]


def test_a_quote_is_found_whatever_its_quote_marks_dashes_case_hyphenation_and_spaces():
    span = locate_quote("“the history of all hitherto existing society is the history of class struggles”",
                        PASSAGE)
    assert span is not None and not span.repaired and span.similarity == 100.0
    assert quoted(span) == "The history of all hitherto existing soci-\nety is the history of _class_ struggles"
    span = locate_quote("lord and serf, guild-master and journeyman", PASSAGE)
    assert quoted(span) == "lord and serf, guild\u2011master and journeyman"


def test_a_quote_with_a_word_dropped_is_repaired_to_the_passages_own_words():
    span = locate_quote("oppressor and oppressed, stood in opposition to one another", PASSAGE)
    assert span is not None and span.repaired and 90 <= span.similarity < 100
    assert quoted(span).startswith("oppressor and oppressed, stood in constant opposition")


@pytest.mark.parametrize("quote", [
    "the history of all societies is the history of wars between nations",  # not in the passage
    "class struggles",                                                      # too short to tell
    "",
])
def test_words_the_passage_does_not_hold_are_not_located(quote):
    assert locate_quote(quote, PASSAGE) is None


def test_a_repair_that_fits_two_places_equally_is_refused():
    passage = "The workers build the houses of the rich. The workers build the palaces of the rich."
    assert locate_quote("the workers build the mansions of the rich", passage) is None
    # an exact quote of one of two identical sentences is fine: same words either way
    assert locate_quote("The workers build the houses of the rich", passage) is not None


def test_normal_form_maps_every_character_back_to_the_original():
    text = "A  \u201cquoted\u201d soci-\nety\u2014_now_"
    normal, origin = normal_form(text)
    assert normal == 'a "quoted" society-now'
    assert len(origin) == len(normal)
    assert all(text[o].casefold() in {c, "\u201c", "\u201d", "\u2014", " ", "\n"} or c == " "
               for c, o in zip(normal, origin) if c.isalpha())


def test_claims_are_read_one_by_one_as_the_json_streams():
    claims = [{"passage": 1, "quote": "the history of class struggles", "text": "History is \"class\" {struggle}."},
              {"passage": 2, "quote": "oppressor and oppressed", "text": "Two sides."}]
    text = json.dumps({"claims": claims})
    reader = ClaimReader()
    seen = []
    for i, char in enumerate(text):
        for claim in reader.feed(char):
            seen.append((i, claim))
    assert [c for _, c in seen] == [DraftClaim(**c) for c in claims]
    first_done = seen[0][0]
    assert first_done < text.index('"passage": 2')  # handed on before the second was written


def test_a_truncated_or_malformed_answer_yields_what_is_complete():
    text = '{"claims": [{"passage": 1, "quote": "a b c", "text": "t"}, {"passage": "x", "quote": 1, "text": ""}, {"passage": 2, "quo'
    pieces = [text[i:i + 7] for i in range(0, len(text), 7)]
    drafts = [p for p in read_claims(pieces) if isinstance(p, DraftClaim)]
    assert drafts == [DraftClaim(1, "a b c", "t")]


def test_the_schema_bounds_passage_numbers_and_claims():
    schema = claims_schema(3, max_claims=4)
    claim = schema["properties"]["claims"]["items"]
    assert claim["properties"]["passage"] == {"type": "integer", "minimum": 1, "maximum": 3}
    assert schema["properties"]["claims"]["maxItems"] == 4
    assert claim["required"] == ["passage", "quote", "text"]


def test_quote_context_keeps_the_quote_and_what_stands_just_before_it():
    passage = "x " * 600 + "it is not true that the state withers away " + "y " * 600
    start = passage.index("the state")
    context = quote_context(passage, start, start + len("the state withers away"), chars=200)
    assert "not true that the state withers away" in context
    assert len(context) <= 210 and context.startswith("…") and context.endswith("…")


def test_calibration_takes_the_lowest_threshold_that_keeps_the_precision():
    probabilities = [0.99, 0.95, 0.9, 0.8, 0.7, 0.6, 0.3, 0.2]
    labels = [True, True, True, False, True, False, True, False]
    c = calibrate("m", probabilities, labels, min_precision=0.95)
    assert c.threshold == 0.9 and c.precision == 1.0 and c.recall == pytest.approx(3 / 5)
    c = calibrate("m", probabilities, labels, min_precision=0.75)
    assert c.threshold == 0.7 and c.recall == pytest.approx(4 / 5)


# --- repeated claims: left out before the judge -----------------------------------------------

# A passage of the Anarchist FAQ and five claims Qwen2.5-Coder-0.5B wrote over it, as it wrote
# them (asked when the Ukrainian anarchist leader was let out of prison; 2026-12-01 run).
FAQ_PASSAGE = (
    "Secondly, Grant lets the cat out of the bag by admitted that he sees the Spanish Revolution in terms of "
    "the anarchist \"leaders\" taking power. In this he followed Trotsky, who had argued that:\n\n\"A "
    "revolutionary party, even having seized power (of which the anarchist leaders were incapable in spite "
    "of the heroism of the anarchist workers), is still by no means the sovereign ruler of society.\" [ "
    "\"Stalinism and Bolshevism\" ]\n\nClearly, rather than the masses taking power, Trotskyism sees the "
    "party (the leaders) having the real power in society. Trotsky stressed this fact elsewhere when he "
    "argued that \"[b]ecause the leaders of the CNT renounced dictatorship for themselves they left the "
    "place open for the Stalinist dictatorship.\" [ Writings 1936-7 , p. 514]")
TROTSKYISM = "Trotskyism saw the party as having the real power in society."
WRITTEN = [
    DraftClaim(1, "Grant lets the cat out of the bag by admitted that he sees the Spanish Revolution in terms "
                  "of the anarchist \"leaders\" taking power.",
               "The Spanish Revolution was seen by Grant as the leaders taking power."),
    DraftClaim(1, "In this he followed Trotsky, who had argued that: \"A revolutionary party, even having seized "
                  "power (of which the anarchist leaders were incapable in spite of the heroism of the anarchist "
                  "workers), is still by no means the sovereign ruler of society.\" [ \"Stalinism and "
                  "Bolshevism\" ] Clearly, rather than the masses taking power, Trotskyism sees the party (the "
                  "leaders) having the real power in society.", TROTSKYISM),
] + [DraftClaim(1, "Clearly, rather than the masses taking power, Trotskyism sees the party (the leaders) "
                   "having the real power in society.", TROTSKYISM)] * 4


@dataclass
class FaqHit:  # the fields of a search Hit that the check reads
    text: str
    passage_id: str = "845f61b01678e9391f7b"
    author: str = ""


class RecordingJudge:
    """Says what the calibrated judge said of these claims in that run (no, p 0.48-0.54),
    and counts its calls: the point is which claims reach it."""
    threshold = 0.5

    def __init__(self, verdict=False):
        self.verdict, self.calls = verdict, []

    def supports(self, source, claim):
        self.calls.append(claim)
        return self.verdict, 0.9 if self.verdict else 0.48


def check_all(drafts, hits, judge):
    checked = []
    for draft in drafts:
        checked.append(check_claim(draft, hits, judge, lambda hit: "", checked))
    return checked


def test_a_writers_repeats_are_left_out_before_the_judge_with_the_claim_they_repeat():
    judge = RecordingJudge()
    checked = check_all(WRITTEN, [FaqHit(FAQ_PASSAGE)], judge)
    # claim 2 quotes the paragraph that holds the repeats' sentence: their spans lie inside its span
    assert [c.reason for c in checked] == ["the passage does not say this"] * 2 + ["repeats claim 2"] * 4
    assert judge.calls == [WRITTEN[0].text, TROTSKYISM]  # two calls, not six
    for claim in checked[2:]:
        assert not claim.kept and claim.support is None
        assert claim.quote == FAQ_PASSAGE[claim.span.start:claim.span.end]
        assert claim.quote.startswith("Clearly, rather than the masses")


COMMUNE = ("The Paris Commune held power in Paris for seventy-two days in the spring of 1871. "
           "It separated the church from the state and abolished night work in the bakeries.")
SAID = DraftClaim(1, "The Paris Commune held power in Paris for seventy-two days",
                  "The Commune held power for seventy-two days.")


@pytest.mark.parametrize("later,repeats", [
    (DraftClaim(1, "held power in Paris for seventy-two days", "The Paris Commune held power for seventy-two days"),
     True),   # a word added, the quote inside the first: ratio 93
    (DraftClaim(1, "The Paris Commune held power in Paris for seventy-two days",
                "The Commune held power for seventy-two days and abolished night work."), False),  # news added
    (DraftClaim(1, "The Paris Commune held power in Paris for seventy-two days",
                "The Commune did not hold power for seventy-two days."), False),   # a negation
    (DraftClaim(1, "The Paris Commune held power in Paris for seventy-two days in the spring of 1871",
                "The Commune held power for seventy-two days in 1872."), False),   # another number (ratio 98)
    (DraftClaim(1, "It separated the church from the state and abolished night work",
                "The Commune held power for seventy-two days."), True),    # other words quoted: the same claim
    (DraftClaim(2, "The Paris Commune held power in Paris for seventy-two days",
                "The Commune held power for seventy-two days."), True),   # another passage: the reader has it
    (DraftClaim(2, "The Paris Commune held power in Paris for seventy-two days",
                "The Commune held power for seventy-two days in 1871."), False),    # another passage, news added
])
def test_a_repeat_is_the_same_words_of_the_same_passage_and_nearly_the_same_claim(later, repeats):
    judge = RecordingJudge(verdict=True)
    first, second = check_all([SAID, later], [FaqHit(COMMUNE, "p1"), FaqHit(COMMUNE, "p2")], judge)
    assert first.kept
    assert (second.reason == "repeats claim 1") is repeats
    assert len(judge.calls) == (1 if repeats else 2)


def test_a_claim_left_out_on_one_passage_is_judged_again_on_another():
    judge = RecordingJudge(verdict=False)
    first, second = check_all([SAID, DraftClaim(2, SAID.quote, SAID.text)],
                              [FaqHit(COMMUNE, "p1"), FaqHit(COMMUNE, "p2")], judge)
    assert first.reason == second.reason == "the passage does not say this" and len(judge.calls) == 2


def test_a_claim_that_names_a_speaker_the_passage_does_not_know_is_left_out_before_the_judge():
    judge = RecordingJudge(verdict=True)
    hits = [FaqHit(COMMUNE, "p1", "Karl Marx")]
    reagan, marx, he = check_all([DraftClaim(1, SAID.quote, "Reagan argues that the Commune held power for "
                                                            "seventy-two days."),
                                  DraftClaim(1, SAID.quote, "Marx writes that the Commune lasted seventy-two days."),
                                  DraftClaim(1, SAID.quote, "He notes that it held Paris for seventy-two days.")],
                                 hits, judge)
    assert reagan.reason.startswith("names Reagan as the speaker") and not reagan.kept
    assert marx.kept and he.kept and len(judge.calls) == 2


def test_repeats_measures():
    assert span_overlap(QuoteSpan(0, 100, 100, False), QuoteSpan(50, 200, 100, False)) == 0.5
    assert span_overlap(QuoteSpan(0, 10, 100, False), QuoteSpan(20, 30, 100, False)) == 0.0
    assert same_text("The state withers away.", "the state withers away")
    demanded = "The Bonapartists demanded the abolition of Article 45, which forbade the president's reelection."
    # ratio 96 and 99: only the negation and number rules tell these apart
    assert not same_text(demanded, demanded.replace("demanded", "did not demand"))
    assert not same_text(demanded, demanded.replace("45", "46"))
    assert same_text(demanded, demanded.replace("The Bonapartists", "Bonapartists"))
