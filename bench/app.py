"""How many readers the chat app serves at once: memory per session and how
long each waits, against one reader alone.

    python bench/app.py [--db LIBRARY] [--model NAME] [--sessions 1 2 4 8]

Starts `readingroom app` on 127.0.0.1, then for each N opens N browser
sessions (Playwright pages in separate contexts, Debian's Chromium at
/usr/bin/chromium), each with its own Voila kernel, and sends the same
question from all N at once. Measured:

- memory per session: each kernel's USS (memory no other process shares)
  and RSS, read with psutil once its chat has answered; the generation
  service's and Voila's own, once;
- page time: from opening the address to the chat on screen (a kernel
  starts, runs the notebook, loads the library's search index);
- answer time: from the click on Send to the checked answer on screen,
  timed in the page itself; and whether the page said "waiting: N ahead of
  you" on the way.

The baseline is one session alone asking --baseline questions one after
another (its median answer time); the ratios printed for N are the median,
and the slowest, answer time of N sessions asking at once over it. Every
question is a different one of the FAQ's own (data/benchmarks), so no
prompt is read twice. The service
answers one question at a time, so with N questions sent together the
k-th waits for the k-1 before it: the slowest should be about N times the
baseline, the memory per session should not grow with N (the model is
loaded once, in the service).

The default model is the test model, so this runs where the tests do;
`--model qwen2.5-coder-1.5b-instruct-q4_k_m` measures the default.

    python bench/app.py --load [--readers 30] [--minutes 5] [--slots 4] [--model NAME] [--db LIBRARY]

measures the room's queue itself, without browsers, driving the
generation service over HTTP (in its own process, as `readingroom app`
starts it, asked with the real prompts the chat sends: a FAQ question and
its 5 passages), twice in one run: the baseline, today's queue (--slots 1,
one answer at a time), then the batched service (--slots N answers
decoded together). For each: 1, 4 and 8 readers asking at the same moment
(answers per minute: n answers over the time the n took; each reader's
wait from asking to the last word; prompt tokens actually read per answer,
the rest came from the cache), then --readers readers each asking about
once every 4 minutes at random moments (exponential gaps, seeded: the same
moments for both) for --minutes minutes (the issue's 20 take long; the
default is short): p50 and p95 of the waits (a question unanswered 2
minutes after the period is given up and counts as too slow). Printed:
each figure with its ratio against the baseline. The capacity, the number
of readers at which the 95th percentile passes 2 minutes, comes from a
simulation of each queue fed with the measured answer times and, for the
batched one, the measured speed-up with n answers at once. The machine's
load average is printed with the figures: on a shared machine they are
upper bounds of the waits.

    python bench/app.py --memory [--server voila solara] [--sessions 1 4 8] [--db LIBRARY]

measures what each extra reader costs the app's server and how long the
last one waits for the page, for each server in turn (`readingroom app
--server voila|solara`; Voila, a kernel per reader, is the named
baseline): sessions are opened one after another in real Chromium pages
and kept open; at each count in --sessions, once the servers' memory has
settled, the USS (memory no other process shares) of the server's
processes, summed (Voila: its server and every kernel; Solara: its one
process), and the page time of the last session opened (from the address
to the chat on screen). Memory per extra reader is the growth from 1
session to the largest count, over the readers added. No questions are
asked (the model's service is shared by both and measured above).
"""
from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "lib"))

from readingroom.models.catalogue import TEST_GENERATOR  # noqa: E402
from readingroom.paths import default_library_path  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-dev-shm-usage"]
QUESTION = "Why do anarchists oppose the state?"
MB = 1 << 20

