"""Several completions decoded together on one llama.cpp model: continuous
batching, with the shared start of the prompts read once.

Why batching pays on a CPU: writing one token reads every weight of the
model once (about 1 GB for the default 1.5B model), and that reading, not
the arithmetic, sets the pace. A batch of four sequences' next tokens
reads the weights once for all four, so four answers are written in
little more time than one. Reading a prompt is arithmetic-bound already
(hundreds of tokens a step), so there batching gains nothing; what saves
prompt time is not reading the same start twice.

How, with llama-cpp-python's low-level API (chosen over llama.cpp's own
`llama-server`: it needs no second build of llama.cpp on the user's
machine or in CI, and runs in the generation service's process on the
model that process has loaded already):

- A second llama_context on the generator's loaded model (the weights are
  shared; only the KV cache is new) with one sequence per slot plus
  sequence 0, which holds the shared prefix, each sequence in a KV stream
  of its own of n_ctx cells (the generator's context), so no mix of
  prompts can run out of room. Not llama.cpp's *unified* cache (one pool
  of cells for all sequences, where a prefix is shared by reference):
  there every token attends over every sequence's cells, masked, and with
  four 1,400-token prompts that is four times the attention work (for the
  135M test model more than its matrix multiplications; for the 1.5B a
  third more). Between streams `llama_memory_seq_cp` copies a whole
  stream (tens of MB, milliseconds), then the copy is cut to the shared
  start with `llama_memory_seq_rm`. `unified=True` gives the other.
- Each step is one `llama_decode` of one batch: the next token of every
  sequence that is writing, plus up to STEP_TOKENS prompt tokens of the
  sequences still reading theirs (in order of arrival), so a new question
  is read while the others go on writing.
- Each sequence samples from its own row of logits with its own sampler
  chain, the chain llama-cpp-python's Llama builds for the same settings
  (greedy at temperature 0; top-k 40, top-p 0.95, min-p 0.05, the
  temperature and a seeded draw otherwise).
- The shared prefix: when a question arrives, its prompt is compared with
  sequence 0 and with every sequence being served; the longest common
  start is copied (shared) rather than read. Once a prompt is read, the
  part before its last message (the system prompt and any earlier turns:
  what the next question will repeat) becomes sequence 0.

Measured (`bench/app.py --load --minutes 0 --max-tokens 160`, one run,
SmolLM2-135M, the chat's real prompts of about 1,400 tokens, 2 shared
cores at load average 6-7): no gain. Answers a minute, batched over one
at a time: 0.89 (1 reader), 0.97 (4 at once), 1.11 (8 at once); the
slowest of 8 waited 158 s against 176 s. The prompt is most of the work
(about 1,150 prompt tokens read per answer against at most 160 written),
and this model's weights (80 MB) sit in the CPU's caches, so a batch saves
no memory traffic either. The default 1.5B model (1 GB of weights, read
once per decode step) is where batching should pay; it was not measured
in time with the bench; a quick check (4 short questions, 40 tokens at
most, load 3.6) wrote them in 6.5 s batched against 10.6 s one at a time
(1.6x), but 2 of the 4 texts differed from the unbatched ones after about
10 words: for this Q4_K model the kernels for several rows sum in another
order than the one-row kernel, and greedy decoding follows a near-tie the
other way (both texts are the model's; neither is wrong). The 135M test
model gave equal texts (tests/test_service_batched.py). The shared prefix saves what
llama-cpp-python's own prefix cache already saved one at a time
(consecutive prompts share the system prompt): about 1,130 of 1,380
prompt tokens read per answer in both.

The text is that of `LlamaCppGenerator.stream` for the same messages and
settings: the same chat template and tokens, the same stop strings and
end-of-generation tokens, the same max_tokens cut. At temperature 0 it is
the same text as long as the logits are the same; they can differ in the
last bits, because the batch a token is computed in has other rows and
other prompt chunks beside it (equal for the 135M model in
tests/test_service_batched.py; not always for the 1.5B, above).
"""
from __future__ import annotations

import codecs
import ctypes
from dataclasses import dataclass, field
from typing import Callable

from readingroom.models.generate.base import GeneratorError, StopStringFilter, TokenUsage

