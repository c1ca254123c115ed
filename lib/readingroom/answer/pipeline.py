"""Answers from the library's passages, with citations the program checks.

    from readingroom.answer.pipeline import answer
    result = answer(lib, "What does the Manifesto say the modern state is?")
    print(result.text)            # the checked answer, with [n] markers, and where to read further
    result.body                   # the checked answer alone
    result.citations              # [{n, passage_id, citation, quote}, ...]

Steps:
1. Follow-ups (readingroom.answer.followup). With a `history` (earlier
   turns), the question is first rewritten into one that stands alone.
2. Retrieval, then the gate (readingroom.search.relevance): the library
   must hold something close enough, and mention whom or what the
   question names, or the model is not asked at all.
   Dividing up the work: the gate is cheap and stops most questions the
   library cannot answer before a model runs (about 30 s an answer for the
   1.5B model here); the check stops the rest.
3. The prompt (readingroom.answer.prompt): the rules, then the passages,
   numbered and delimited so that a passage cannot close its own block.
4. The model's answer streams out, then the program checks it
   (readingroom.answer.check): invented citation numbers are removed,
   every sentence is scored against the passages it cites, unsupported
   sentences are left out, and a sentence that states a passage's claim
   without saying whose gets "According to <author>, " in front. When
   nothing supported is left, the answer says the library's sources do not
   answer the question and lists the closest passages; so it does when what
   is left shares no content word with the question (`on_topic`: a
   supported quotation beside the point is no answer). The small models
   cannot be trusted with any of this; the program guarantees it.
   Disagreement: the prompt asks the model to say when passages disagree
   and to cite each side. The program does not detect contradictions; what
   it guarantees is that every claim kept names whose claim it is, so two
   sides stand as two authors' claims, each with its citation, never as one
   merged fact.
   Language: the question's language (language.detect_query_language)
   is the reader's: the "not answered" text, the headings and the labels
   come from the message catalogue in it (readingroom.messages). When the
   library holds the question's language, the model answers in it. When it
   does not (a German question to English texts), the question is
   translated into the library's language, searched, answered and checked
   there exactly as an English question is, and each kept sentence is then
   translated back and shown beside the checked original
   (answer.crosslingual): the check is never weaker for a German reader.
5. Every answer ends with where to read further: the documents cited (or,
   when it abstains, the closest ones), with the passages' citations and
   anchors. The Answer keeps body, sentences, citations and reading list
   apart; readingroom.answer.render writes them out.

Anchored answers (`anchored=True`, readingroom.answer.anchored): the same
follow-ups, retrieval and gate, then the model writes claims as JSON, each
with its passage's number and that passage's own words, and each claim is
checked as soon as its JSON is complete: the quote located in its passage
(the character span kept), then an entailment judge asked whether the
passage, read around the quote, supports the claim. The judge is a
generator of its own (load_generator(own=True)): it reads while the writer
is still writing, and one context cannot do both. It is the writer's model
unless `judge` or $READINGROOM_JUDGE names another. The result is the same
Answer, its body made of the kept claims with their [n], its citations
carrying the exact quotes and spans, and `claims` holding every claim,
kept or left out with the reason. It is an option, not the default: a
judge of 0.5B parameters or less tells supported from unsupported claims
little better than chance (AUC 0.5-0.69 on the labelled pairs), Qwen2.5-
Coder-1.5B well (0.90).

A passage that says "ignore your instructions and ..." can change what the
model writes, but not what the reader gets: whatever the model writes must
cite a passage that was given and be supported by it, and an instruction
copied from a passage is at most reported as what that passage says.
"""
from __future__ import annotations

import os
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

