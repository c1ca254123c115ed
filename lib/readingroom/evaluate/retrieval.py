"""Search measured on questions with known answers: one run, or several
configurations compared, and their metrics as a figure."""
from __future__ import annotations

import time
from dataclasses import asdict

import numpy as np
from tqdm.auto import tqdm

from readingroom.evaluate.metrics import first_relevant_rank, ndcg_at, retrieval_metrics
from readingroom.evaluate.questions import GoldFinder, dataset_of
from readingroom.evaluate.runs import Run, record_run
from readingroom.library.store import Library
from readingroom.viz import new_figure


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