# Installed in each page before its first question: when each question was
# sent, when each checked answer appeared, and every status line shown,
# timed by the page itself.
WATCH = """() => {
    window.__bench = {statuses: [], sent: [], checked: []};
    new MutationObserver(() => {
        const status = document.querySelectorAll('.rr-status');
        if (status.length) {
            const text = status[status.length - 1].innerText;
            if (window.__bench.statuses[window.__bench.statuses.length - 1] !== text) window.__bench.statuses.push(text);
        }
        const checked = document.querySelectorAll('.rr-checked').length;
        while (window.__bench.checked.length < checked) window.__bench.checked.push(performance.now());
    }).observe(document.body, {subtree: true, childList: true, characterData: true});
    document.querySelector('button.rr-send').addEventListener('click', () => window.__bench.sent.push(performance.now()));
}"""


def questions(count: int) -> list[str]:
    """Distinct questions (the FAQ's own, from data/benchmarks): the same
    question from every session would let llama.cpp reuse one prompt's
    cache and flatter the figures."""
    import json

    lines = (ROOT / "data" / "benchmarks" / "anarchist-faq.jsonl").read_text().splitlines()
    found = [json.loads(line)["q"] for line in lines]
    found = [q for q in found if q.endswith("?") and 6 <= len(q.split()) <= 16]
    if len(found) < count:
        sys.exit(f"only {len(found)} questions in data/benchmarks/anarchist-faq.jsonl, {count} needed")
    step = len(found) // count
    return [found[i * step] for i in range(count)]


def ask(page, question: str, timeout_ms: int) -> None:
    page.locator(".rr-question textarea").fill(question)
    page.locator("button.rr-send").click()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, process: subprocess.Popen, seconds: float = 600) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            sys.exit(f"the app stopped (exit code {process.returncode})")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.3)
    sys.exit(f"the app did not listen on port {port} within {seconds} s")


def kernels(voila: psutil.Process) -> list[psutil.Process]:
    return [p for p in voila.children(recursive=True) if "ipykernel" in " ".join(p.cmdline())]


def memory(process: psutil.Process) -> tuple[float, float]:
    info = process.memory_full_info()
    return info.uss / MB, info.rss / MB


def open_sessions(browser, url: str, n: int, timeout_ms: int):
    contexts, pages, opened = [], [], []
    for _ in range(n):
        context = browser.new_context(viewport={"width": 1100, "height": 900})
        context.set_default_timeout(timeout_ms)
        page = context.new_page()
        started = time.monotonic()
        page.goto(url, timeout=timeout_ms)
        page.locator(".rr-chat").wait_for(state="visible", timeout=timeout_ms)
        opened.append(time.monotonic() - started)
        page.evaluate(WATCH)
        contexts.append(context)
        pages.append(page)
    return contexts, pages, opened


def close_sessions(contexts, voila: psutil.Process) -> None:
    for context in contexts:
        context.close()
    # Closing the pages shuts their kernels down; wait for that before the next round.
    deadline = time.monotonic() + 120
    while len(kernels(voila)) > 1 and time.monotonic() < deadline:  # 1: Voila's preheated spare
        time.sleep(0.5)


def answer_times(page) -> tuple[list[float], bool]:
    bench = page.evaluate("window.__bench")
    times = [(c - s) / 1000 for s, c in zip(bench["sent"], bench["checked"])]
    return times, any("ahead of you" in s for s in bench["statuses"])


def session_memory(voila: psutil.Process, pages: int) -> list[tuple[float, float]]:
    """USS and RSS of the kernels that have answered (the spare one, which has not, is the smallest)."""
    found = sorted((memory(k) for k in kernels(voila)), reverse=True)
    return found[:pages]


def baseline(browser, url, voila, qs, timeout_ms) -> dict:
    """One session alone, asking its questions one after another."""
    contexts, pages, opened = open_sessions(browser, url, 1, timeout_ms)
    page = pages[0]
    for i, q in enumerate(qs, start=1):
        ask(page, q, timeout_ms)
        page.wait_for_function(f"window.__bench.checked.length >= {i}", timeout=timeout_ms)
    times, _ = answer_times(page)
    used = session_memory(voila, 1)
    close_sessions(contexts, voila)
    return {"n": 1, "opened": opened, "answer": times, "waited": [False], "uss": [u for u, _ in used],
            "rss": [r for _, r in used]}


