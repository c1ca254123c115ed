"""Evaluation: questions with known answers, metrics, and the runs table.

A questions file is JSON Lines, one question a line:

    {"q": "How did Bonaparte win over the peasants?", "gold": "an exact piece of the text"}

The gold names what answers the question in one of three ways:
- "gold": a substring of a document's text. Runs of whitespace match any
  whitespace, so a span copied from a hard-wrapped file still matches. Every
  passage that overlaps a place where it occurs answers the question, so a
  span that straddles two passages is found in either.
- "gold_doc": a document, by doc_id, key or exact title: any of its passages.
- "gold_section": a heading: any passage under it (at any depth).

Retrieval metrics, per question then averaged (relevance is yes or no):
- recall@k: 1 if a gold passage is among the first k, else 0 (the share of
  questions answered within k; with many gold passages per question this is
  the useful sense of recall);
- MRR@10: 1 / the rank of the first gold passage, 0 if not in the first 10;
- nDCG@10: discounted gain of the gold passages in the first 10 over the best
  possible (all gold passages first).
"""
from __future__ import annotations

import hashlib
import json
import math
import re
import time
import uuid
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from readingroom.library.store import Library
from readingroom.hashing import file_sha256

GOLD_KEYS = ("gold", "gold_doc", "gold_section")
RECALL_AT = (1, 5, 10)


class QuestionsError(ValueError):
    pass


@dataclass
class Question:
    q: str
    gold: str | None = None
    gold_doc: str | None = None
    gold_section: str | None = None
    extra: dict = field(default_factory=dict)  # any other fields of the line (lang, file, why ...)


