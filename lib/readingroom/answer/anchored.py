"""Answers as quote-anchored claims, each checked while the model writes.

The model is given the passages and asked for claims as JSON (claims.py):
for each, the number of its passage, the passage's own words it rests on,
and the claim. As soon as a claim's JSON is complete, the program checks it:

1. its passage is one that was given;
2. its quote stands in that passage (quotes.py: found in the normal form,
   or repaired to the passage's own words when that is unambiguous);
   a claim that names a speaker the passage is neither by nor names
   ("Reagan argues ..." over the FAQ) is left out (check.attribution.
   misattributed), and so is a claim that repeats an earlier one
   (repeats.py), before the judge spends time on either;
3. the passage, read around the quote, supports the claim: the entailment
   judge (entailment.py), not shared words;
4. it names whose view it states: a claim from a passage by an author who is
   not named in it is attributed ("According to Kropotkin, ...") once.

A claim that fails a step is left out, with the reason. The reader sees
each kept claim as soon as it is checked, with the quote highlighted in its
passage; the first does not wait for the last. When no claim survives, the
answer says the passages do not answer, and lists the closest.
"""
from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from readingroom.answer.check.attribution import attributed, misattributed
from readingroom.answer.claims import MAX_CLAIMS, DraftClaim, claims_instructions, claims_schema, read_claims
from readingroom.answer.entailment import EntailmentJudge, quote_context
from readingroom.answer.quotes import QuoteSpan, locate_quote
from readingroom.answer.repeats import repeated_claim

MAX_ANSWER_TOKENS = 420  # six claims with their quotes fit; a rambling answer is cut


@dataclass(frozen=True)
class CheckedClaim:
    """One claim after the check: kept, or left out with the reason."""
    draft: DraftClaim              # as the model wrote it
    text: str                      # as the reader sees it (attributed where needed)
    passage: int                   # 1-based number among the passages given
    passage_id: str | None
    span: QuoteSpan | None         # where the quote stands in the passage's text
    quote: str                     # the passage's own words at that span ("" when not found)
    support: float | None          # the judge's probability that the passage supports the claim
    kept: bool
    reason: str = ""               # why it was left out
    speaker: str = ""              # whose view the passage gives, when it is someone's

    def to_dict(self) -> dict:
        return {"text": self.text, "passage": self.passage, "passage_id": self.passage_id,
                "quote": self.quote, "span": [self.span.start, self.span.end] if self.span else None,
                "repaired": bool(self.span and self.span.repaired), "support": self.support,
                "kept": self.kept, "reason": self.reason, "speaker": self.speaker,
                "model_text": self.draft.text, "model_quote": self.draft.quote}


@dataclass
class AnchoredAnswer:
    question: str
    passages: list                 # the search Hits given to the model
    claims: list[CheckedClaim]     # every claim the model wrote, in order, kept or not
    raw: str                       # the model's JSON as written
    abstained: bool
    gate: dict = field(default_factory=dict)
    model: str | None = None
    seconds: float = 0.0
    first_claim_seconds: float | None = None  # when the first kept claim was ready
    tokens: dict | None = None

    @property
    def kept(self) -> list[CheckedClaim]:
        return [c for c in self.claims if c.kept]

    @property
    def dropped(self) -> list[CheckedClaim]:
        return [c for c in self.claims if not c.kept]

    @property
    def cited(self) -> list[int]:
        return sorted({c.passage for c in self.kept})

    def to_dict(self) -> dict:
        return {"question": self.question, "abstained": self.abstained,
                "claims": [c.to_dict() for c in self.claims],
                "passages": [{"n": n, **h.to_dict()} for n, h in enumerate(self.passages, start=1)],
                "gate": self.gate, "model": self.model, "raw": self.raw, "seconds": round(self.seconds, 3),
                "first_claim_seconds": self.first_claim_seconds, "tokens": self.tokens}