from readingroom.answer.anchored import MAX_ANSWER_TOKENS as ANCHORED_MAX_TOKENS
from readingroom.answer.anchored import AnchoredAnswer, CheckedClaim, anchored_stream
from readingroom.answer.check import Checked, EarlyCheck, Sentence, SupportChecker, best_quote, check_answer
from readingroom.answer.check.attribution import author_names, speaker
from readingroom.answer.check.citations import defuse_markers
from readingroom.answer.crosslingual import CrossLingual, library_languages, translate_answer, translation_targets
from readingroom.answer.followup import history_messages, rewrite_question
from readingroom.answer.entailment import EntailmentJudge, claim_judge, default_calibration
from readingroom.answer.prompt import CONTEXT, build_messages, question_language, sources_block
from readingroom.answer.render import CLOSEST_SHOWN, answer_text, not_answered
from readingroom.corpus.document import author_label
from readingroom.corpus.language import LANGUAGE_NAMES
from readingroom.corpus.passages import Citation
from readingroom.models.catalogue import DEFAULT_GENERATOR
from readingroom.models.translate import translate as translate_text
from readingroom.search.relevance import (GATE_THRESHOLD, passage_vectors, passages_for,
                                          retrieval_evidence, unknown_names)
from readingroom.text import content_words

MAX_ANSWER_TOKENS = 320
JUDGE_VARIABLE = "READINGROOM_JUDGE"  # the model that judges anchored claims (default: the writer's)


# --- the answer ------------------------------------------------------------------

@dataclass
class Answer:
    question: str
    rewritten_question: str  # what was searched: the question, made to stand alone after a history, or translated
    language: str | None  # the question's language, when it could be told
    passages: list  # the search Hits given to the model (or, when it abstained, the closest ones)
    raw: str  # what the model wrote ("" when it was not asked)
    sentences: list[Sentence]
    body: str  # the checked answer with [n] markers; when it abstains, that the sources do not answer
    citations: list[dict]  # [{n, passage_id, citation, quote}] for the numbers in body
    supported: bool  # the answer states supported claims (False when it abstains)
    abstained: bool  # it says the sources do not answer
    further_reading: list[dict]  # the reading list: [{doc_id, title, author, year, url, passages}]
    gate: dict = field(default_factory=dict)  # the retrieval evidence: best strength, threshold, per passage
    invented_citations: list[int] = field(default_factory=list)
    rewrite: str = "none"  # "none", "model" or "fallback"
    model: str | None = None
    seconds: float = 0.0
    tokens: dict | None = None  # {"prompt": ..., "completion": ...} of the answering call, when reported
    anchored: bool = False  # written as quote-anchored claims, each checked by the judge
    claims: list[CheckedClaim] = field(default_factory=list)  # anchored: every claim, kept or left out
    judge: str | None = None  # the judging model's name: anchored, or the plain answer's meaning check
    first_claim_seconds: float | None = None  # when the first claim checked and kept was ready (plain: check.early)
    # A question in a language the library does not hold: searched, answered and
    # checked in the library's (answer.crosslingual), the kept sentences translated back.
    crosslingual: CrossLingual | None = None

    @property
    def kept_claims(self) -> list[CheckedClaim]:
        return [c for c in self.claims if c.kept]

    @property
    def dropped_claims(self) -> list[CheckedClaim]:
        return [c for c in self.claims if not c.kept]

    @property
    def text(self) -> str:
        """The whole answer as text (readingroom.answer.render.answer_text):
        what it says (with the closest passages when it abstains), then
        where to read further."""
        return answer_text(self)

    def to_dict(self) -> dict:
        return {
            "question": self.question,
            "rewritten_question": self.rewritten_question,
            "language": self.language,
            "answer": self.text,
            "citations": self.citations,
            "supported": self.supported,
            "abstained": self.abstained,
            "passages": [{"n": n, **h.to_dict()} for n, h in enumerate(self.passages, start=1)],
            "further_reading": self.further_reading,
            "sentences": [s.to_dict() for s in self.sentences],
            "invented_citations": self.invented_citations,
            "raw": self.raw,
            "gate": self.gate,
            "rewrite": self.rewrite,
            "model": self.model,
            "seconds": round(self.seconds, 3),
            "tokens": self.tokens,
            "anchored": self.anchored,
            "claims": [c.to_dict() for c in self.claims],
            "judge": self.judge,
            "first_claim_seconds": self.first_claim_seconds,
            "crosslingual": self.crosslingual.to_dict() if self.crosslingual else None,
        }


