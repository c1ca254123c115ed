"""LoRA training speed: our loop (readingroom.tune.lora.train_lora) against a
plain peft + transformers loop, on the same model, data, batches and settings.

    python bench/tune.py [--model NAME] [--steps 12] [--batch-size 4] [--rounds 2]

The default model is the test model (smollm2-135m-instruct-q4_1);
`--model qwen2.5-coder-0.5b-instruct-q4_k_m` measures a model users train.
The data: the tests' paragraphs (tests/tune_library.py) as continuation
examples and one question per paragraph, in the answer prompt.

- plain: load the same bf16 copy, get_peft_model with the same LoraConfig,
  AdamW, then for each step: forward with labels, backward, step, zero_grad,
  over the very batches our loop takes (same rows, same order, same padding);
- ours: train_lora with held-out scoring and checkpoints put at the end
  (eval_every = checkpoint_every = steps), so both time the same work per
  step; its steps/s is timed around each step (batch, forward, backward,
  optimizer, bookkeeping), as the plain loop's is.
What our loop adds besides (the held-out scores, the checkpoints) is printed
apart: it is work the plain loop does not do at all.
Rounds alternate plain and ours; ours/plain is the median of the ratios of
back-to-back pairs. The aim is >= 0.95.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "lib"))
sys.path.insert(0, str(ROOT / "tests"))
os.environ.setdefault("READINGROOM_TUNED", tempfile.mkdtemp(prefix="bench-tune-"))

import tune_library  # noqa: E402
from readingroom.models.generate import load_generator  # noqa: E402,F401  (sets libgomp's wait policy first)
from readingroom.models.catalogue import TEST_GENERATOR  # noqa: E402
from readingroom.tune.dataset import Example, split  # noqa: E402
from readingroom.tune.lora import (LoraSettings, batch_rows, collate, encode, load_base, lora_model,  # noqa: E402
                                   train_lora)


def examples() -> list[Example]:
    made = []
    for key, texts in tune_library.PARAGRAPHS.items():
        for i, text in enumerate(texts):
            pid = f"{key}-{i}"
            source = [{"passage_id": pid, "citation": f"{key}, part {i + 1}", "text": text}]
            half = text.index(". ") + 1
            made.append(Example(text[:half], text[half:].strip(), source, {"kind": "continuation", "passage_id": pid}))
            made.append(Example(f"What does part {i + 1} of {key} say?", f"It says that {text.split('. ')[0]}. [1]",
                                source, {"kind": "manual", "passage_id": pid}))
    return made


def plain_loop(model: str, data: list[Example], settings: LoraSettings) -> float:
    """Steps/s of a plain peft loop over the batches train_lora takes."""
    import torch

    network, tokenizer, _ = load_base(model)
    train, _ = split(data, settings.held_out, settings.seed)
    rows = [r for r in (encode(tokenizer, e, settings.max_length) for e in train) if r]
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    torch.manual_seed(settings.seed)
    network = lora_model(network, settings)
    optimizer = torch.optim.AdamW([p for p in network.parameters() if p.requires_grad], lr=settings.learning_rate)
    network.train()
    timed = 0.0
    for step in range(settings.max_steps):
        tick = time.perf_counter()
        batch = collate([rows[i] for i in batch_rows(len(rows), settings.batch_size, step, settings.seed)],
                        pad, network.device)
        network(**batch).loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        timed += time.perf_counter() - tick
    return settings.max_steps / timed


def ours(model: str, data: list[Example], settings: LoraSettings) -> tuple[float, float]:
    """(steps/s of the training steps, seconds of everything else in the call)."""
    result = train_lora(model, data, settings, progress=False)
    return result.steps_per_second, result.seconds - result.steps / result.steps_per_second


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default=TEST_GENERATOR)
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    settings = LoraSettings(max_steps=args.steps, batch_size=args.batch_size, eval_every=args.steps,
                            checkpoint_every=args.steps, max_length=512)
    data = examples()
    print(f"{args.model}: {len(data)} examples, {args.steps} steps of batch {args.batch_size}, "
          f"rank {settings.rank} on {', '.join(settings.targets)}, {args.rounds} rounds", flush=True)
    ratios, plain_rates, our_rates, extras = [], [], [], []
    for round_ in range(args.rounds):
        p = plain_loop(args.model, data, settings)
        o, extra = ours(args.model, data, settings)
        plain_rates.append(p)
        our_rates.append(o)
        extras.append(extra)
        ratios.append(o / p)
        print(f"round {round_ + 1}: plain {p:.3f} steps/s, ours {o:.3f} steps/s ({o / p:.3f})", flush=True)
    print(f"plain peft loop: {statistics.median(plain_rates):.3f} steps/s; ours: {statistics.median(our_rates):.3f} "
          f"steps/s; ours/plain {statistics.median(ratios):.2f} (aim >= 0.95)")
    print(f"besides, ours spent {statistics.median(extras):.1f} s loading, scoring the held-out examples "
          "(before and after) and saving the adapter")


if __name__ == "__main__":
    main()
