"""The metrics of a retrieval or answers run, from its per-question details.

Retrieval metrics, per question then averaged (relevance is yes or no):
- recall@k: 1 if a gold passage is among the first k, else 0 (the share of
  questions answered within k; with many gold passages per question this is
  the useful sense of recall);
- MRR@10: 1 / the rank of the first gold passage, 0 if not in the first 10;
- nDCG@10: discounted gain of the gold passages in the first 10 over the best
  possible (all gold passages first).

The answer metrics are described in evaluate.answers.evaluate_answers.
"""
from __future__ import annotations

import math

import numpy as np

RECALL_AT = (1, 5, 10)
Z95 = 1.959963984540054


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


def perplexity(loss: float | None) -> float | None:
    """The perplexity of a mean cross-entropy loss (in nats per token)."""
    return None if loss is None else math.exp(loss)


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
    near_domain = [d for d in unanswerable if d.get("kind") == "near-domain"]
    answered = [d for d in details if not d["abstained"]]

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
        # unanswerable questions marked near the domain (unanswerable-v2.jsonl's kind)
        "near_domain_abstention": share(sum(1 for d in near_domain if d["abstained"]), len(near_domain)),
        # answers (not abstentions) whose every [n] points to a passage the model was given
        "answers_all_citations_valid": share(sum(1 for d in answered if d["valid_markers"] == d["markers"]),
                                             len(answered)),
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


def wilson_interval(successes: int, n: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval of a proportion (95% by default); (0, 1) for n = 0."""
    if n == 0:
        return 0.0, 1.0
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)