STEP_TOKENS = 256  # tokens per decode step (writing sequences' next tokens first, then prompt tokens)
PREFIX_SEQUENCE = 0  # the KV sequence that holds the shared prefix; slots are 1..slots


def common_start(a, b) -> int:
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n


@dataclass(eq=False)
class Sequence:
    """One completion being served in a slot."""

    slot: int  # its KV sequence id
    tokens: list[int]  # the prompt, then what has been generated
    prompt_length: int
    max_tokens: int
    conversation_prefix: int  # tokens before the last message's text: what the next question shares
    on_text: Callable[[str], None]
    sampler: object
    stop: StopStringFilter
    evaluated: int = 0  # tokens of `tokens` in the KV cache
    cached: int = 0  # prompt tokens taken from the cache, not read
    generated: int = 0
    done: bool = False
    decoder: codecs.IncrementalDecoder = field(default_factory=lambda: codecs.getincrementaldecoder("utf-8")("ignore"))

    @property
    def reading(self) -> bool:
        return self.evaluated < self.prompt_length

    @property
    def usage(self) -> TokenUsage:
        return TokenUsage(self.prompt_length, self.generated, self.cached)


class BatchedLlama:
    """Up to `slots` completions at once on `generator`'s model (a
    LlamaCppGenerator). Not thread-safe: one thread calls start, step and
    cancel (the generation service's worker)."""

    def __init__(self, generator, slots: int, *, step_tokens: int = STEP_TOKENS, unified: bool = False):
        from llama_cpp import _internals
        from llama_cpp import llama_cpp as capi

        if slots < 1:
            raise ValueError(f"slots must be at least 1, not {slots}")
        self.capi, self.generator, self.slots = capi, generator, slots
        llama = generator.llama
        self.slot_context = llama.n_ctx()
        self.step_tokens = step_tokens
        params = type(llama.context_params).from_buffer_copy(llama.context_params)  # the same threads, types, attention
        params.n_ctx = (slots + 1) * self.slot_context
        params.n_seq_max = slots + 1
        params.kv_unified = self.unified = unified
        params.n_batch = params.n_ubatch = step_tokens
        try:
            self.context = _internals.LlamaContext(model=llama._model, params=params, verbose=False)
        except ValueError as e:
            raise GeneratorError(f"llama.cpp could not make a batched context of {slots} slots for "
                                 f"{generator.name}: {e}") from e
        self.memory = capi.llama_get_memory(self.context.ctx)
        self.vocab = capi.llama_model_get_vocab(llama._model.model)
        self.batch = _internals.LlamaBatch(n_tokens=step_tokens, embd=0, n_seq_max=1, verbose=False)
        self.prefix: list[int] = []  # the tokens in PREFIX_SEQUENCE
        self.active: list[Sequence] = []
        self.prompt_tokens_read = 0  # all prompt tokens decoded, for the bench
        self.widest_step = 0  # the most sequences one decode step has served, for the tests and the bench
        self._piece = ctypes.create_string_buffer(64)

    # --- starting and ending ---------------------------------------------------------------------------------------

    def free_slots(self) -> int:
        return self.slots - len(self.active)

    def start(self, messages, *, max_tokens: int = 256, temperature: float = 0.0, seed: int = 0, stop=None,
              on_text: Callable[[str], None]) -> Sequence:
        """Put a completion in a free slot; its text goes to `on_text` as
        steps produce it. Raises GeneratorError for a prompt too long for a
        slot, and when no slot is free."""
        if not self.free_slots():
            raise GeneratorError("every batch slot is taken")
        formatted = self.generator._chat_formatter()(messages=messages)
        tokens = self._tokenize(formatted)
        if len(tokens) >= self.slot_context:
            raise GeneratorError(f"the prompt has {len(tokens)} tokens; the model's context holds "
                                 f"{self.slot_context}")
        # As Llama.create_completion: what does not fit in the context is not generated.
        max_tokens = min(max_tokens, self.slot_context - len(tokens))
        stops = list(stop or []) + ([formatted.stop] if isinstance(formatted.stop, str) else list(formatted.stop or []))
        slot = next(i for i in range(1, self.slots + 1) if all(s.slot != i for s in self.active))
        sequence = Sequence(slot=slot, tokens=list(tokens), prompt_length=len(tokens), max_tokens=max_tokens,
                            conversation_prefix=self._conversation_prefix(messages, tokens), on_text=on_text,
                            sampler=self._sampler(temperature, seed), stop=StopStringFilter(stops))
        self._share_cached_start(sequence)
        self.active.append(sequence)
        return sequence

    def cancel(self, sequence: Sequence) -> None:
        """Stop a completion now and free its slot."""
        if sequence in self.active:
            self._finish(sequence)

    def close(self) -> None:
        for sequence in list(self.active):
            self._finish(sequence)
        self.batch.close()
        self.context.close()

    def _finish(self, sequence: Sequence) -> None:
        sequence.done = True
        self.active.remove(sequence)
        self.capi.llama_memory_seq_rm(self.memory, sequence.slot, -1, -1)
        self.capi.llama_sampler_free(sequence.sampler)
        sequence.sampler = None

    def _tokenize(self, formatted) -> list[int]:
        # As llama-cpp-python's chat handler does, so the tokens are the unbatched path's.
        return self.generator.llama.tokenize(formatted.prompt.encode("utf-8"), add_bos=not formatted.added_special,
                                             special=True)

    def _conversation_prefix(self, messages, tokens) -> int:
        """How many of `tokens` come before the last message's text: the
        prompt again with that text left out, and the start they share."""
        if len(messages) < 2:
            return 0
        emptied = [*messages[:-1], {**messages[-1], "content": ""}]
        return common_start(tokens, self._tokenize(self.generator._chat_formatter()(messages=emptied)))

    def _share_cached_start(self, sequence: Sequence) -> None:
        """Give the new sequence the longest start of its prompt that the
        cache holds (the shared prefix, or a prompt being served), as
        shared cells, so that only the rest is read."""
        capi, memory = self.capi, self.memory
        source, length = PREFIX_SEQUENCE, common_start(sequence.tokens, self.prefix)
        for other in self.active:
            if other is not sequence:
                n = common_start(sequence.tokens, other.tokens[:other.evaluated])
                if n > length:
                    source, length = other.slot, n
        length = min(length, sequence.prompt_length - 1)  # the last prompt token is read: its logits start the text
        capi.llama_memory_seq_rm(memory, sequence.slot, -1, -1)
        if length > 0:
            self._copy(source, sequence.slot, length)
        sequence.evaluated = sequence.cached = length

    def _copy(self, source: int, target: int, length: int) -> None:
        """Positions [0, length) of sequence `source` into `target` (which
        holds nothing past them afterwards)."""
        if self.unified:  # the cells are shared, not copied
            self.capi.llama_memory_seq_rm(self.memory, target, -1, -1)
            self.capi.llama_memory_seq_cp(self.memory, source, target, 0, length)
        else:  # a stream is copied whole (llama.cpp copies between streams no other way), then cut
            self.capi.llama_memory_seq_cp(self.memory, source, target, -1, -1)
            self.capi.llama_memory_seq_rm(self.memory, target, length, -1)

    def _share_from_others(self, sequence: Sequence) -> None:
        """A prompt still being read takes what another sequence has read
        since of their common start (two questions that arrived together
        share the system prompt: the first reads it, the second copies)."""
        for other in self.active:
            if other is not sequence:
                n = min(common_start(sequence.tokens, other.tokens[:other.evaluated]), sequence.prompt_length - 1)
                if n > sequence.evaluated:
                    self._copy(other.slot, sequence.slot, n)
                    sequence.cached += n - sequence.evaluated
                    sequence.evaluated = n

    def _keep_prefix(self, sequence: Sequence) -> None:
        """Once a prompt is read, its conversation prefix becomes the shared
        prefix (if it is not that already)."""
        n = sequence.conversation_prefix
        if n == 0 or self.prefix == sequence.tokens[:n]:
            return
        self.capi.llama_memory_seq_rm(self.memory, PREFIX_SEQUENCE, -1, -1)
        self._copy(sequence.slot, PREFIX_SEQUENCE, n)
        self.prefix = sequence.tokens[:n]

    def _sampler(self, temperature: float, seed: int):
        """The sampler chain llama_cpp.Llama builds for create_chat_completion's
        defaults (its repeat penalty of 1.0 changes nothing and is left out)."""
        capi = self.capi
        chain = capi.llama_sampler_chain_init(capi.llama_sampler_chain_default_params())
        if temperature == 0:
            capi.llama_sampler_chain_add(chain, capi.llama_sampler_init_greedy())
        else:
            for sampler in (capi.llama_sampler_init_top_k(40), capi.llama_sampler_init_typical(1.0, 1),
                            capi.llama_sampler_init_top_p(0.95, 1), capi.llama_sampler_init_min_p(0.05, 1),
                            capi.llama_sampler_init_temp(temperature), capi.llama_sampler_init_dist(seed)):
                capi.llama_sampler_chain_add(chain, sampler)
        return chain

    # --- one step --------------------------------------------------------------------------------------------------

    def step(self) -> list[Sequence]:
        """Decode one batch: a token for every writing sequence, prompt
        tokens for the reading ones. Returns the sequences that ended in
        it (their slots are free again). A failed decode raises
        GeneratorError and ends every sequence."""
        batch = self.batch.batch
        rows: list[tuple[Sequence, int]] = []  # (sequence, its logits' row in the batch)
        added: dict[int, int] = {}  # slot -> tokens this step puts in the cache
        n = 0

        def add(token, position, sequence, logits):
            nonlocal n
            batch.token[n], batch.pos[n], batch.n_seq_id[n] = token, position, 1
            batch.seq_id[n][0], batch.logits[n] = sequence.slot, logits
            if logits:
                rows.append((sequence, n))
            added[sequence.slot] = added.get(sequence.slot, 0) + 1
            n += 1

        for sequence in self.active:
            if not sequence.reading:
                add(sequence.tokens[-1], sequence.evaluated, sequence, True)
        reading_now: list[Sequence] = []
        for sequence in self.active:
            if sequence.reading and n < self.step_tokens:
                self._share_from_others(sequence)
                if any(common_start(sequence.tokens, other.tokens) > sequence.evaluated for other in reading_now):
                    continue  # an earlier prompt reads this start in this step: shared in the next
                reading_now.append(sequence)
                take = min(sequence.prompt_length - sequence.evaluated, self.step_tokens - n)
                for i in range(sequence.evaluated, sequence.evaluated + take):
                    add(sequence.tokens[i], i, sequence, i == sequence.prompt_length - 1)
                self.prompt_tokens_read += take
        if n == 0:
            return []
        batch.n_tokens = n
        self.widest_step = max(self.widest_step, len({batch.seq_id[i][0] for i in range(n)}))
        code = self.capi.llama_decode(self.context.ctx, batch)
        if code != 0:
            for sequence in list(self.active):
                self._finish(sequence)
            raise GeneratorError(f"llama.cpp could not decode a batch of {n} tokens (llama_decode returned {code})")
        for sequence in self.active:
            sequence.evaluated += added.get(sequence.slot, 0)
        ended = []
        for sequence, row in rows:
            if sequence.generated == 0:  # its prompt is read now
                self._keep_prefix(sequence)
            token = self.capi.llama_sampler_sample(sequence.sampler, self.context.ctx, row)
            if self._take(sequence, token):
                ended.append(sequence)
        for sequence in ended:
            self._finish(sequence)
        return ended

    def _take(self, sequence: Sequence, token: int) -> bool:
        """Add a sampled token; tell its text; whether the sequence has ended."""
        if self.capi.llama_vocab_is_eog(self.vocab, token):
            self._flush(sequence, sequence.decoder.decode(b"", final=True))
            return True
        sequence.tokens.append(token)
        sequence.generated += 1
        text = sequence.decoder.decode(self._token_bytes(token))
        passed = sequence.stop.feed(text)
        if passed:
            sequence.on_text(passed)
        if sequence.stop.stopped:
            return True
        if sequence.generated >= sequence.max_tokens:
            self._flush(sequence, sequence.decoder.decode(b"", final=True))
            return True
        return False

    def _flush(self, sequence: Sequence, text: str) -> None:
        rest = sequence.stop.feed(text) + sequence.stop.finish()
        if rest:
            sequence.on_text(rest)

    def _token_bytes(self, token: int) -> bytes:
        size = self.capi.llama_token_to_piece(self.vocab, token, self._piece, len(self._piece), 0, False)
        if size < 0:
            self._piece = ctypes.create_string_buffer(-size)
            size = self.capi.llama_token_to_piece(self.vocab, token, self._piece, len(self._piece), 0, False)
        return self._piece.raw[:size]
