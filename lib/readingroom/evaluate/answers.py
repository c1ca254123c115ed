"""Checked answers measured: citation validity, support, gold citation and
abstention, on questions with gold and questions the library cannot answer."""
from __future__ import annotations

import time
from pathlib import Path

from tqdm.auto import tqdm

from readingroom.evaluate.metrics import answer_metrics
from readingroom.evaluate.questions import GoldFinder, dataset_of, load_questions
from readingroom.evaluate.runs import Run, record_run
from readingroom.hashing import file_sha256
from readingroom.library.store import Library


def evaluate_answers(lib: Library, questions_file, *, unanswerable=None,
                     searcher=None, generator=None, k: int = 5, limit: int | None = None, record: bool = True,
                     progress: bool = True, label: str | None = None) -> Run:
    """Answer every question of `questions_file` (with gold; a file or a
    list of Questions) and of `unanswerable` (questions the library cannot
    answer; a file or a list) and measure:

    - citation_validity: the share of [n] markers the model wrote that
      point to a passage it was given;
    - support: the share of the model's claim sentences (not connectives,
      not "the sources do not say") supported by what they cite
      (readingroom.answer.check: by their words, and by the judge where the
      meaning check is on);
    - gold_citation_rate: the share of answerable questions whose checked
      answer cites a passage that overlaps the gold (GoldFinder), next to
      gold_in_passages, the share where such a passage was given at all;
    - abstention_accuracy: the share of unanswerable questions answered with
      "the sources do not answer" (gate_abstention_accuracy: of those, by
      the retrieval gate alone, without asking the model);
    - answered_rate: the share of answerable questions not abstained on.

    `limit` takes the first n questions of each file. The run goes to the
    runs table as kind "answers" unless record=False."""
    from readingroom.answer.pipeline import answer
    from readingroom.search.searcher import corpus_fingerprint, searcher_for

    with_gold, dataset, dataset_sha256 = dataset_of(questions_file)
    questions = [(q, True) for q in with_gold[:limit]]
    unanswerable_file = None
    if unanswerable is not None:
        if isinstance(unanswerable, (str, Path)):
            unanswerable_file = f"{unanswerable} (sha256 {file_sha256(Path(unanswerable))})"
            unanswerable = load_questions(unanswerable, require_gold=False)
        questions += [(q, False) for q in list(unanswerable)[:limit]]
    searcher = searcher or searcher_for(lib)
    if generator is None:
        from readingroom.models.generate import load_generator

        generator = load_generator()
    finder = GoldFinder(lib)
    started = time.perf_counter()
    details, judges = [], set()
    for question, answerable in tqdm(questions, desc="answers eval", unit="q", disable=not progress):
        result = answer(searcher, question.q, generator=generator, k=k)
        details.append(answer_detail(result, question, answerable, finder))
        judges.add(result.judge)
    metrics = answer_metrics(details)
    settings = {"k": k, "limit": limit, "unanswerable_file": unanswerable_file}
    from readingroom.answer.check import scoring
    from readingroom.search import relevance

    settings |= {"gate_threshold": relevance.GATE_THRESHOLD, "gate_cosine_weight": relevance.GATE_COSINE_WEIGHT,
                 "support_threshold": scoring.SUPPORT_THRESHOLD,
                 "lexical_weight": scoring.LEXICAL_WEIGHT,
                 "embedder": searcher.index.embedder.name if searcher.index.embedder else None,
                 # the meaning check's judge (answer.pipeline: on by default with a calibrated one)
                 "meaning_judge": ", ".join(sorted(j for j in judges if j)) or None}
    if label:
        settings["label"] = label
    run = Run("answers", metrics, settings, getattr(generator, "name", None), corpus_fingerprint(lib),
              dataset, dataset_sha256, details, seconds=time.perf_counter() - started)
    if record:
        record_run(lib, run)
    return run


def answer_detail(result, question, answerable: bool, finder: GoldFinder) -> dict:
    """What one checked answer did, as evaluate_answers records it (and
    answer_metrics counts it). `kind` and `corpus` are copied from the
    question's line when it has them (near-domain or off-topic; which texts)."""
    from readingroom.answer.check import count_markers

    markers, valid = count_markers(result.raw, len(result.passages)) if result.raw else (0, 0)
    claims = [s for s in result.sentences if s.kind == "claim"]
    gold = finder.passages(question) if answerable else set()
    cited_ids = {c["passage_id"] for c in result.citations}
    return {
        "q": question.q, "answerable": answerable,
        **{key: question.extra[key] for key in ("kind", "corpus") if key in question.extra},
        "asked": bool(result.raw) or result.gate.get("passed", False),
        "abstained": result.abstained, "gate": result.gate.get("strength"),
        "markers": markers, "valid_markers": valid, "invented": len(result.invented_citations),
        "claims": len(claims), "supported_claims": sum(1 for s in claims if s.supported),
        "kept_claims": sum(1 for s in claims if s.final),
        "attribution_added": sum(1 for s in claims if s.final and s.attribution_added),
        "gold_passages": len(gold), "gold_given": any(h.passage_id in gold for h in result.passages),
        "gold_cited": bool(gold & cited_ids), "seconds": round(result.seconds, 3), "tokens": result.tokens,
        "raw": result.raw, "answer": result.body,
        "sentences": [{"text": s.text, "kind": s.kind, "cited": s.cited, "best": s.best,
                       "support": s.support, "lexical": s.lexical, "cosine": s.cosine,
                       "supported": s.supported, "meaning": s.meaning, "final": s.final}
                      for s in result.sentences],
        "passages": [h.passage_id for h in result.passages],
    }