def answer(lib_or_searcher, question: str, *, generator=None, k: int = 5, filters=None, history=None,
           stream: Callable[[str], None] | None = None, checker: SupportChecker | None = None,
           gate_threshold: float | None = None, max_tokens: int | None = None, anchored: bool = False,
           judge=None, on_claim: Callable[[CheckedClaim], None] | None = None,
           translate: bool = True, verify_translation: bool = True, context: str = CONTEXT,
           meaning_check: bool | None = None) -> Answer:
    """Answer `question` from the library (a Library or a search.Searcher).
    `generator`: a generate.Generator (default: the default model, llama.cpp);
    `history`: earlier turns, as chat messages ({"role", "content"}) or
    Answers; `stream`: called with each piece of the model's text as it comes.
    `anchored`: written as quote-anchored claims and judged (see the module
    notes); `judge`: an EntailmentJudge or a model's name; `on_claim`: called
    with each claim as soon as it is checked, kept or not. `translate`: a
    question in a language the library does not hold is translated into the
    library's, searched, answered and checked there, and the kept sentences
    translated back (answer.crosslingual); False searches it as asked.
    `verify_translation`: each translated sentence is translated back and
    judged against the checked one (`judge`, as for anchored answers), and
    withheld when they differ; it costs one generation and one or two judge
    calls a sentence; False shows the translations unchecked. `context`:
    what of each passage the model reads, "excerpt" (the sentences about the
    question and their neighbours) or "whole" (answer.prompt).
    `meaning_check`: each claim the plain check keeps by its words is also
    put to the judge (`judge`), which reads its passage and says whether it
    says that (answer.entailment; one judge call a claim); None: on when the
    judge's model has a shipped calibration (the default model does), since
    an uncalibrated judge's "no" means little."""
    result = None
    for item in answer_stream(lib_or_searcher, question, generator=generator, k=k, filters=filters,
                              history=history, checker=checker, gate_threshold=gate_threshold,
                              max_tokens=max_tokens, anchored=anchored, judge=judge, translate=translate,
                              verify_translation=verify_translation, context=context,
                              meaning_check=meaning_check):
        if isinstance(item, Answer):
            result = item
        elif isinstance(item, CheckedClaim):
            if on_claim is not None:
                on_claim(item)
        elif isinstance(item, str) and stream is not None:
            stream(item)
    return result