def check_claim(draft: DraftClaim, hits, judge: EntailmentJudge, speaker_of,
                earlier: Sequence[CheckedClaim] = ()) -> CheckedClaim:
    """One claim through the four steps above; `earlier`: the claims of the
    same answer checked before it, in order (a repeat of one is left out)."""
    def left_out(reason: str, span=None, quote="", support=None, passage_id=None, speaker=""):
        return CheckedClaim(draft, draft.text, draft.passage, passage_id, span, quote, support, False,
                            reason, speaker)

    if not 1 <= draft.passage <= len(hits):
        return left_out(f"cites passage {draft.passage}, which was not given")
    if len(draft.text.split()) < 3:
        return left_out("the claim says too little to check", passage_id=hits[draft.passage - 1].passage_id)
    hit = hits[draft.passage - 1]
    speaker = speaker_of(hit)
    span = locate_quote(draft.quote, hit.text)
    if span is None:
        return left_out("its quote is not in the passage", passage_id=hit.passage_id, speaker=speaker)
    quote = hit.text[span.start:span.end]
    who = misattributed(draft.text, [hit])
    if who:
        return left_out(f"names {who} as the speaker, but the passage is not by {who} and does not name them",
                        span, quote, None, hit.passage_id, speaker)
    repeated = repeated_claim(draft.passage, span, draft.text, earlier)
    if repeated is not None:
        return left_out(f"repeats claim {repeated}", span, quote, None, hit.passage_id, speaker)
    supported, probability = judge.supports(quote_context(hit.text, span.start, span.end), draft.text)
    if not supported:
        return left_out("the passage does not say this", span, quote, probability, hit.passage_id, speaker)
    return CheckedClaim(draft, attributed(draft.text, hit, speaker), draft.passage, hit.passage_id, span, quote,
                        probability, True, "", speaker)


def anchored_messages(question: str, hits, sources_block, language_note: str = "") -> list[dict]:
    system = ("You answer questions about texts, using only the numbered passages you are given. "
              + claims_instructions(len(hits), language_note, MAX_CLAIMS))
    user = f"{sources_block(hits)}\n\nQuestion: {question}"
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


def anchored_stream(question: str, hits, generator, judge: EntailmentJudge, *, sources_block, speaker_of,
                    gate: dict | None = None, max_tokens: int = MAX_ANSWER_TOKENS,
                    language_note: str = "") -> Iterator[str | CheckedClaim | AnchoredAnswer]:
    """The model's text in pieces, each claim as soon as it is checked
    (CheckedClaim, kept or not), then the AnchoredAnswer. `hits` are the
    passages that passed the gate; `sources_block` and `speaker_of` come
    from the prompt and attribution modules."""
    if getattr(judge, "generator", None) is generator:
        # Claims are judged while the answer is still being written: one
        # context cannot do both (load the judge with load_generator(own=True)).
        raise ValueError("the judge needs a generator of its own, not the one writing the answer")
    started = time.perf_counter()
    messages = anchored_messages(question, hits, sources_block, language_note)
    pieces: list[str] = []
    claims: list[CheckedClaim] = []
    first = None
    stream = generator.stream(messages, max_tokens=max_tokens, temperature=0.0,
                              json_schema=claims_schema(len(hits), MAX_CLAIMS))
    for item in read_claims(stream):
        if isinstance(item, str):
            pieces.append(item)
            yield item
            continue
        checked = check_claim(item, hits, judge, speaker_of, claims)
        if checked.kept and first is None:
            first = time.perf_counter() - started
        claims.append(checked)
        yield checked
    usage = getattr(generator, "last_usage", None)
    tokens = {"prompt": usage.prompt_tokens, "completion": usage.completion_tokens} if usage else None
    answer = AnchoredAnswer(question, list(hits), claims, "".join(pieces), not any(c.kept for c in claims),
                            dict(gate or {}), getattr(generator, "name", None), time.perf_counter() - started,
                            first, tokens)
    yield answer
