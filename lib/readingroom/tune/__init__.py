"""Tuning: adapting the open models to a group's own texts, measured.

- dataset.py   the one JSONL schema of training examples: export, import, checks
- build.py     examples from the library: generated questions, filtered, with
               cited answers; passage continuations
- lora.py      a LoRA adapter for the generator (peft): held-out split, early
               stopping, checkpoints to resume from
- adapters.py  saved adapters with their cards: list, export, import
- embedder.py  the embedder tuned on (question, passage) pairs, saved as a
               model search can use
- measure.py   before and after, as runs: perplexity, recall@5, answers
- registry.py  where tuned models live, and how their names resolve
"""
