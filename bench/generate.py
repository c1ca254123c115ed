"""Generation speed: our Generator interface against the raw backend calls,
and llama.cpp against transformers, on the same model, prompt and settings.

    python bench/generate.py [--model NAME_OR_PATH] [--runs 5] [--max-tokens 64]
                             [--backends llama.cpp transformers]

The default model is the test model (smollm2-135m-instruct-q4_1), so this runs
anywhere the tests do; `--model qwen2.5-coder-1.5b-instruct-q4_k_m` measures
the default answer model once fetched.

For each backend, on the very model object our generator holds (two loaded
copies of one model ran up to 15% apart here, which would swamp the measure):
- raw: llama.cpp: `Llama.create_chat_completion(stream=True)`; transformers:
  `model.generate` with a TextIteratorStreamer in a thread;
- ours: `Generator.stream()`.
Our Llama subclass counts tokens in Llama.generate, so the raw llama.cpp call
goes through that count too: one Python generator step per token.
Greedy, so both produce the same text (checked) and the same token count.
llama.cpp reuses the KV cache of a prompt prefix it has just seen; every run
starts from an empty cache, so the first-token time includes reading the
whole prompt, as it does for a new question. Runs alternate raw and ours,
after one untimed run of each; figures are medians, and ours/raw is the
median of the ratios within back-to-back pairs. llama.cpp and transformers
run minutes apart, so their comparison is the rougher one on a busy machine.

tokens/s is the decoding rate: tokens after the first over the time from the
first to the end. The aim for ours/raw is >= 0.95.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "lib"))

from readingroom.models.generate import load_generator  # noqa: E402
from readingroom.models.catalogue import TEST_GENERATOR
from readingroom.models.resolve import resolve  # noqa: E402

# A question over three passages, shaped like the answer pipeline's prompts
# (the Communist Manifesto, 1888 English translation, public domain).
MESSAGES = [
    {"role": "system", "content": "Answer the question from the numbered passages only, and cite them as [1], [2]."},
    {"role": "user", "content": (
        "[1] The history of all hitherto existing society is the history of class struggles. Freeman and "
        "slave, patrician and plebeian, lord and serf, guild-master and journeyman, in a word, oppressor and "
        "oppressed, stood in constant opposition to one another.\n"
        "[2] The modern bourgeois society that has sprouted from the ruins of feudal society has not done away "
        "with class antagonisms. It has but established new classes, new conditions of oppression, new forms "
        "of struggle in place of the old ones.\n"
        "[3] The bourgeoisie cannot exist without constantly revolutionising the instruments of production, "
        "and thereby the relations of production, and with them the whole relations of society.\n\n"
        "Question: What do the passages say about the history of society and the bourgeoisie? "
        "Explain in detail.")},
]


@dataclass
class Run:
    first_token_s: float
    total_s: float
    text: str

    def tokens_per_s(self, tokens: int) -> float:
        return (tokens - 1) / (self.total_s - self.first_token_s)


def timed(pieces, start: float | None = None) -> Run:
    start = time.perf_counter() if start is None else start
    first, text = None, []
    for piece in pieces:
        if piece and first is None:
            first = time.perf_counter() - start
        text.append(piece)
    return Run(first, time.perf_counter() - start, "".join(text))


def raw_llama_cpp(ours, max_tokens: int):
    llama = ours.llama

    def call():
        llama.reset()
        chunks = llama.create_chat_completion(messages=MESSAGES, max_tokens=max_tokens, temperature=0.0,
                                              seed=0, stream=True)
        return timed(c["choices"][0]["delta"].get("content") or "" for c in chunks)

    def ours_call():
        llama.reset()
        return timed(ours.stream(MESSAGES, max_tokens=max_tokens))

    return call, ours_call


def raw_transformers(ours, max_tokens: int):
    from transformers import TextIteratorStreamer

    tokenizer, network = ours.tokenizer, ours.network
    prompt = tokenizer.apply_chat_template(MESSAGES, add_generation_prompt=True, return_tensors="pt",
                                           return_dict=True).to(ours.device)

    def call():
        start = time.perf_counter()
        streamer = TextIteratorStreamer(tokenizer, skip_prompt=True, skip_special_tokens=True)
        worker = threading.Thread(target=network.generate, kwargs=dict(
            **prompt, max_new_tokens=max_tokens, do_sample=False, streamer=streamer,
            pad_token_id=tokenizer.pad_token_id or tokenizer.eos_token_id))
        worker.start()
        run = timed(streamer, start)
        worker.join()
        return run

    def ours_call():
        return timed(ours.stream(MESSAGES, max_tokens=max_tokens))

    return call, ours_call


RAW_CALLS = {"llama.cpp": raw_llama_cpp, "transformers": raw_transformers}


def bench_backend(model, backend: str, runs: int, max_tokens: int) -> dict:
    start = time.perf_counter()
    ours = load_generator(model, backend=backend)
    load_s = time.perf_counter() - start
    raw_call, ours_call = RAW_CALLS[backend](ours, max_tokens)
    raw_call(), ours_call()  # untimed: first-call costs (allocations, caches) on both sides
    raw_runs, ours_runs = [], []
    for i in range(runs):
        if i % 2 == 0:
            raw_runs.append(raw_call()), ours_runs.append(ours_call())
        else:
            ours_runs.append(ours_call()), raw_runs.append(raw_call())
    tokens = ours.last_usage.completion_tokens
    same_text = {r.text for r in raw_runs + ours_runs} == {ours_runs[0].text}
    figures = {}
    for name, measured in (("raw", raw_runs), ("ours", ours_runs)):
        figures[name] = (statistics.median(r.first_token_s for r in measured),
                         statistics.median(r.tokens_per_s(tokens) for r in measured))
    # Ratios within each back-to-back pair, then their median: other load on
    # the machine drifts over minutes and moves both halves of a pair alike.
    paired = [(o.tokens_per_s(tokens) / r.tokens_per_s(tokens), o.first_token_s / r.first_token_s)
              for r, o in zip(raw_runs, ours_runs)]
    ratios = tuple(statistics.median(column) for column in zip(*paired))
    return dict(backend=backend, load_s=load_s, tokens=tokens, prompt_tokens=ours.last_usage.prompt_tokens,
                same_text=same_text, ratios=ratios, **figures)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=TEST_GENERATOR, help="catalogue name or .gguf path")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--backends", nargs="+", choices=list(RAW_CALLS), default=list(RAW_CALLS))
    args = parser.parse_args()

    model = resolve(args.model, role="generator")
    print(f"{model.name}, greedy, up to {args.max_tokens} new tokens, median of {args.runs} runs, "
          f"{os.cpu_count()} CPU cores")
    results = {}
    for backend in args.backends:
        r = results[backend] = bench_backend(model, backend, args.runs, args.max_tokens)
        (raw_ttft, raw_rate), (ttft, rate) = r["raw"], r["ours"]
        print(f"\n{backend}: loaded in {r['load_s']:.1f} s; prompt {r['prompt_tokens']} tokens, "
              f"{r['tokens']} generated; same text raw and ours: {'yes' if r['same_text'] else 'NO'}")
        print(f"  {'':6} {'first token':>12} {'tokens/s':>9}")
        print(f"  {'raw':6} {raw_ttft:10.3f} s {raw_rate:9.1f}")
        print(f"  {'ours':6} {ttft:10.3f} s {rate:9.1f}")
        rate_ratio, ttft_ratio = r["ratios"]
        print(f"  ours/raw, median of paired runs: tokens/s {rate_ratio:.3f} (aim >= 0.95), "
              f"first-token time {ttft_ratio:.3f}")
    if len(results) == 2:
        (l_ttft, l_rate), (t_ttft, t_rate) = results["llama.cpp"]["ours"], results["transformers"]["ours"]
        print(f"\nllama.cpp over transformers (ours): tokens/s {l_rate / t_rate:.2f}, "
              f"first-token time {l_ttft / t_ttft:.2f}")


if __name__ == "__main__":
    main()