def answer_stream(lib_or_searcher, question: str, *, generator=None, k: int = 5, filters=None, history=None,
                  checker: SupportChecker | None = None, gate_threshold: float | None = None,
                  max_tokens: int | None = None, anchored: bool = False,
                  judge=None, translate: bool = True,
                  verify_translation: bool = True,
                  context: str = CONTEXT,
                  meaning_check: bool | None = None) -> Iterator[str | Sentence | CheckedClaim | Answer]:
    """As answer(), as a generator: the model's text in pieces while it is
    written, with each claim as soon as it is checked and kept (a
    check.Sentence; anchored: each CheckedClaim, kept or not), then the
    checked Answer as the last item."""
    started = time.perf_counter()
    searcher = _searcher(lib_or_searcher)
    question = (question or "").strip()
    if not question:
        raise ValueError("the question is empty")
    loaded = [generator]

    def model():  # loaded only when needed: an abstention by the gate needs none
        if loaded[0] is None:
            from readingroom.models.generate import load_generator

            loaded[0] = load_generator()
        return loaded[0]

    held = library_languages(searcher)
    language = question_language(question, set(held))

    rewritten, how = question, "none"
    turns = history_messages(history)
    if turns:
        rewritten, how = rewrite_question(question, turns, model())

    threshold = GATE_THRESHOLD if gate_threshold is None else gate_threshold

    # A German question to English texts is searched, answered and checked in
    # English (answer.crosslingual explains why), then translated back; in a
    # library of several languages, in the one whose passages answer it best.
    targets = translation_targets(language, held) if translate else []
    searched, asked_in, question_translation, hits, gate = search_in_languages(
        searcher, rewritten, language, language in held or not targets, targets, model, k, filters, threshold)
    pivot = asked_in if question_translation is not None else None

    def back_judge():  # the judge of the translations back, when they are checked
        if not verify_translation:
            return None
        return judge_for(judge, getattr(loaded[0], "name", None) or DEFAULT_GENERATOR)

    gate["threshold"] = threshold
    checker = checker or SupportChecker(searcher.index.embedder)

    def finish(raw: str, checked: Checked | None, passages) -> Answer:
        abstained = checked is None or not checked.supported
        if not abstained:
            gate["on_topic"] = on_topic(searched, checked, passages, asked_in)
            abstained = not gate["on_topic"]
        sentences = checked.sentences if checked else []
        if abstained:
            body = not_answered(language)
            closest = range(1, min(CLOSEST_SHOWN, len(passages)) + 1)  # the passages the reader is shown
            citations, reading = [], further_reading(passages, closest)
        else:
            body = checked.text
            citations = citation_list(checked, passages)
            reading = further_reading(passages, checked.cited)
        return Answer(question=question, rewritten_question=searched, language=language, passages=list(passages),
                      raw=raw, sentences=sentences, body=body, citations=citations,
                      supported=not abstained, abstained=abstained, further_reading=reading, gate=gate,
                      invented_citations=checked.invented if checked else [], rewrite=how,
                      model=getattr(loaded[0], "name", None), seconds=time.perf_counter() - started,
                      anchored=anchored)

    # A library that never mentions whom or what the question names cannot answer it (search.relevance).
    # Not on a translation: the model may write a name as the other language does ("Frederick", "Friedrich").
    gate["unknown_names"] = unknown_names(searcher, searched, asked_in, hits) if pivot is None else []
    gate["passed"] = bool(hits) and gate["strength"] >= threshold and not gate["unknown_names"]
    if not gate["passed"]:
        yield finish("", None, hits)
        return
    if anchored:
        writer_name = getattr(loaded[0], "name", None) or DEFAULT_GENERATOR
        the_judge = judge_for(judge, writer_name)  # loaded before the writer starts: its load is not a claim's wait
        note = f" in {LANGUAGE_NAMES[asked_in]}" if asked_in in LANGUAGE_NAMES else ""
        claims: list[CheckedClaim] = []
        first = written = None
        def passages_block(given):  # the same passages as the plain prompt's, cut for this question
            return sources_block(given, searched, context)

        for item in anchored_stream(searched, hits, model(), the_judge, sources_block=passages_block,
                                    speaker_of=speaker, gate=gate, max_tokens=max_tokens or ANCHORED_MAX_TOKENS,
                                    language_note=note):
            if isinstance(item, AnchoredAnswer):
                written = item
                continue
            if isinstance(item, CheckedClaim):
                claims.append(item)
                if item.kept and first is None:
                    first = time.perf_counter() - started
            yield item
        result = finish(written.raw, None, hits)
        anchored_answer(result, searched, claims, written, asked_in)
        result.judge = getattr(the_judge.generator, "name", None)
        result.first_claim_seconds = first
        if pivot and not result.abstained:
            # The anchored body is one paragraph of claim sentences (anchored_answer).
            kept = [Sentence(text=claim_sentence(c), paragraph=0, final=claim_sentence(c))
                    for c in result.kept_claims]
            result.crosslingual = translate_answer(kept, language, pivot, model(), question_translation,
                                                   the_judge if verify_translation else None)
        result.seconds = time.perf_counter() - started
        yield result
        return
    messages = build_messages(searched, hits, asked_in, context)
    pieces: list[str] = []
    vectors = passage_vectors(searcher, hits)
    # Loaded before the writer starts: its load is not a claim's wait.
    meaning_judge = judge_of_meaning(meaning_check, judge, getattr(model(), "name", None) or DEFAULT_GENERATOR)
    judged = claim_judge(meaning_judge, asked_in) if meaning_judge else None
    # Claims checked while the model writes (check.early), each yielded
    # once; the finished answer's check below has the last word.
    early = EarlyCheck(hits, checker, passage_vectors=vectors, answer_language=asked_in, judged=judged)
    first = None
    for piece in model().stream(messages, max_tokens=max_tokens or MAX_ANSWER_TOKENS, temperature=0.0):
        pieces.append(piece)
        yield piece
        for sentence in early.feed("".join(pieces)):
            if first is None:
                first = time.perf_counter() - started
            yield sentence
    raw = "".join(pieces)
    usage = getattr(model(), "last_usage", None)
    tokens = {"prompt": usage.prompt_tokens, "completion": usage.completion_tokens} if usage else None
    checked = check_answer(raw, hits, checker, passage_vectors=vectors, answer_language=asked_in, judged=judged)
    result = finish(raw, checked, hits)
    result.tokens = tokens
    result.judge = getattr(meaning_judge.generator, "name", None) if meaning_judge else None
    result.first_claim_seconds = first
    if pivot and not result.abstained:
        result.crosslingual = translate_answer(checked.kept, language, pivot, model(), question_translation,
                                               back_judge())
        result.seconds = time.perf_counter() - started
    yield result