def together(browser, url, voila, qs, timeout_ms) -> dict:
    """len(qs) sessions, each sending its own question at the same moment."""
    contexts, pages, opened = open_sessions(browser, url, len(qs), timeout_ms)
    for page, q in zip(pages, qs):  # all within a few milliseconds
        ask(page, q, timeout_ms)
    for page in pages:
        page.wait_for_function("window.__bench.checked.length >= 1", timeout=timeout_ms)
    measured = [answer_times(page) for page in pages]
    used = session_memory(voila, len(pages))
    close_sessions(contexts, voila)
    return {"n": len(qs), "opened": opened, "answer": [t[0][0] for t in measured],
            "waited": [w for _, w in measured], "uss": [u for u, _ in used], "rss": [r for _, r in used]}


def report(r: dict) -> None:
    print(f"N={r['n']}: pages open in {statistics.median(r['opened']):.1f} s (median), answers in "
          f"{statistics.median(r['answer']):.1f} s median, {max(r['answer']):.1f} s slowest; "
          f"{sum(r['waited'])} of {r['n']} saw 'waiting'; kernel USS {statistics.median(r['uss']):.0f} MB, "
          f"RSS {statistics.median(r['rss']):.0f} MB", flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--db", default=None, help="library file [default: the default library]")
    parser.add_argument("--model", default=TEST_GENERATOR)
    parser.add_argument("--sessions", type=int, nargs="+", default=[2, 4, 8],
                        help="numbers of sessions asking at once")
    parser.add_argument("--baseline", type=int, default=3, help="questions asked by one session alone")
    parser.add_argument("--timeout", type=int, default=900, help="seconds to wait for one round's answers")
    parser.add_argument("--load", action="store_true", help="measure the queue under a room's load (no browsers)")
    parser.add_argument("--readers", type=int, default=30)
    parser.add_argument("--minutes", type=float, default=5.0,
                        help="with --load: how long the room asks (the issue's figure is 20)")
    parser.add_argument("--services", nargs="+", choices=["baseline", "excerpts", "batched"],
                        default=["baseline", "batched"],
                        help="with --load: which services to measure, each compared with the baseline in one run "
                             "(baseline: one answer at a time, whole passages; excerpts: one at a time, the "
                             "chat's excerpts; batched: whole passages, several decoded together)")
    parser.add_argument("--slots", type=int, default=None,
                        help="with --load: the batched service's slots [default: the service's own]")
    parser.add_argument("--max-tokens", type=int, default=None, help="answer length [default: the chat's]")
    parser.add_argument("--memory", action="store_true",
                        help="measure memory per extra reader and page time, for each --server")
    parser.add_argument("--server", nargs="+", choices=["voila", "solara"], default=["voila", "solara"],
                        help="with --memory: the servers to measure (voila is the baseline)")
    args = parser.parse_args()
    if args.load:
        return room_load(args)
    if args.memory:
        return server_memory(args)
    from playwright.sync_api import sync_playwright

    db = Path(args.db or default_library_path()).resolve()
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT / "lib")}
    log = tempfile.NamedTemporaryFile("w", prefix="bench-app-", suffix=".log", delete=False)
    print(f"library {db}, model {args.model}, {os.cpu_count()} cores; app log {log.name}")
    code = "benchroom"
    app = subprocess.Popen([sys.executable, "-m", "readingroom.cli", "app", "--db", str(db), "--port", str(port),
                            "--model", args.model, "--code", code, "--max-readers", "100"],
                           env=env, stdout=log, stderr=subprocess.STDOUT)
    rounds, timeout = [], args.timeout * 1000
    try:
        wait_for_port(port, app)
        children = psutil.Process(app.pid).children(recursive=True)
        service = next(p for p in children if "readingroom.ui.service" in " ".join(p.cmdline()))
        voila = next(p for p in children if "voila" in " ".join(p.cmdline()))
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
            url = f"http://127.0.0.1:{port}/?code={code}"  # the join link: the door keeps the code in a cookie
            pool = iter(questions(args.baseline + sum(args.sessions)))
            rounds.append(baseline(browser, url, voila, [next(pool) for _ in range(args.baseline)], timeout))
            report(rounds[-1])
            for n in args.sessions:
                rounds.append(together(browser, url, voila, [next(pool) for _ in range(n)], timeout))
                report(rounds[-1])
            browser.close()
        service_uss, service_rss = memory(service)
        voila_uss, voila_rss = memory(voila)
    finally:
        app.terminate()
        app.wait(timeout=60)

    base_answer = statistics.median(rounds[0]["answer"])
    print(f"\nbaseline: one session alone, {args.baseline} questions one after another, "
          f"answer in {base_answer:.1f} s (median)")
    print(f"{'sessions':>8} {'open s':>7} {'median s':>9} {'slowest s':>10} {'median/base':>12} {'slowest/base':>13} "
          f"{'USS MB':>7} {'RSS MB':>7}")
    for r in rounds:
        median, slowest = statistics.median(r["answer"]), max(r["answer"])
        print(f"{r['n']:>8} {statistics.median(r['opened']):>7.1f} {median:>9.1f} {slowest:>10.1f} "
              f"{median / base_answer:>12.2f} {slowest / base_answer:>13.2f} {statistics.median(r['uss']):>7.0f} "
              f"{statistics.median(r['rss']):>7.0f}")
    print(f"shared, once: generation service USS {service_uss:.0f} MB (RSS {service_rss:.0f}), "
          f"Voila server USS {voila_uss:.0f} MB (RSS {voila_rss:.0f})")
    per_session = max(statistics.median(r["uss"]) for r in rounds)
    available = psutil.virtual_memory().available / MB
    print(f"memory: {available:.0f} MB available now holds about {int(available // per_session)} more sessions "
          f"at {per_session:.0f} MB each")
    # The slowest answer of N sent together, against N: what each extra reader adds.
    together_rounds = rounds[1:]
    if together_rounds:
        slopes = [(max(r["answer"]) - base_answer) / (r["n"] - 1) for r in together_rounds if r["n"] > 1]
        added = statistics.median(slopes) if slopes else 0.0
        print(f"waiting: each extra reader asking at the same moment adds about {added:.0f} s to the slowest "
              f"answer (the model answers one question at a time; one alone takes {base_answer:.0f} s here)")
        for limit in (60, 120):
            fits = 1 + max(0, int((limit - base_answer) // added)) if added > 0 else "any number of"
            print(f"  questions sent together whose slowest answer stays under {limit} s: about {fits}")

# --- the room's load, at the queue -------------------------------------------------------------

MEAN_GAP = 240.0  # seconds between one reader's questions, on average
LIMIT = 120.0  # the target: 95% of answers within 2 minutes
BURSTS = (1, 4, 8)  # readers asking at the same moment


def room_prompts(db: Path, count: int, context: str = "whole") -> list[list[dict]]:
    """The messages the chat sends for `count` FAQ questions: each with its 5
    passages, whole (the baseline's) or as excerpts (answer.excerpt: the
    chat's since 2026-12-02)."""
    from readingroom.answer.pipeline import build_messages
    from readingroom.library.store import open_library
    from readingroom.search.searcher import searcher_for

    with open_library(db, read_only=True) as lib:
        searcher = searcher_for(lib)
        return [build_messages(q, searcher.search(q, 5), None, context) for q in questions(count)]


def timed_answer(remote, messages, max_tokens: int, deadline: float = float("inf")) -> dict:
    """One answer, timed from asking to its last word; given up (closing the
    connection, which frees its place) once `deadline` has passed."""
    started = time.monotonic()
    first = None
    pieces = remote.stream(messages, max_tokens=max_tokens)
    for _ in pieces:
        first = first or time.monotonic()
        if time.monotonic() > deadline:
            pieces.close()
            return {"total": float("inf"), "first": (first or time.monotonic()) - started, "usage": None}
    done = time.monotonic()
    return {"total": done - started, "first": (first or done) - started, "usage": remote.last_usage}


def burst(url, token, prompts, max_tokens) -> list[dict]:
    """len(prompts) readers asking at the same moment."""
    from readingroom.ui.service import RemoteGenerator

    results = [None] * len(prompts)

    def one(i):
        results[i] = timed_answer(RemoteGenerator(url, token), prompts[i], max_tokens)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(prompts))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def readers_at_random(url, token, prompts, readers: int, minutes: float, max_tokens: int, seed: int = 20) -> list[dict]:
    """`readers` readers, each asking about once every MEAN_GAP seconds
    (exponential gaps, the same for every service: seeded) for `minutes`.
    A question still unanswered LIMIT seconds after the period is given up
    and counts as slower than LIMIT (infinite), so an overloaded queue
    cannot make the run endless."""
    import random

    from readingroom.ui.service import RemoteGenerator

    results, lock = [], threading.Lock()
    end = time.monotonic() + minutes * 60

    def reader(i):
        rng = random.Random(seed * 1000 + i)
        remote = RemoteGenerator(url, token, timeout=minutes * 60 + 2 * LIMIT)
        while True:
            gap = rng.expovariate(1 / MEAN_GAP)
            if time.monotonic() + gap >= end:
                return  # its next question would come after the period
            time.sleep(gap)
            try:
                result = timed_answer(remote, prompts[rng.randrange(len(prompts))], max_tokens, end + LIMIT)
            except Exception as e:  # noqa: BLE001 - counted as unanswered, said once
                result = {"total": float("inf"), "first": float("inf"), "usage": None, "error": str(e)}
            with lock:
                results.append(result)

    threads = [threading.Thread(target=reader, args=(i,), daemon=True) for i in range(readers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def percentile(values, p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))] if ordered else float("nan")


def simulated_p95(work: list[float], readers: int, speed: list[float], hours: float = 10.0, seed: int = 7) -> float:
    """The 95th percentile of answer times for `readers` readers asking
    every MEAN_GAP seconds on average (exponential gaps), served by a queue
    with len(speed) - 1 slots: an answer needs a `work` drawn at random
    from the measured ones (seconds of the model alone), and with n answers
    in the slots the model gets through speed[n] seconds of that work a
    second, shared equally (speed[1] = 1; one slot: an M/G/1 queue)."""
    import random

    rng = random.Random(seed)
    arrivals = []
    for _ in range(readers):
        t = rng.expovariate(1 / MEAN_GAP)
        while t < hours * 3600:
            arrivals.append(t)
            t += rng.expovariate(1 / MEAN_GAP)
    arrivals.sort()
    slots, now, waiting, active, times = len(speed) - 1, 0.0, [], [], []  # active: [work left, arrival]
    i = 0
    while i < len(arrivals) or waiting or active:
        while waiting and len(active) < slots:
            active.append(waiting.pop(0))
        each = speed[len(active)] / len(active) if active else 0.0
        to_arrival = arrivals[i] - now if i < len(arrivals) else float("inf")
        to_done = min(left for left, _ in active) / each if active else float("inf")
        step = min(to_arrival, to_done)
        now += step
        for job in active:
            job[0] -= step * each
        for job in [j for j in active if j[0] <= 1e-9]:
            active.remove(job)
            times.append(now - job[1])
        if i < len(arrivals) and arrivals[i] <= now + 1e-12:
            waiting.append([rng.choice(work), arrivals[i]])
            i += 1
    return percentile(times, 95)


def capacity(work: list[float], speed: list[float]) -> int:
    """The most readers whose simulated 95th percentile stays within LIMIT."""
    n = 0
    while n < 300 and simulated_p95(work, n + 1, speed) <= LIMIT:
        n += 1
    return n


def speeds(rounds: dict, slots: int) -> list[float]:
    """speed[n]: answers a second with n served at once, over one alone,
    for n up to `slots`, from the bursts (linear between the measured n)."""
    rate = {n: n / r["took"] for n, r in rounds.items()}
    known = sorted(rate)
    out = [0.0]
    for n in range(1, slots + 1):
        low = max(k for k in known if k <= n) if n >= known[0] else known[0]
        high = min((k for k in known if k >= n), default=known[-1])
        r = rate[low] if high == low else rate[low] + (rate[high] - rate[low]) * (n - low) / (high - low)
        out.append(r / rate[1])
    return out


def load_average() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def measure_service(args, label: str, slots: int, prompts, max_tokens: int) -> dict:
    """The bursts and the room, on a service of `slots` (its own process, as the app starts it)."""
    import secrets

    from readingroom.ui.app import start_service, stop
    from readingroom.ui.service import RemoteGenerator

    token = secrets.token_urlsafe(16)
    service, url = start_service(args.model, "llama.cpp", token, slots=slots)
    result = {"label": label, "slots": slots, "rounds": {}, "load": [os.getloadavg()[0]]}
    try:
        print(f"\n{label} ({slots} slot{'s' if slots > 1 else ''}), load average {load_average()}", flush=True)
        offset = 0
        for n in BURSTS:  # different questions in each burst: no prompt is read twice
            chosen = [prompts[(offset + i) % len(prompts)] for i in range(n)]
            offset += n
            started = time.monotonic()
            answers = burst(url, token, chosen, max_tokens)
            took = time.monotonic() - started
            result["rounds"][n] = {"took": took, "answers": answers}
            totals = [r["total"] for r in answers]
            read = [u.prompt_tokens - (u.cached_tokens or 0) for u in (r["usage"] for r in answers) if u]
            print(f"  {n} at once: all answered in {took:.0f} s ({60 * n / took:.2f} answers a minute); each waited "
                  f"median {statistics.median(totals):.0f} s, slowest {max(totals):.0f} s; first word after "
                  f"{statistics.median(r['first'] for r in answers):.0f} s (median); prompt tokens read per "
                  f"answer {statistics.mean(read):.0f} of {statistics.mean(r['usage'].prompt_tokens for r in answers):.0f}"
                  f"; load {load_average()}", flush=True)
            result["load"].append(os.getloadavg()[0])
        if args.minutes > 0:
            started = time.monotonic()
            room = readers_at_random(url, token, prompts, args.readers, args.minutes, max_tokens)
            totals = [r["total"] for r in room]
            answered = [t for t in totals if t != float("inf")]
            result["room"] = totals
            print(f"  room: {args.readers} readers, each asking about every {MEAN_GAP / 60:.0f} min, for "
                  f"{args.minutes:g} min: {len(totals)} questions, {len(answered)} answered "
                  f"({60 * len(answered) / (time.monotonic() - started):.2f} a minute); wait p50 "
                  f"{percentile(totals, 50):.0f} s, p95 {percentile(totals, 95):.0f} s; "
                  f"{sum(t <= LIMIT for t in totals)} of {len(totals)} within {LIMIT:.0f} s; load {load_average()}",
                  flush=True)
            result["load"].append(os.getloadavg()[0])
        health = RemoteGenerator(url, token).health()
        result["served"] = health.get("served")
    finally:
        stop(service)
    return result


def room_load(args) -> None:
    from readingroom.answer.pipeline import MAX_ANSWER_TOKENS
    from readingroom.ui.service import BATCH_SLOTS

    db = Path(args.db or default_library_path()).resolve()
    max_tokens = args.max_tokens or MAX_ANSWER_TOKENS
    slots = args.slots or BATCH_SLOTS
    print(f"library {db}, model {args.model}, {os.cpu_count()} cores, load average {load_average()} at the start; "
          f"answers up to {max_tokens} tokens; the room: {args.readers} readers for {args.minutes:g} min", flush=True)
    prompts = room_prompts(db, 16)
    measured = {}
    if "baseline" in args.services:
        measured["baseline"] = measure_service(args, "baseline: one at a time, whole passages", 1, prompts,
                                               max_tokens)
    if "excerpts" in args.services:
        measured["excerpts"] = measure_service(args, "excerpts: one at a time", 1,
                                               room_prompts(db, 16, "excerpt"), max_tokens)
    if "batched" in args.services:
        measured["batched"] = measure_service(args, "batched", slots, prompts, max_tokens)
    if "baseline" in measured:
        for name, other in measured.items():
            if name != "baseline":
                compare(measured["baseline"], other)


def answer_work(mode: dict) -> list[float]:
    """Each answer's own time on a one-at-a-time service: the 8 sent
    together finish one after another, so the model's work for each alone is
    the gap between two."""
    finished = sorted(r["total"] for r in mode["rounds"][8]["answers"])
    return [finished[0]] + [b - a for a, b in zip(finished, finished[1:])]


def compare(base: dict, batched: dict) -> None:
    """The baseline against another service (`batched`: the batched one, or the excerpts' queue)."""
    name = batched["label"].split(":")[0]
    print(f"\n{'':24}{'baseline':>10}{name:>10}{'ratio':>8}")
    for n in BURSTS:
        a, b = base["rounds"][n], batched["rounds"][n]
        per_a, per_b = 60 * n / a["took"], 60 * n / b["took"]
        print(f"{f'{n} at once, answers/min':24}{per_a:>10.2f}{per_b:>10.2f}{per_b / per_a:>8.2f}")
        slow_a = max(r["total"] for r in a["answers"])
        slow_b = max(r["total"] for r in b["answers"])
        print(f"{f'{n} at once, slowest s':24}{slow_a:>10.0f}{slow_b:>10.0f}{slow_b / slow_a:>8.2f}")
    if "room" in base:
        for p in (50, 95):
            a, b = percentile(base["room"], p), percentile(batched["room"], p)
            print(f"{f'room wait p{p} s':24}{a:>10.0f}{b:>10.0f}{b / a if a not in (0, float('inf')) else float('nan'):>8.2f}")
    for mode in (base, batched):
        # A batched service's answers overlap: its work is the baseline's, sped up as measured.
        work = answer_work(mode if mode["slots"] == 1 else base)
        speed = speeds(mode["rounds"], mode["slots"])
        mode["capacity"] = capacity(work, speed)
        print(f"capacity, {mode['label']} (simulated from the measured answers: {len(work)} answer times, "
              f"speed with n at once {', '.join(f'{s:.2f}' for s in speed[1:])}): {mode['capacity']} readers "
              f"asking every {MEAN_GAP / 60:.0f} min keep the 95th percentile within {LIMIT:.0f} s "
              f"(30 readers: p95 {simulated_p95(work, 30, speed):.0f} s)")
    loads = base["load"] + batched["load"]
    print(f"load average (1 min) during the run: {min(loads):.1f} to {max(loads):.1f}, at the end {load_average()} "
          f"on {os.cpu_count()} cores (above the core count, other work shared the cores: the times are upper bounds)")


# --- memory per reader, per server ----------------------------------------------------------

SETTLE_SECONDS = 3.0  # memory counts as settled when it moved less than 2% over this
SETTLE_LIMIT = 180.0


def server_processes(app: psutil.Process, server: str) -> list[psutil.Process]:
    """The processes that serve the page (not the generation service, which is shared by both)."""
    children = app.children(recursive=True)
    if server == "solara":
        return [p for p in children if "readingroom.ui.solara_server" in " ".join(p.cmdline())]
    voila = next(p for p in children if "voila" in " ".join(p.cmdline()) and "ipykernel" not in " ".join(p.cmdline()))
    return [voila, *kernels(voila)]


def settled_uss(app: psutil.Process, server: str, kernels_wanted: int | None = None) -> float:
    """The servers' summed USS once it stops moving (Voila starts a spare
    kernel after each page: wait for it too)."""
    deadline, last = time.monotonic() + SETTLE_LIMIT, None
    while True:
        processes = server_processes(app, server)
        total = 0.0
        for p in processes:
            try:
                total += memory(p)[0]
            except psutil.NoSuchProcess:
                pass
        enough = kernels_wanted is None or len(processes) - 1 >= kernels_wanted
        if enough and last is not None and abs(total - last) < 0.02 * last or time.monotonic() > deadline:
            return total
        last = total if enough else None
        time.sleep(SETTLE_SECONDS)


def measure_server(server: str, args, db: Path) -> dict:
    from playwright.sync_api import sync_playwright

    port, code = free_port(), "benchroom"
    env = {**os.environ, "PYTHONPATH": str(ROOT / "lib")}
    log = tempfile.NamedTemporaryFile("w", prefix=f"bench-app-{server}-", suffix=".log", delete=False)
    started = time.monotonic()
    app = subprocess.Popen([sys.executable, "-m", "readingroom.cli", "app", "--db", str(db), "--port", str(port),
                            "--model", args.model, "--code", code, "--max-readers", "200", "--server", server],
                           env=env, stdout=log, stderr=subprocess.STDOUT)
    counts, result = sorted(set(args.sessions)), {"server": server, "levels": []}
    try:
        wait_for_port(port, app)
        result["start"] = time.monotonic() - started
        parent = psutil.Process(app.pid)
        spare = 1 if server == "voila" else None  # Voila's preheated kernel, there before any reader
        result["idle"] = settled_uss(parent, server, spare)
        url = f"http://127.0.0.1:{port}/?code={code}"
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
            contexts, timeout = [], args.timeout * 1000
            for n in counts:
                opened = []
                while len(contexts) < n:
                    new, _, seconds = open_sessions(browser, url, 1, timeout)
                    contexts += new
                    opened += seconds
                uss = settled_uss(parent, server, n + 1 if server == "voila" else None)
                result["levels"].append({"n": n, "uss": uss, "last_page": opened[-1],
                                         "load": os.getloadavg()[0]})
                print(f"{server}: {n} sessions, server USS {uss:.0f} MB, page of the last {opened[-1]:.1f} s, "
                      f"load {os.getloadavg()[0]:.1f}", flush=True)
            for context in contexts:
                context.close()
            browser.close()
    finally:
        app.terminate()
        app.wait(timeout=60)
    return result


def per_extra_reader(r: dict) -> float:
    first, last = r["levels"][0], r["levels"][-1]
    return (last["uss"] - first["uss"]) / max(1, last["n"] - first["n"])


def server_memory(args) -> None:
    db = Path(args.db or default_library_path()).resolve()
    load = os.getloadavg()
    print(f"library {db}, model {args.model}, {os.cpu_count()} cores, load average {load[0]:.1f} {load[1]:.1f} "
          f"{load[2]:.1f} at the start; sessions {sorted(set(args.sessions))}", flush=True)
    results = {server: measure_server(server, args, db) for server in args.server}
    print(f"\n{'server':>7} {'start s':>8} {'idle MB':>8} {'first MB':>9} {'last MB':>8} {'per extra reader MB':>20} "
          f"{'last page s':>12}")
    for server, r in results.items():
        print(f"{server:>7} {r['start']:>8.0f} {r['idle']:>8.0f} {r['levels'][0]['uss']:>9.0f} "
              f"{r['levels'][-1]['uss']:>8.0f} {per_extra_reader(r):>20.1f} {r['levels'][-1]['last_page']:>12.1f}")
    if "voila" in results and "solara" in results:
        voila, solara = results["voila"], results["solara"]
        print(f"solara / voila (the baseline): memory per extra reader "
              f"{per_extra_reader(solara) / per_extra_reader(voila):.4f}, page of the last reader "
              f"{solara['levels'][-1]['last_page'] / voila['levels'][-1]['last_page']:.2f}")
    load = os.getloadavg()
    print(f"load average at the end: {load[0]:.1f} {load[1]:.1f} {load[2]:.1f} on {os.cpu_count()} cores "
          "(above the core count, other work shared the cores: the times are upper bounds)")


if __name__ == "__main__":
    main()
