"""Before and after, recorded in the library's runs table (evaluate.runs.Run).

- "lora" runs: a training run, its held-out loss before and after and its
  speed, the loss curve in the details;
- "perplexity" runs: held-out perplexity of a generator (base or adapter)
  on corpus passages it was not trained on (the continuation of each
  passage given its start), one run per model so they compare in `runs`;
- "embedder-tuning" runs: recall@5 of held-out generated questions before
  and after tuning;
- answers with an adapter are measured by evaluate.answers.evaluate_answers as for
  any generator (citation validity, support), their runs kind "answers".
"""
from __future__ import annotations

import math
import time

from readingroom.evaluate.runs import Run, record_run
from readingroom.library.store import Library
from readingroom.tune.dataset import Example, dataset_sha256
from readingroom.tune.lora import encode, load_base, mean_loss


def corpus_fingerprint(lib: Library) -> str:
    from readingroom.search.searcher import corpus_fingerprint as fingerprint
    return fingerprint(lib)


def record_training(lib: Library, result, base: str, settings, name: str | None = None) -> Run:
    metrics = {"steps": result.steps, "held_out_loss_before": result.base_eval_loss,
               "held_out_loss_after": result.best_eval_loss,
               "held_out_perplexity_before": math.exp(result.base_eval_loss),
               "held_out_perplexity_after": math.exp(result.best_eval_loss) if result.best_eval_loss else None,
               "steps_per_second": result.steps_per_second, "stopped": result.stopped}
    run = Run("lora", metrics, settings.to_dict() | {"adapter": name, "device": result.device}, base,
              corpus_fingerprint(lib), f"{result.train_examples + result.held_out_examples} examples",
              result.dataset_sha256, result.history, seconds=result.seconds)
    record_run(lib, run)
    return run


def held_out_perplexity(lib: Library, model: str, examples: list[Example], *, max_length: int = 512,
                        record: bool = True, label: str | None = None) -> Run:
    """Perplexity of `model` (a generator or "adapter:NAME") on `examples`
    (continuations of held-out passages), by transformers."""
    from readingroom.models.generate import with_adapter
    from readingroom.models.resolve import resolve

    started = time.perf_counter()
    resolved = resolve(model, role="generator")
    network, tokenizer, _ = load_base(resolved)
    if resolved.adapter is not None:
        network = with_adapter(network, resolved.adapter)
    rows = [r for r in (encode(tokenizer, e, max_length) for e in examples) if r]
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    loss = mean_loss(network, rows, pad, str(network.device))
    run = Run("perplexity", {"perplexity": math.exp(loss), "loss": loss, "examples": len(rows)},
              {"max_length": max_length, "label": label}, resolved.name, corpus_fingerprint(lib),
              f"{len(examples)} held-out examples", dataset_sha256(examples), seconds=time.perf_counter() - started)
    if record:
        record_run(lib, run)
    return run


def record_embedder(lib: Library, result, base: str, examples: list[Example]) -> Run:
    run = Run("embedder-tuning", {"recall@5_before": result.recall_before, "recall@5_after": result.recall_after,
                                  "held_out_questions": result.held_out_questions, "train_pairs": result.train_pairs,
                                  "steps": result.steps},
              {"base": base, "tuned": result.name}, result.name or base, corpus_fingerprint(lib),
              f"{len(examples)} examples", dataset_sha256(examples), [{"step": i + 1, "loss": l}
                                                                      for i, l in enumerate(result.losses)],
              seconds=result.seconds)
    record_run(lib, run)
    return run