def search_in_languages(searcher, question: str, language: str | None, as_asked: bool, targets, model,
                        k: int, filters, threshold: float):
    """(searched, asked_in, translation, hits, gate): the question searched
    as asked (when `as_asked`) and translated into each of `targets`
    (answer.crosslingual.translation_targets) by `model()`, and the search
    whose passages give the stronger evidence kept; then the language its
    passages mostly speak (weighed by their strength), when the question was
    put in it, is the one the answer is written and checked in.
    `translation` is None when that is the question's own language."""
    def search(text: str, text_language: str | None):
        found = passages_for(searcher, text, k, filters, threshold)
        return found, retrieval_evidence(searcher, text, found, text_language)

    searched, asked_in, question_translation = question, language, None
    versions = {language: (question, None)}  # the question in each language it was searched in
    hits = gate = None
    if as_asked:
        hits, gate = search(question, language)
    for target in targets:
        translation = translate_text(question, target, model(), source=language)
        if not translation.ok:
            continue
        versions[target] = (translation.text, translation)
        their_hits, their_gate = search(translation.text, target)
        if gate is None or their_gate["strength"] > gate["strength"]:
            searched, asked_in, question_translation = translation.text, target, translation
            hits, gate = their_hits, their_gate
    if hits is None:  # no translation could be made: searched as asked
        hits, gate = search(question, language)
    weight = Counter()
    for hit, evidence in zip(hits, gate["passages"]):
        if hit.language:
            weight[hit.language] += evidence["strength"]
    mostly = weight.most_common(1)
    if mostly and mostly[0][0] != asked_in and mostly[0][0] in versions:
        asked_in = mostly[0][0]
        searched, question_translation = versions[asked_in]
        gate = retrieval_evidence(searcher, searched, hits, asked_in)
    return searched, asked_in, question_translation, hits, gate


# --- anchored answers --------------------------------------------------------------

_judges: dict[str, EntailmentJudge] = {}
_judges_loading = threading.Lock()
JUDGE_CONTEXT = 2048  # tokens: the judge reads one quote in its context and one claim


def load_judge(name: str) -> EntailmentJudge:
    """The entailment judge on model `name`, loaded once per process on a
    generator of its own (load_generator(own=True)): never the instance
    that writes an answer, even when it is the same model, since it judges
    while the writer is still writing."""
    with _judges_loading:
        if name not in _judges:
            from readingroom.models.generate import load_generator

            _judges[name] = EntailmentJudge(load_generator(name, own=True, n_ctx=JUDGE_CONTEXT))
        return _judges[name]


def judge_name(judge, writer_name: str) -> str:
    """The judging model's name: the one `judge` names, or
    $READINGROOM_JUDGE, or the writer's own model."""
    return judge or os.environ.get(JUDGE_VARIABLE) or writer_name


def judge_for(judge, writer_name: str) -> EntailmentJudge:
    """`judge` when it is one; else the judge on the model `judge_name` gives."""
    if isinstance(judge, EntailmentJudge):
        return judge
    return load_judge(judge_name(judge, writer_name))


def judge_of_meaning(meaning_check: bool | None, judge, writer_name: str) -> EntailmentJudge | None:
    """The judge of the plain answer's meaning check, or None when it is
    off: asked for (True), or by default (None) when the judge's model has a
    shipped calibration (decided by its name, before anything is loaded)."""
    if meaning_check is False:
        return None
    if meaning_check is None:
        if isinstance(judge, EntailmentJudge):
            return judge if judge.calibration is not None else None
        if default_calibration(judge_name(judge, writer_name)) is None:
            return None
    return judge_for(judge, writer_name)


def claim_sentence(claim: CheckedClaim) -> str:
    """A kept claim as a sentence of the answer's body, its [n] before the
    final stop; any [n] of its own is defused, so only the program's count."""
    text = defuse_markers(" ".join(claim.text.split())).rstrip()
    core = text.rstrip(".!?…")
    return f"{core} [{claim.passage}]{text[len(core):] or '.'}"


