"""Rerankers: a second, slower look at the best few passages a search found.

A reranker is anything with a `name` and `score(query, texts) -> scores`
(higher is better); search.Searcher takes one. Two are here:

- QueryLikelihoodReranker: how likely the generator finds the question
  after reading the passage (log p(question | passage), averaged over the
  question's tokens; "UPR", Sachan et al. 2022, arXiv:2204.07496). It needs
  no training and no instruction following, only a language model's
  probabilities, so even the small generators can do it; it reads each
  passage in full, which is why it runs on the best ten or so only.
- EmbedderReranker: the cosine under a second embedding model, e.g. the
  multilingual EmbeddingGemma over a library embedded with MiniLM, computed
  for the candidates only.

No cross-encoder comes with bundled weights (MODELS.md); a tuned one (the
tuning issue) can join as a third class with the same two members.
"""
from __future__ import annotations

import numpy as np

from readingroom.models.catalogue import TEST_GENERATOR

# The instruction after the passage; the question follows as the answer.
QUESTION_PROMPT = "Write a question that this passage answers."


class QueryLikelihoodReranker:
    """Scores passages by the generator's mean log-probability of the query
    given the passage, with the transformers backend (one batched forward
    pass per few passages; llama.cpp does not give batched log-probabilities)."""

    def __init__(self, model=TEST_GENERATOR, *, max_passage_tokens: int = 192, batch_size: int = 5,
                 dtype: str = "bfloat16"):
        import torch

        from readingroom.models.generate import load_generator

        self.generator = load_generator(model, backend="transformers", dtype=getattr(torch, dtype), warm_up=False)
        self.name = f"query-likelihood:{self.generator.name}"
        self.max_passage_tokens = max_passage_tokens
        self.batch_size = batch_size

    def _sequences(self, query: str, texts: list[str]) -> tuple[list[list[int]], list[int]]:
        """Token ids of each (passage, instruction, question) conversation and
        where the question's tokens start in it."""
        tokenizer = self.generator.tokenizer
        query_ids = tokenizer(" " + query.strip(), add_special_tokens=False)["input_ids"]
        sequences, starts = [], []
        for text in texts:
            passage_ids = tokenizer(text, add_special_tokens=False)["input_ids"][:self.max_passage_tokens]
            passage = tokenizer.decode(passage_ids)
            prompt = tokenizer.apply_chat_template(
                [{"role": "user", "content": f"Passage:\n{passage}\n\n{QUESTION_PROMPT}"}],
                add_generation_prompt=True, tokenize=True)
            if hasattr(prompt, "keys"):  # newer transformers return a BatchEncoding
                prompt = prompt["input_ids"]
            sequences.append(list(prompt) + query_ids)
            starts.append(len(prompt))
        return sequences, starts

    def score(self, query: str, texts: list[str]) -> np.ndarray:
        import torch

        if not texts:
            return np.zeros(0)
        network = self.generator.network
        decoder, head = network.get_decoder(), network.get_output_embeddings()
        sequences, starts = self._sequences(query, texts)
        pad = self.generator._pad_token_id
        scores = []
        with torch.inference_mode():
            for b in range(0, len(sequences), self.batch_size):
                batch, batch_starts = sequences[b:b + self.batch_size], starts[b:b + self.batch_size]
                width = max(map(len, batch))
                ids = torch.full((len(batch), width), pad, dtype=torch.long)
                mask = torch.zeros((len(batch), width), dtype=torch.long)
                for i, seq in enumerate(batch):  # padded on the right: positions stay as unpadded
                    ids[i, :len(seq)] = torch.tensor(seq)
                    mask[i, :len(seq)] = 1
                hidden = decoder(input_ids=ids.to(network.device), attention_mask=mask.to(network.device))[0]
                for i, (seq, start) in enumerate(zip(batch, batch_starts)):
                    # The logits at position t predict token t + 1: only the
                    # question's positions go through the (large) output layer.
                    logits = head(hidden[i, start - 1:len(seq) - 1]).float()
                    targets = torch.tensor(seq[start:], device=logits.device)
                    logprobs = torch.log_softmax(logits, dim=-1).gather(1, targets[:, None])
                    scores.append(float(logprobs.mean()))
        return np.array(scores)


class EmbedderReranker:
    """Scores passages by their cosine with the query under another embedder."""

    def __init__(self, model, backend: str = "torch"):
        from readingroom.models.embed import load_embedder

        self.embedder = load_embedder(model, backend)
        self.name = f"embedder:{self.embedder.name}"

    def score(self, query: str, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros(0)
        return self.embedder.encode_documents(texts) @ self.embedder.encode_query(query)


RERANKERS = {"query-likelihood": QueryLikelihoodReranker, "embedder": EmbedderReranker}


def load_reranker(spec: str | None):
    """From a CLI-style spec: "query-likelihood[:MODEL]" or "embedder:MODEL";
    None or "none" gives None."""
    if spec in (None, "", "none"):
        return None
    kind, _, model = spec.partition(":")
    if kind not in RERANKERS:
        raise ValueError(f"unknown reranker {kind!r}; choose query-likelihood[:MODEL] or embedder:MODEL")
    if kind == "embedder" and not model:
        raise ValueError("the embedder reranker needs a model: embedder:MODEL")
    return RERANKERS[kind](model) if model else RERANKERS[kind]()
