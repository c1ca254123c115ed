"""The embedder tuned on the library's own (question, passage) pairs.

Each generated question (build.py) and the passage it was asked of make a
pair; sentence-transformers' MultipleNegativesRankingLoss treats the other
passages of a batch as the wrong answers (in-batch negatives), so nothing
needs labelling. Questions of some passages are held out (dataset.split),
and recall@5 of those questions among all the library's passages is
measured before and after, by vectors alone (the embedder's own part of
search).

The tuned model is saved as a sentence-transformers folder with
model.safetensors and a card pinning its sha256, under
tuned_dir()/embedders/NAME; "embedder:NAME" then works wherever an embedder
is named (embed, search --embedder, eval retrieval), its vectors stored
under its own identity beside the base model's.
"""
from __future__ import annotations

import shutil
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from readingroom.models.embed import load_embedder
from readingroom.library.store import Library
from readingroom.models.catalogue import DEFAULT_EMBEDDER, SAFETENSORS_WEIGHTS
from readingroom.hashing import file_sha256
from readingroom.tune.dataset import Example, dataset_sha256, split
from readingroom.tune.registry import check_name, folder_of, write_card


@dataclass(frozen=True)
class EmbedderSettings:
    learning_rate: float = 2e-5
    batch_size: int = 16
    epochs: int = 1
    held_out: float = 0.2
    seed: int = 0


@dataclass
class EmbedderResult:
    folder: Path | None
    name: str | None
    recall_before: float
    recall_after: float
    held_out_questions: int
    train_pairs: int
    steps: int
    losses: list[float] = field(default_factory=list)
    seconds: float = 0.0


def pairs_of(examples: list[Example]) -> list[tuple[str, str]]:
    return [(e.instruction, e.sources[0]["text"]) for e in examples if e.kind == "question" and e.sources]


def recall_at(encoder_model, questions: list[tuple[str, str]], passage_ids, passage_texts: list[str],
              k: int = 5, batch_size: int = 32) -> float:
    """The share of questions whose own passage is among the k passages
    closest to it, over `passage_texts` (vectors alone)."""
    if not questions:
        return float("nan")
    vectors = encoder_model.encode_documents(passage_texts, batch_size)
    where = {text: i for i, text in enumerate(passage_texts)}
    found = 0
    for question, text in questions:
        q = encoder_model.encode_query(question)
        top = np.argpartition(-(vectors @ q), min(k, len(vectors) - 1))[:k]
        found += where.get(text, -1) in set(top.tolist())
    return found / len(questions)


def library_texts(lib: Library) -> list[str]:
    return [r[0] for r in lib.con.execute("SELECT DISTINCT text FROM passages ORDER BY text").fetchall()]


def tune_embedder(lib: Library, examples: list[Example], *, base: str = DEFAULT_EMBEDDER, name: str | None = None,
                  settings: EmbedderSettings = EmbedderSettings(), progress: bool = True) -> EmbedderResult:
    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss

    started = time.perf_counter()
    train, held = split([e for e in examples if e.kind == "question"], settings.held_out, settings.seed)
    train_pairs, held_pairs = pairs_of(train), pairs_of(held)
    texts = library_texts(lib)
    before_model = load_embedder(base)
    recall_before = recall_at(before_model, held_pairs, None, texts)

    # A fresh copy to train: the loaded one stays as it is for search.
    from readingroom.models.quiet import quiet_transformers

    with quiet_transformers():
        model = SentenceTransformer(str(before_model.resolved.path), device="cpu", local_files_only=True)
    loss_fn = MultipleNegativesRankingLoss(model)
    optimizer = torch.optim.AdamW(model.parameters(), lr=settings.learning_rate)
    rng = np.random.default_rng(settings.seed)
    losses = []
    steps = settings.epochs * max(1, len(train_pairs) // settings.batch_size)
    bar = tqdm(total=steps, desc="embedder", unit="step", disable=not progress)
    model.train()
    for _ in range(settings.epochs):
        order = rng.permutation(len(train_pairs))
        for start in range(0, max(1, len(order) - settings.batch_size + 1), settings.batch_size):
            batch = [train_pairs[i] for i in order[start:start + settings.batch_size]]
            features = [model.preprocess([q for q, _ in batch]), model.preprocess([p for _, p in batch])]
            loss = loss_fn(features, labels=None)
            loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            losses.append(float(loss.detach()))
            bar.update(1)
            bar.set_postfix(loss=f"{losses[-1]:.3f}")
    bar.close()
    model.eval()
    after = _Wrapped(model, before_model)
    recall_after = recall_at(after, held_pairs, None, texts)
    result = EmbedderResult(None, None, recall_before, recall_after, len(held_pairs), len(train_pairs),
                            len(losses), losses, time.perf_counter() - started)
    if name:
        with quiet_transformers():
            result.folder = save_embedder(name, model, before_model, examples, settings, result)
        result.name = f"embedder:{name}"
    return result


class _Wrapped:
    """A trained SentenceTransformer with the Embedder's two encode calls."""

    def __init__(self, model, like):
        self.model, self.like = model, like

    def encode_documents(self, texts, batch_size=32):
        return self.model.encode(texts, prompt_name=self.like.document_prompt, batch_size=batch_size,
                                 normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False)

    def encode_query(self, text):
        return self.model.encode([text], prompt_name=self.like.query_prompt, normalize_embeddings=True,
                                 convert_to_numpy=True, show_progress_bar=False)[0]


def save_embedder(name: str, model, base, examples, settings: EmbedderSettings, result: EmbedderResult) -> Path:
    check_name(name)
    target = folder_of("embedder", name)
    staging = target.with_name(f".{name}.saving")
    shutil.rmtree(staging, ignore_errors=True)
    staging.parent.mkdir(parents=True, exist_ok=True)
    model.save(str(staging), safe_serialization=True)
    card = {"name": name, "kind": "tuned-embedder", "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "base_model": base.name, "base_sha256": base.identity,
            "sha256": file_sha256(staging / SAFETENSORS_WEIGHTS),
            "dataset": {"sha256": dataset_sha256(examples), "examples": len(examples)},
            "settings": asdict(settings),
            "metrics": {"held_out_recall@5_before": result.recall_before,
                        "held_out_recall@5_after": result.recall_after,
                        "held_out_questions": result.held_out_questions, "train_pairs": result.train_pairs}}
    write_card(staging, card)
    if target.exists():
        shutil.rmtree(target)
    staging.parent.mkdir(parents=True, exist_ok=True)
    staging.rename(target)
    return target