def anchored_answer(result: Answer, question: str, claims: list[CheckedClaim], written,
                    language: str | None = None) -> Answer:
    """`result` (made as an abstention) filled in from the checked claims:
    the kept claims as its body, their quotes and spans as its citations;
    it abstains when none is kept or none is about the question."""
    result.claims, result.raw = claims, written.raw
    result.tokens = written.tokens
    kept = [c for c in claims if c.kept]
    if kept:
        result.gate["on_topic"] = about_question(question, [c.text for c in kept], result.passages, language)
    if not kept or not result.gate["on_topic"]:
        return result
    cited = sorted({c.passage for c in kept})
    result.body = " ".join(claim_sentence(c) for c in kept)
    result.citations = []
    for n in cited:
        hit = result.passages[n - 1]
        quotes = [{"quote": c.quote, "span": [c.span.start, c.span.end], "support": c.support}
                  for c in kept if c.passage == n]
        result.citations.append({"n": n, "passage_id": hit.passage_id, "citation": hit.citation,
                                 "quote": defuse_markers(quotes[0]["quote"]), "quotes": quotes})
    result.further_reading = further_reading(result.passages, cited)
    result.supported, result.abstained = True, False
    return result


def _searcher(lib_or_searcher):
    from readingroom.search.searcher import Searcher, searcher_for

    if isinstance(lib_or_searcher, Searcher):
        return lib_or_searcher
    return searcher_for(lib_or_searcher)


def on_topic(question: str, checked: Checked, passages, language: str | None = None) -> bool:
    """Whether the checked answer is about the question: some kept claim
    shares a content word with it, not counting the authors' names ("Marx"
    is in both the question and any answer about Marx). A supported answer
    to another question (the model quoting a passage that is near but beside
    the point) is no answer. Question and answer are read in `language`,
    the question's (its stop words: German "die" is no shared content)."""
    return about_question(question, [s.final for s in checked.sentences if s.final and s.kind == "claim"],
                          passages, language)


def about_question(question: str, claims: Sequence[str], passages, language: str | None = None) -> bool:
    """Whether one of `claims` shares a content word with the question,
    the passages' authors' names not counting (see on_topic)."""
    names: set[str] = set()
    for hit in passages:
        for author in (hit.authors or []):
            names |= set(content_words(author, language))
    wanted = set(content_words(question, language)) - names
    if not wanted:
        return True
    return any(set(content_words(claim, language)) & wanted for claim in claims)


def citation_list(checked: Checked, passages) -> list[dict]:
    citations = []
    for n in sorted(checked.cited):
        hit = passages[n - 1]
        citing = [s.final for s in checked.sentences if s.final and n in s.valid]
        citations.append({"n": n, "passage_id": hit.passage_id, "citation": hit.citation,
                          "quote": defuse_markers(best_quote(hit.text, citing, language=hit.language))})
    return citations


def further_reading(passages, numbers: Sequence[int]) -> list[dict]:
    """The documents behind the given passage numbers, in that order, each
    with the citations (and anchors) of its passages."""
    documents: dict[str, dict] = {}
    for n in numbers:
        if not 1 <= n <= len(passages):
            continue
        hit = passages[n - 1]
        entry = documents.setdefault(hit.doc_id, {
            "doc_id": hit.doc_id, "title": hit.title, "author": hit.author, "year": hit.year,
            "url": hit.url, "passages": []})
        entry["passages"].append({"n": n, "citation": hit.citation, "place": place_in_document(hit),
                                  "anchor": hit.anchor})
    return list(documents.values())


def place_in_document(hit) -> str:
    """Where in its document a passage is ("“C.10.2 Does free trade benefit
    everyone?”, ¶5"), so that a reading list names each document once: the
    passage's citation (written by passages.render_citation) after the part
    that names its document, which is made the same way from the hit's
    authors, title and year."""
    document = Citation(author=author_label(author_names(hit)), title=hit.title or "", year=hit.year).document
    citation = hit.citation or ""
    return citation[len(document) + 2:] if citation.startswith(document + ", ") else citation


__all__ = ["Answer", "answer", "answer_stream", "load_judge", "MAX_ANSWER_TOKENS", "JUDGE_VARIABLE"]