def load_questions(path: str | Path, require_gold: bool = True) -> list[Question]:
    """Read a questions file; a bad line is reported with the file, the line
    number and what is wrong with it."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()
    except FileNotFoundError:
        raise QuestionsError(f"{path}: no such questions file") from None
    except UnicodeDecodeError as e:
        raise QuestionsError(f"{path}: not UTF-8 text ({e})") from None
    questions = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as e:
            raise QuestionsError(f"{path}:{number}: not valid JSON ({e.msg})") from None
        if not isinstance(record, dict):
            raise QuestionsError(f"{path}:{number}: each line must be a JSON object")
        q = record.get("q")
        if not isinstance(q, str) or not q.strip():
            raise QuestionsError(f"{path}:{number}: 'q' (the question) must be a non-empty string")
        golds = {k: record.get(k) for k in GOLD_KEYS if record.get(k) is not None}
        for key, value in golds.items():
            if not isinstance(value, str) or not value.strip():
                raise QuestionsError(f"{path}:{number}: {key!r} must be a non-empty string")
        if require_gold and not golds:
            raise QuestionsError(f"{path}:{number}: give one of {', '.join(GOLD_KEYS)} (what answers it)")
        extra = {k: v for k, v in record.items() if k != "q" and k not in GOLD_KEYS}
        questions.append(Question(q.strip(), **golds, extra=extra))
    if not questions:
        raise QuestionsError(f"{path}: no questions in it")
    return questions


def gold_pattern(gold: str) -> re.Pattern:
    """The gold text with each run of whitespace matching any run of it."""
    return re.compile(r"\s+".join(re.escape(word) for word in gold.split()))


class GoldFinder:
    """The passages that answer each question, found once per library."""

    def __init__(self, lib: Library):
        self.lib = lib
        self._texts = None

    def passages(self, question: Question) -> set[str]:
        found: set[str] = set()
        if question.gold:
            found |= self._spans(question.gold)
        if question.gold_doc:
            found |= {r[0] for r in self.lib.con.execute(
                "SELECT p.passage_id FROM passages p JOIN documents d USING (doc_id) "
                "WHERE d.doc_id = $g OR d.key = $g OR d.title = $g", {"g": question.gold_doc}).fetchall()}
        if question.gold_section:
            found |= {r[0] for r in self.lib.con.execute(
                "SELECT passage_id FROM passages WHERE list_contains(section, ?)",
                [question.gold_section]).fetchall()}
        return found

    def _spans(self, gold: str) -> set[str]:
        if self._texts is None:
            self._texts = self.lib.con.execute("SELECT doc_id, text FROM documents").fetchall()
        pattern = gold_pattern(gold)
        found = set()
        for doc_id, text in self._texts:
            for match in pattern.finditer(text):
                found |= {r[0] for r in self.lib.con.execute(
                    "SELECT passage_id FROM passages WHERE doc_id = ? AND char_start < ? AND char_end > ?",
                    [doc_id, match.end(), match.start()]).fetchall()}
        return found


def first_relevant_rank(ranked: list[str], relevant: set[str]) -> int | None:
    return next((i for i, pid in enumerate(ranked, start=1) if pid in relevant), None)


def ndcg_at(ranked: list[str], relevant: set[str], k: int = 10) -> float:
    if not relevant:
        return 0.0
    dcg = sum(1.0 / math.log2(i + 1) for i, pid in enumerate(ranked[:k], start=1) if pid in relevant)
    ideal = sum(1.0 / math.log2(i + 1) for i in range(1, min(len(relevant), k) + 1))
    return dcg / ideal


def retrieval_metrics(results: list[dict], k: int = 10) -> dict[str, float]:
    """Averages over per-question results (each with 'rank' and 'ndcg')."""
    n = len(results)
    if n == 0:
        return {}
    ranks = [r["rank"] for r in results]
    metrics = {f"recall@{c}": sum(1 for r in ranks if r is not None and r <= c) / n for c in RECALL_AT if c <= k}
    metrics[f"mrr@{k}"] = sum(1.0 / r for r in ranks if r is not None and r <= k) / n
    metrics[f"ndcg@{k}"] = float(np.mean([r["ndcg"] for r in results]))
    metrics["questions"] = n
    return metrics


@dataclass
class Run:
    kind: str
    metrics: dict
    settings: dict
    model: str | None
    corpus_sha256: str
    dataset: str | None = None
    dataset_sha256: str | None = None
    details: list = field(default_factory=list)
    seconds: float = 0.0
    started: datetime = field(default_factory=lambda: datetime.now(timezone.utc).replace(tzinfo=None))
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:16])

    def summary(self) -> str:
        numbers = ", ".join(f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}" for k, v in self.metrics.items())
        return f"{self.kind} run {self.run_id} ({self.seconds:.1f} s): {numbers}"


def record_run(lib: Library, run: Run) -> None:
    with lib.transaction():
        lib.con.execute(
            "INSERT INTO runs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [run.run_id, run.kind, run.started, run.seconds, run.model, run.corpus_sha256, run.dataset,
             run.dataset_sha256, json.dumps(run.settings, default=str), json.dumps(run.metrics),
             json.dumps(run.details, ensure_ascii=False, default=str)],
        )


def runs(lib: Library, kind: str | None = None):
    """The recorded runs, newest first, with their metrics as columns (a DataFrame)."""
    import pandas as pd

    rows = lib.con.execute(
        "SELECT run_id, kind, started, seconds, model, dataset, settings, metrics FROM runs "
        "WHERE $kind IS NULL OR kind = $kind ORDER BY started DESC", {"kind": kind}).df()
    if rows.empty:
        return rows
    metrics = pd.DataFrame([json.loads(m) for m in rows.pop("metrics")], index=rows.index)
    return pd.concat([rows, metrics], axis=1)


def dataset_of(questions) -> tuple[list[Question], str, str]:
    """(questions, name, sha256) of a questions file or of a list of Questions."""
    if isinstance(questions, (str, Path)):
        return load_questions(questions), str(questions), file_sha256(Path(questions))
    questions = list(questions)
    digest = hashlib.sha256(json.dumps([asdict(q) for q in questions], sort_keys=True).encode()).hexdigest()
    return questions, f"{len(questions)} questions given inline", digest


def evaluate_retrieval(lib: Library, questions, *, searcher=None, k: int = 10,
                       mode: str | None = None, limit: int | None = None, record: bool = True,
                       progress: bool = True, label: str | None = None) -> Run:
    """Run every question (a questions file, or a list of Questions) through
    search and measure where the gold passages land. `limit` takes the first
    n questions (for quick runs); the run, its settings and per-question
    ranks go to the runs table unless record=False."""
    from readingroom.search.searcher import corpus_fingerprint, searcher_for

    questions, dataset, dataset_sha256 = dataset_of(questions)
    questions = questions[:limit]
    searcher = searcher or searcher_for(lib)
    finder = GoldFinder(lib)
    started = time.perf_counter()
    details = []
    for question in tqdm(questions, desc="retrieval eval", unit="q", disable=not progress):
        relevant = finder.passages(question)
        hits = searcher.search(question.q, k=k, mode=mode)
        ranked = [h.passage_id for h in hits]
        details.append({"q": question.q, "gold_passages": len(relevant),
                        "rank": first_relevant_rank(ranked, relevant),
                        "ndcg": ndcg_at(ranked, relevant, k), "top": ranked[:3]})
    unmatched = [d["q"] for d in details if d["gold_passages"] == 0]
    metrics = retrieval_metrics(details, k)
    metrics["gold_not_in_library"] = len(unmatched)
    settings = asdict(searcher.settings) | {"mode": mode or searcher.settings.mode, "k": k, "limit": limit}
    if searcher.reranker is not None:
        settings["reranker"] = getattr(searcher.reranker, "name", type(searcher.reranker).__name__)
    if label:
        settings["label"] = label
    embedder = searcher.index.embedder
    run = Run("retrieval", metrics, settings, embedder.name if embedder else None,
              corpus_fingerprint(lib), dataset, dataset_sha256, details, seconds=time.perf_counter() - started)
    if record:
        record_run(lib, run)
    return run


class MemoReranker:
    """A reranker that remembers its scores, so that comparing several
    settings on the same questions pays for the model once."""

    def __init__(self, reranker):
        self.reranker, self.name, self._scores = reranker, reranker.name, {}

    def score(self, query: str, texts: list[str]):
        key = (query, tuple(texts))
        if key not in self._scores:
            self._scores[key] = self.reranker.score(query, texts)
        return self._scores[key]


def compare_retrieval(lib: Library, questions, configurations: dict, *, searcher=None, k: int = 10,
                      record: bool = True, progress: bool = True):
    """Evaluate the same questions under several configurations, each a dict
    of Settings fields plus an optional "reranker"; one row of metrics per
    configuration (a DataFrame), each also recorded as a run."""
    import pandas as pd

    from readingroom.search.searcher import Settings, searcher_for

    searcher = searcher or searcher_for(lib)
    rows = {}
    for label, configuration in configurations.items():
        configuration = dict(configuration)
        searcher.reranker = configuration.pop("reranker", None)
        searcher.settings = Settings(**configuration)
        run = evaluate_retrieval(lib, questions, searcher=searcher, k=k, record=record, progress=progress,
                                 label=label)
        rows[label] = run.metrics | {"seconds per question": run.seconds / max(1, run.metrics["questions"])}
    searcher.reranker, searcher.settings = None, Settings()
    return pd.DataFrame(rows).T


def plot_metrics(table, metrics=("recall@1", "recall@5", "recall@10", "mrr@10", "ndcg@10"), title=None):
    """Grouped bars: one group per metric, one bar per configuration."""
    from readingroom.explore.stats import new_figure

    fig, (ax,) = new_figure(8, 3.6)
    labels = list(table.index)
    width = 0.8 / len(labels)
    for i, label in enumerate(labels):
        xs = np.arange(len(metrics)) + (i - (len(labels) - 1) / 2) * width
        ax.bar(xs, [table.loc[label, m] for m in metrics], width, label=label)
    ax.set_xticks(np.arange(len(metrics)), metrics)
    ax.set_ylim(0, 1)
    ax.set_ylabel("share of questions (nDCG: gain)")
    ax.legend(fontsize="small", ncols=2)
    if title:
        ax.set_title(title)
    return fig


# --- answers -------------------------------------------------------------------------

def answer_metrics(details: list[dict]) -> dict:
    """The answer metrics over per-question details (see evaluate_answers)."""
    answerable = [d for d in details if d["answerable"]]
    unanswerable = [d for d in details if not d["answerable"]]
    markers = sum(d["markers"] for d in details)
    valid = sum(d["valid_markers"] for d in details)
    claims = sum(d["claims"] for d in details)
    supported = sum(d["supported_claims"] for d in details)
    asked = [d for d in details if d["asked"]]
    counted = [d for d in details if d.get("tokens")]

    def share(part, whole):
        return round(part / whole, 4) if whole else None

    return {
        "citation_validity": share(valid, markers),
        "support": share(supported, claims),
        "gold_citation_rate": share(sum(1 for d in answerable if d["gold_cited"]), len(answerable)),
        "gold_in_passages": share(sum(1 for d in answerable if d["gold_given"]), len(answerable)),
        "answered_rate": share(sum(1 for d in answerable if not d["abstained"]), len(answerable)),
        "abstention_accuracy": share(sum(1 for d in unanswerable if d["abstained"]), len(unanswerable)),
        "gate_abstention_accuracy": share(sum(1 for d in unanswerable if not d["asked"]), len(unanswerable)),
        "attribution_added": share(sum(d["attribution_added"] for d in details),
                                   sum(d["kept_claims"] for d in details)),
        "invented_citations": sum(d["invented"] for d in details),
        "seconds_per_answer": share(sum(d["seconds"] for d in asked), len(asked)),
        "seconds_per_question": share(sum(d["seconds"] for d in details), len(details)),
        "prompt_tokens": share(sum(d["tokens"]["prompt"] or 0 for d in counted), len(counted)),
        "completion_tokens": share(sum(d["tokens"]["completion"] or 0 for d in counted), len(counted)),
        "answerable": len(answerable),
        "unanswerable": len(unanswerable),
        "citation_markers": markers,
        "claim_sentences": claims,
    }


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
      (readingroom.support);
    - gold_citation_rate: the share of answerable questions whose checked
      answer cites a passage that overlaps the gold (GoldFinder), next to
      gold_in_passages, the share where such a passage was given at all;
    - abstention_accuracy: the share of unanswerable questions answered with
      "the sources do not answer" (gate_abstention_accuracy: of those, by
      the retrieval gate alone, without asking the model);
    - answered_rate: the share of answerable questions not abstained on.

    `limit` takes the first n questions of each file. The run goes to the
    runs table as kind "answers" unless record=False."""
    from readingroom.answer.check import count_markers
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
    details = []
    for question, answerable in tqdm(questions, desc="answers eval", unit="q", disable=not progress):
        result = answer(searcher, question.q, generator=generator, k=k)
        markers, valid = count_markers(result.raw, len(result.passages)) if result.raw else (0, 0)
        claims = [s for s in result.sentences if s.kind == "claim"]
        gold = finder.passages(question) if answerable else set()
        cited_ids = {c["passage_id"] for c in result.citations}
        details.append({
            "q": question.q, "answerable": answerable, "asked": bool(result.raw) or result.gate.get("passed", False),
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
                           "supported": s.supported} for s in result.sentences],
            "passages": [h.passage_id for h in result.passages],
        })
    metrics = answer_metrics(details)
    settings = {"k": k, "limit": limit, "unanswerable_file": unanswerable_file}
    from readingroom.answer.check import scoring
    from readingroom.search import relevance

    settings |= {"gate_threshold": relevance.GATE_THRESHOLD, "gate_cosine_weight": relevance.GATE_COSINE_WEIGHT,
                 "support_threshold": scoring.SUPPORT_THRESHOLD,
                 "lexical_weight": scoring.LEXICAL_WEIGHT,
                 "embedder": searcher.index.embedder.name if searcher.index.embedder else None}
    if label:
        settings["label"] = label
    run = Run("answers", metrics, settings, getattr(generator, "name", None), corpus_fingerprint(lib),
              dataset, dataset_sha256, details, seconds=time.perf_counter() - started)
    if record:
        record_run(lib, run)
    return run
