"""One model for many chat sessions: a small generation service and its client.

In the web app (`readingroom app`) every browser session has its own
kernel, hence its own conversation; a model loaded in each kernel would
cost a gigabyte per reader and several readers' generations would fight
over two cores. So the app loads the model once, here, in a process of
its own, and the kernels ask it over HTTP on the loopback:

    kernel (RemoteGenerator) ──POST /generate──► service (one Generator)
                             ◄── newline-delimited JSON ──┘

The service (stdlib http.server, one thread per connection) puts every
request in one FIFO queue served by a single worker thread, in order of
arrival. With `slots=1` (the baseline) it serves one completion at a
time. With `slots=N` and a llama.cpp model, plain text completions (the
answers) are decoded together, up to N at once, by continuous batching
(models/generate/batched.py: one decode step writes a token of every
answer in a slot, and reads the start a new prompt shares with the others
from the cache): a request waits only while every slot is taken, and
starts as soon as one is free. Requests with a JSON schema (a grammar)
and judgements (`choices`: probabilities of a few options) still go one
at a time through the generator itself: the queue stops admitting at such
a request until the slots have emptied, runs it alone, then goes on
(they are short and rare in the chat; batching grammars would need a
grammar sampler per slot). `python bench/app.py --load` measures both
against each other. Every request must carry the service's random token in the
X-Readingroom-Token header (the port is on the loopback, but other users of
the machine can reach the loopback too).

The reply to POST /generate, one JSON object a line:

    {"queue": 2, "wait": 41.5}    requests ahead of this one (that must start or end
                                  before a slot is free for it), and the
                                  seconds until a slot is free for it, estimated from the
                                  requests served so far ("wait" absent before the
                                  first); at arrival, whenever it changes, and every few
                                  seconds while it waits; {"queue": 0, "wait": 0} once it
                                  has a slot (it is being generated, not waiting)
    {"text": "The Commune"}       pieces of the model's text, as they come
    {"done": true, "usage": {"prompt_tokens": 412, "completion_tokens": 57, "cached_tokens": 230}}
    {"error": "..."}              instead of "done", when generation failed

A reader who goes away (the connection closes) is taken out of the queue,
or their generation stopped, so the next reader does not wait for text
nobody reads. GET /health gives the model's name and the queue's length.

Limits, because anyone on the machine can reach the loopback: the token
is checked on the headers, before the body is read; bodies are at most
MAX_REQUEST_BYTES; every number is finite and bounded (max_tokens up to
MAX_TOKENS, temperature 0..2; NaN, 1e999 and JSON nested past the
parser's depth are refused with 400); a connection must send its request
within REQUEST_SECONDS and at most MAX_CONNECTIONS are served at once (one
more is told 503, which the client retries), so idle connections cannot
lock the service up; `stop()` cancels the requests being generated.

    service = GenerationService(load_generator("smollm2-135m-instruct-q4_1")).start()
    remote = RemoteGenerator(service.url, service.token)
    print(remote.generate([{"role": "user", "content": "Hello"}]))

`python -m readingroom.ui.service --model NAME` runs one until it
is stopped; `readingroom app` starts it that way.
"""
from __future__ import annotations

import argparse
import contextlib
import heapq
import hmac
import http.client
import json
import os
import secrets
import select
import socket
import sys
import time
import threading
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from queue import Empty, Queue
from urllib.parse import urlsplit

from readingroom.models.generate import Generator, GeneratorError, TokenUsage, check_settings, checked_messages

TOKEN_HEADER = "X-Readingroom-Token"
URL_VARIABLE = "READINGROOM_GENERATION_URL"  # how kernels started by the app find the service
TOKEN_VARIABLE = "READINGROOM_GENERATION_TOKEN"
HEARTBEAT_SECONDS = 5.0  # a waiting reader hears its place this often
PEER_CHECK_SECONDS = 0.5  # how soon a reader who closed the connection while waiting leaves the queue
MAX_REQUEST_BYTES = 1 << 20  # prompts are a few passages: a megabyte is far more than any
MAX_TOKENS = 2048  # more than any answer needs; bounds how long one request can hold the model
MAX_TEMPERATURE = 2.0
MAX_MESSAGES = 64
MAX_STOP_STRINGS, MAX_STOP_CHARS = 8, 64
MAX_SCHEMA_CHARS = 16_384  # a study aid's item schema is under 2,000; llama.cpp turns it into a grammar
MAX_CHOICES, MAX_CHOICE_CHARS = 8, 32  # a judge's options: "yes", "no"
BATCH_SLOTS = 4  # answers decoded together with --slots: what bench/app.py --load compares with one at a time
# The service's default: one answer at a time. On 2 cores with Qwen-1.5B,
# reading the 1,400-token prompt is most of the work and batching does not
# speed it up: 4 readers at once got 2.11 answers a minute batched against
# 2.25 one at a time, and waited a median 101 s against 55 s, since a
# batch's answers all end late (bench/app.py --load, idle, 2026-12-02).
DEFAULT_SLOTS = 1
MAX_CONNECTIONS = 128  # more than the sessions a room holds (each has at most one request open)
REQUEST_SECONDS = 10.0  # to send the request line, headers and body: an idle connection is closed after this
WRITE_SECONDS = 60.0  # a reader whose connection takes no text for this long has gone
BUSY_RETRIES = 6  # a client told 503 (every connection taken) tries again this often, backing off, ~10 s in all
DISCARD_BYTES = 1 << 16  # read and thrown away after a refusal, so the refusal is not lost to a reset


# --- the service -------------------------------------------------------------------

class Job:
    """One request: what to generate, and the events for its reader."""

    def __init__(self, messages, settings: dict):
        self.messages = messages
        self.settings = settings
        self.events: Queue = Queue()  # ("queue", (n, wait)), ("text", piece), ("probabilities", {option: p}), ("done", usage), ("error", message)
        self.cancelled = threading.Event()
        self.started: float | None = None  # when the model began on it (time.monotonic)
        self.sequence = None  # its BatchedLlama sequence, while it is decoded in a batch slot
        self.completed = False  # ended with "done" (its time counts in the wait estimates)

    @property
    def batchable(self) -> bool:
        """Plain text: no grammar, no judgement."""
        return "choices" not in self.settings and not self.settings.get("json_schema")


class RequestRefused(ValueError):
    """A request the service will not take, with the HTTP status to say so."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def _finite_float(text: str) -> float:
    value = float(text)
    if value != value or value in (float("inf"), float("-inf")):
        raise ValueError(f"numbers must be finite, not {text}")
    return value


def _no_constants(name: str):
    raise ValueError(f"numbers must be finite, not {name}")


def parse_request(raw: bytes) -> tuple[list, dict]:
    """(messages, settings) of a /generate body, every part bounded: finite
    numbers (1e999, NaN and Infinity refused), max_tokens 1..MAX_TOKENS,
    temperature 0..MAX_TEMPERATURE, a few short stop strings. Raises
    RequestRefused(400) saying what is wrong; nesting too deep for the
    parser is refused the same way, never a traceback."""
    try:
        request = json.loads(raw, parse_float=_finite_float, parse_constant=_no_constants)
    except RecursionError:
        raise RequestRefused(400, "the request's JSON is nested too deeply") from None
    except (ValueError, UnicodeDecodeError) as e:
        raise RequestRefused(400, f"the request is not JSON: {e}") from None
    if not isinstance(request, dict):
        raise RequestRefused(400, "the request must be a JSON object")
    messages = request.get("messages")
    if not isinstance(messages, list) or not 0 < len(messages) <= MAX_MESSAGES:
        raise RequestRefused(400, f"messages must be a list of 1 to {MAX_MESSAGES} messages")
    if not all(isinstance(m, dict) for m in messages):
        raise RequestRefused(400, "each message must be an object {'role': ..., 'content': ...}")
    try:
        messages = checked_messages(messages)
    except ValueError as e:
        raise RequestRefused(400, str(e)) from None

    def integer(name, default, low, high):
        value = request.get(name, default)
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise RequestRefused(400, f"{name} must be a whole number from {low} to {high}, not {value!r}")
        return value

    temperature = request.get("temperature", 0.0)
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) \
            or not 0 <= temperature <= MAX_TEMPERATURE:
        raise RequestRefused(400, f"temperature must be a number from 0 to {MAX_TEMPERATURE}, not {temperature!r}")
    stop = request.get("stop") or []
    if not isinstance(stop, list) or len(stop) > MAX_STOP_STRINGS or \
            not all(isinstance(x, str) and 0 < len(x) <= MAX_STOP_CHARS for x in stop):
        raise RequestRefused(400, f"stop must be a list of at most {MAX_STOP_STRINGS} strings "
                                  f"of 1 to {MAX_STOP_CHARS} characters")
    choices = request.get("choices")
    if choices is not None:
        if not isinstance(choices, list) or not 0 < len(choices) <= MAX_CHOICES or \
                not all(isinstance(x, str) and 0 < len(x) <= MAX_CHOICE_CHARS for x in choices):
            raise RequestRefused(400, f"choices must be a list of 1 to {MAX_CHOICES} strings "
                                      f"of 1 to {MAX_CHOICE_CHARS} characters")
        return messages, {"choices": choices}
    schema = request.get("json_schema")
    if schema is not None and (not isinstance(schema, dict) or len(json.dumps(schema)) > MAX_SCHEMA_CHARS):
        raise RequestRefused(400, f"json_schema must be a JSON object of at most {MAX_SCHEMA_CHARS} characters")
    return messages, {"max_tokens": integer("max_tokens", 256, 1, MAX_TOKENS),
                      "temperature": float(temperature),
                      "seed": integer("seed", 0, 0, 2**31 - 1),
                      "stop": stop or None, "json_schema": schema}


class _BoundedServer(ThreadingHTTPServer):
    """A thread per connection, at most `max_connections` at once: one more
    is told 503 at once and closed, so no number of idle or slow connections
    can take every thread (each is closed after `request_seconds` anyway)."""

    daemon_threads = True
    request_queue_size = 64

    def __init__(self, address, handler, max_connections: int):
        super().__init__(address, handler)
        self.slots = threading.BoundedSemaphore(max_connections)

    def process_request(self, request, client_address):
        if not self.slots.acquire(blocking=False):
            try:
                request.settimeout(1.0)
                request.sendall(b"HTTP/1.0 503 Service Unavailable\r\nContent-Type: application/json\r\n"
                                b"Connection: close\r\n\r\n"
                                b'{"error": "too many connections to the generation service; try again"}\n')
            except OSError:
                pass
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self.slots.release()
            raise

    def process_request_thread(self, request, client_address):
        try:
            super().process_request_thread(request, client_address)
        finally:
            self.slots.release()


class GenerationService:
    """A Generator served over HTTP on `host`, in order of arrival: one
    completion at a time (`slots=1`), or up to `slots` plain text
    completions decoded together when the generator can batch (a
    LlamaCppGenerator; others are served one at a time whatever `slots`
    says). `port=0` takes a free port; `token=None` makes a random one.
    `max_connections` and `request_seconds` bound what connections can
    hold (see _BoundedServer)."""

    def __init__(self, generator: Generator, *, host: str = "127.0.0.1", port: int = 0, token: str | None = None,
                 max_connections: int = MAX_CONNECTIONS, request_seconds: float = REQUEST_SECONDS,
                 slots: int = 1):
        self.generator = generator
        self.batch = generator.batched(slots) if slots > 1 and hasattr(generator, "batched") else None
        self.slots = self.batch.slots if self.batch is not None else 1
        self._running: list[Job] = []  # being generated: at most one alone, or up to `slots` in the batch
        self.token = token or secrets.token_urlsafe(32)
        self.request_seconds = request_seconds
        self._waiting: deque[Job] = deque()
        self._lock = threading.Condition()
        self._stopping = False
        self.served = 0  # completions finished, for the tests and the bench
        self.job_seconds: float | None = None  # a running average of one request's time, for wait estimates
        self.server = _BoundedServer((host, port), _handler_class(self), max_connections)
        self._threads: list[threading.Thread] = []

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> "GenerationService":
        for target, name in ((self.server.serve_forever, "readingroom-service-http"),
                             (self._work, "readingroom-service-worker")):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self) -> None:
        """Refuse new requests, tell the waiting ones, cancel the one being
        generated (each stops at its next token or decode step), and close."""
        with self._lock:
            self._stopping = True
            for job in self._waiting:
                job.cancelled.set()
                job.events.put(("error", "the generation service is stopping"))
            self._waiting.clear()
            for job in self._running:
                job.cancelled.set()
                job.events.put(("error", "the generation service is stopping"))
            self._lock.notify_all()
        self.server.shutdown()
        self.server.server_close()
        for thread in self._threads:
            thread.join(timeout=30)
        if self.batch is not None and not any(t.is_alive() for t in self._threads):
            self.batch.close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # The queue. Positions are told to each waiting job whenever the one in
    # front leaves, so a reader sees "2 ahead of you", then 1, then 0.
    def queue_length(self) -> int:
        """Requests waiting, not counting the one being generated."""
        with self._lock:
            return len(self._waiting)

    @property
    def running(self) -> bool:
        """Whether a request is being generated now."""
        return bool(self._running)

    def is_running(self, job: Job) -> bool:
        return job in self._running

    def submit(self, job: Job) -> None:
        with self._lock:
            if self._stopping:
                raise RuntimeError("the generation service is stopping")
            self._waiting.append(job)
            job.events.put(("queue", self._place(len(self._waiting) - 1)))
            self._lock.notify_all()

    def withdraw(self, job: Job) -> None:
        """Take a job out of the queue (its reader has gone)."""
        job.cancelled.set()
        with self._lock:
            if job in self._waiting:
                self._waiting.remove(job)
                self._tell_positions()

    def position(self, job: Job) -> tuple[int, float | None]:
        """(requests ahead of `job`, estimated seconds until it starts)."""
        with self._lock:
            if job not in self._waiting:
                return 0, 0.0
            return self._place(self._waiting.index(job))

    def _place(self, index: int) -> tuple[int, float | None]:
        """(ahead, estimated wait) for the job at `index` in the queue.
        Ahead: how many jobs must start or end before it has a slot (with
        one slot: those waiting before it and the one being generated;
        0 when a slot is free for it). The wait: when a
        slot comes free for it, from the running jobs' remaining times and
        a whole job for each one waiting before it, at the average time a
        job has held a slot so far (None before any has finished)."""
        free = self.slots - len(self._running)
        ahead = max(0, index - free + 1)
        if self.job_seconds is None:
            return ahead, None
        now = time.monotonic()
        free_at = [max(0.0, self.job_seconds - (now - job.started)) for job in self._running if job.started is not None]
        free_at += [0.0] * (self.slots - len(free_at))
        heapq.heapify(free_at)
        for _ in range(index):  # each job before it takes the slot that comes free first
            heapq.heapreplace(free_at, free_at[0] + self.job_seconds)
        return ahead, round(free_at[0], 1)

    def _tell_positions(self) -> None:
        for i, waiting in enumerate(self._waiting):
            waiting.events.put(("queue", self._place(i)))

    def _work(self) -> None:
        try:
            while self._serve_next():
                pass
        finally:
            if self.batch is not None:
                for job in list(self._running):
                    self._end(job)

    def _serve_next(self) -> bool:
        """Admit what can start, then one step of work: a decode step of the
        batch, or one job alone. False once the service is stopping."""
        alone = None
        with self._lock:
            while not self._waiting and not self._running and not self._stopping:
                self._lock.wait()
            if self._stopping:
                return False
            admitted = []
            while self._waiting and len(self._running) < self.slots:
                head = self._waiting[0]
                if self.batch is None or not head.batchable:
                    if not self._running:  # alone: once the batch has emptied, in its turn
                        alone = self._waiting.popleft()
                        self._begin(alone)
                    break
                admitted.append(self._waiting.popleft())
                self._begin(admitted[-1])
            if alone is not None or admitted:
                self._tell_positions()
        if alone is not None:
            done = None
            try:
                done = self._generate(alone)
            finally:
                self._end(alone)  # before "done" is told: a reader who heard it finds the slot free
                if done is not None:
                    alone.events.put(done)
            return True
        for job in admitted:
            self._start_in_batch(job)
        for job in [j for j in self._running if j.sequence is not None and j.cancelled.is_set()]:
            self.batch.cancel(job.sequence)  # the reader has gone: the slot is free at once
            self._end(job)
        if self.batch is not None and self.batch.active:
            try:
                ended = self.batch.step()
            except GeneratorError as e:
                for job in [j for j in self._running if j.sequence is not None]:
                    job.events.put(("error", str(e)))
                    self._end(job)
                return True
            for sequence in ended:
                job = next(j for j in self._running if j.sequence is sequence)
                usage = sequence.usage
                job.completed = True
                self._end(job)
                job.events.put(("done", {"prompt_tokens": usage.prompt_tokens,
                                         "completion_tokens": usage.completion_tokens,
                                         "cached_tokens": usage.cached_tokens}))
        return True

    def _begin(self, job: Job) -> None:
        job.started = time.monotonic()
        self._running.append(job)
        job.events.put(("queue", (0, 0.0)))

    def _end(self, job: Job) -> None:
        with self._lock:
            if job not in self._running:
                return
            self._running.remove(job)
            self.served += 1
            if job.completed:
                took = time.monotonic() - job.started
                self.job_seconds = took if self.job_seconds is None else 0.7 * self.job_seconds + 0.3 * took
            job.sequence = None
            self._tell_positions()
            self._lock.notify_all()

    def _start_in_batch(self, job: Job) -> None:
        settings = job.settings
        try:
            job.sequence = self.batch.start(job.messages, max_tokens=settings["max_tokens"],
                                            temperature=settings["temperature"], seed=settings["seed"],
                                            stop=settings["stop"], on_text=lambda piece: job.events.put(("text", piece)))
        except Exception as e:  # told to the reader; the others go on
            job.events.put(("error", f"{type(e).__name__}: {e}" if not isinstance(e, GeneratorError) else str(e)))
            self._end(job)

    def _generate(self, job: Job) -> tuple | None:
        """One job alone, through the generator itself; its "done" event, to
        be told once its slot is free (None after an error or a cancel)."""
        if job.cancelled.is_set():
            return None
        if "choices" in job.settings:  # a judgement: the probability of each option, no text
            try:
                chances = self.generator.choice_probabilities(job.messages, job.settings["choices"])
            except Exception as e:
                job.events.put(("error", f"{type(e).__name__}: {e}" if not isinstance(e, GeneratorError) else str(e)))
                return None
            job.events.put(("probabilities", {k: float(v) for k, v in chances.items()}))
            job.completed = True
            return "done", None
        pieces = self.generator.stream(job.messages, **job.settings)
        try:
            for piece in pieces:
                if job.cancelled.is_set():
                    break  # the reader has gone, or the service is stopping: free the model
                job.events.put(("text", piece))
        except Exception as e:  # told to the reader; the service goes on serving the others
            job.events.put(("error", f"{type(e).__name__}: {e}" if not isinstance(e, GeneratorError) else str(e)))
            return None
        finally:
            if hasattr(pieces, "close"):
                pieces.close()
        if job.cancelled.is_set():
            return None
        usage = getattr(self.generator, "last_usage", None)
        job.completed = True
        return "done", None if usage is None else {"prompt_tokens": usage.prompt_tokens,
                                                   "completion_tokens": usage.completion_tokens,
                                                   "cached_tokens": usage.cached_tokens}


def _handler_class(service: GenerationService):
    class Handler(BaseHTTPRequestHandler):
        # HTTP/1.0: the reply ends when the connection closes, so it can
        # stream without a length or chunked encoding.
        protocol_version = "HTTP/1.0"
        server_version = "readingroom-generation"
        timeout = service.request_seconds  # reading the request; raised for the streamed reply

        def log_message(self, format, *args):  # quiet: one line per request is noise in a notebook's log
            pass

        def handle(self):
            try:
                super().handle()
            except (TimeoutError, ConnectionError):
                pass  # a connection that sent nothing in time, or went away: closed, nothing to tell

        def _authorised(self) -> bool:
            given = self.headers.get(TOKEN_HEADER, "")
            return hmac.compare_digest(given.encode(), service.token.encode())

        def _reply(self, status: int, body: dict) -> None:
            data = (json.dumps(body) + "\n").encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(data)

        def _refuse(self, status: int, message: str) -> None:
            """Say no without reading the request's body: the reply is sent
            and the sending side closed first, then a little of what the
            client is still sending is read and dropped, so that its side
            sees the reply rather than a reset."""
            self._reply(status, {"error": message})
            self.wfile.flush()
            try:
                self.connection.shutdown(socket.SHUT_WR)
                self.connection.settimeout(1.0)
                dropped = 0
                while dropped < DISCARD_BYTES:
                    chunk = self.connection.recv(8192)
                    if not chunk:
                        break
                    dropped += len(chunk)
            except OSError:
                pass

        def do_GET(self):
            if not self._authorised():
                return self._refuse(401, f"a valid {TOKEN_HEADER} header is required")
            if urlsplit(self.path).path != "/health":
                return self._reply(404, {"error": "not found"})
            generator = service.generator
            self._reply(200, {"model": getattr(generator, "name", None), "backend": getattr(generator, "backend", None),
                              "queue": service.queue_length(), "running": len(service._running),
                              "slots": service.slots, "served": service.served,
                              "job_seconds": service.job_seconds})

        def do_POST(self):
            # The token and the size are checked on the headers, before a
            # byte of the body is read.
            if not self._authorised():
                return self._refuse(401, f"a valid {TOKEN_HEADER} header is required")
            if urlsplit(self.path).path != "/generate":
                return self._refuse(404, "not found")
            try:
                length = int(self.headers.get("Content-Length") or 0)
            except ValueError:
                length = 0
            if not 0 < length <= MAX_REQUEST_BYTES:
                return self._refuse(413 if length > MAX_REQUEST_BYTES else 400,
                                    f"the request body must be 1 to {MAX_REQUEST_BYTES} bytes of JSON")
            raw = self.rfile.read(length)
            if len(raw) < length:
                return  # the client stopped sending: nobody to answer
            try:
                messages, settings = parse_request(raw)
            except RequestRefused as e:
                return self._reply(e.status, {"error": str(e)})
            job = Job(messages, settings)
            try:
                service.submit(job)
            except RuntimeError as e:
                return self._reply(503, {"error": str(e)})
            self.connection.settimeout(WRITE_SECONDS)
            self.send_response(200)
            self.send_header("Content-Type", "application/x-ndjson")
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            try:
                self._stream(job)
            except (BrokenPipeError, ConnectionResetError, TimeoutError):
                pass  # the reader went away
            finally:
                service.withdraw(job)

        def _stream(self, job: Job) -> None:
            told, last_write = None, time.monotonic()
            while True:
                try:
                    kind, value = job.events.get(timeout=PEER_CHECK_SECONDS)
                except Empty:
                    if self._peer_gone():
                        return  # waiting or being generated: either way its slot goes to the next reader
                    if service.is_running(job):
                        continue  # a long silence while generating (or reading its prompt): the next piece will come
                    if time.monotonic() - last_write >= HEARTBEAT_SECONDS:
                        self._send(self._queue_event(service.position(job)))  # still waiting: say so again
                        last_write = time.monotonic()
                    continue
                last_write = time.monotonic()
                if kind == "queue":
                    if value[0] != told:
                        told = value[0]
                        self._send(self._queue_event(value))
                elif kind == "text":
                    self._send({"text": value})
                elif kind == "probabilities":
                    self._send({"probabilities": value})
                elif kind == "done":
                    self._send({"done": True, "usage": value})
                    return
                else:
                    self._send({"error": value})
                    return

        @staticmethod
        def _queue_event(place) -> dict:
            ahead, wait = place
            return {"queue": ahead} if wait is None else {"queue": ahead, "wait": wait}

        def _peer_gone(self) -> bool:
            """Whether the reader closed the connection: it has sent its
            whole request, so the socket reads as ready only at its end."""
            try:
                readable, _, _ = select.select([self.connection], [], [], 0)
                return bool(readable) and self.connection.recv(1, socket.MSG_PEEK) == b""
            except OSError:
                return True

        def _send(self, event: dict) -> None:
            self.wfile.write((json.dumps(event, ensure_ascii=False) + "\n").encode())
            self.wfile.flush()

    return Handler


# --- the client -----------------------------------------------------------------------

class RemoteGenerator(Generator):
    """A Generator whose model runs in a GenerationService: what the app's
    kernels use, so that answer_stream works unchanged. While a request
    waits in the service's queue, the callback given to `watching()` (in
    the same thread) hears how many requests are ahead of it."""

    backend = "service"

    def __init__(self, url: str, token: str, *, timeout: float = 600.0):
        parts = urlsplit(url)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"the generation service's URL must be http://HOST:PORT, not {url!r}")
        self.url, self.token, self.timeout = url, token, timeout
        self._host, self._port = parts.hostname, parts.port or 80
        self._local = threading.local()
        self._name: str | None = None

    @classmethod
    def from_environment(cls) -> "RemoteGenerator | None":
        """The app's service, when this process was started by `readingroom app`."""
        url, token = os.environ.get(URL_VARIABLE), os.environ.get(TOKEN_VARIABLE)
        return cls(url, token) if url and token else None

    @property
    def name(self) -> str:
        if self._name is None:
            self._name = self.health().get("model") or "remote"
        return self._name

    @contextlib.contextmanager
    def watching(self, on_queue):
        """Call `on_queue(n, seconds)` with the requests ahead and the
        estimated wait (None until the service has timed one), while this
        thread's requests wait."""
        previous = getattr(self._local, "on_queue", None)
        self._local.on_queue = on_queue
        try:
            yield self
        finally:
            self._local.on_queue = previous

    def _connection(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection(self._host, self._port, timeout=self.timeout)

    def _failed(self, e: Exception) -> GeneratorError:
        return GeneratorError(f"the generation service at {self.url} cannot be reached ({e}); "
                              "is `readingroom app` still running?")

    def health(self) -> dict:
        connection = self._connection()
        try:
            connection.request("GET", "/health", headers={TOKEN_HEADER: self.token})
            response = connection.getresponse()
            body = json.loads(response.read() or b"{}")
        except (OSError, http.client.HTTPException, ValueError) as e:
            raise self._failed(e) from e
        finally:
            connection.close()
        if response.status != 200:
            raise GeneratorError(f"the generation service refused: {body.get('error', response.status)}")
        return body

    def stream(self, messages, *, max_tokens=256, temperature=0.0, seed=0, stop=None, json_schema=None):
        messages = checked_messages(messages)
        check_settings(max_tokens, temperature)
        self.last_usage = None
        for event in self._events({"messages": messages, "max_tokens": max_tokens, "temperature": temperature,
                                   "seed": seed, "stop": list(stop) if stop else None,
                                   "json_schema": dict(json_schema) if json_schema else None}):
            if "text" in event:
                yield event["text"]

    def choice_probabilities(self, messages, options):
        """The service's model's probabilities for each option (the judge's
        question), asked as a request of its own in the same queue."""
        chances = {}
        for event in self._events({"messages": checked_messages(messages), "choices": list(options)}):
            chances.update(event.get("probabilities", {}))
        return chances

    def _events(self, request: dict):
        """The service's events for one request, up to "done": the queue's
        are told to the watcher; an error is raised."""
        body = json.dumps(request).encode()
        on_queue = getattr(self._local, "on_queue", None)
        for attempt in range(BUSY_RETRIES + 1):
            connection = self._connection()
            try:
                connection.request("POST", "/generate", body=body, headers={
                    TOKEN_HEADER: self.token, "Content-Type": "application/json"})
                response = connection.getresponse()
            except (BrokenPipeError, ConnectionResetError, http.client.RemoteDisconnected) as e:
                # Turned away while sending: every connection was taken (the
                # 503 came with a close). Idle ones are closed within seconds: again.
                connection.close()
                if attempt == BUSY_RETRIES:
                    raise self._failed(e) from e
                time.sleep(min(2.0, 0.25 * 2 ** attempt))
                continue
            except (OSError, http.client.HTTPException) as e:
                connection.close()
                raise self._failed(e) from e
            if response.status != 503 or attempt == BUSY_RETRIES:
                break
            connection.close()
            time.sleep(min(2.0, 0.25 * 2 ** attempt))
        try:
            if response.status != 200:
                try:
                    reason = json.loads(response.read() or b"{}").get("error")
                except ValueError:
                    reason = None
                raise GeneratorError(f"the generation service refused the request ({response.status}): "
                                     f"{reason or response.reason}")
            while True:
                try:
                    line = response.readline()
                except (OSError, http.client.HTTPException) as e:
                    raise self._failed(e) from e
                if not line:
                    raise GeneratorError("the generation service closed the connection before the answer ended")
                event = json.loads(line)
                if "text" in event or "probabilities" in event:
                    yield event
                elif "queue" in event:
                    if on_queue is not None:
                        on_queue(int(event["queue"]), event.get("wait"))
                elif "done" in event:
                    usage = event.get("usage")
                    if usage:
                        self.last_usage = TokenUsage(usage.get("prompt_tokens"), usage.get("completion_tokens"),
                                                     usage.get("cached_tokens"))
                    return
                elif "error" in event:
                    raise GeneratorError(f"generation failed in the service: {event['error']}")
        finally:
            # Closing early (the reader stopped iterating) closes the socket,
            # which tells the service to stop this generation.
            connection.close()


# --- running one -------------------------------------------------------------------------

def main(argv=None) -> None:
    """Load a model, serve it, print one line {"url": ...} on stdout once
    ready; the token comes from $READINGROOM_GENERATION_TOKEN (kept out of
    the command line, which every user of the machine can read)."""
    from readingroom.models.generate import load_generator
    from readingroom.models.catalogue import DEFAULT_GENERATOR

    parser = argparse.ArgumentParser(prog="python -m readingroom.ui.service")
    parser.add_argument("--model", default=DEFAULT_GENERATOR)
    parser.add_argument("--backend", default="llama.cpp")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--slots", type=int, default=DEFAULT_SLOTS,
                        help="answers decoded together (1: one at a time, the baseline)")
    args = parser.parse_args(argv)
    try:
        generator = load_generator(args.model, backend=args.backend)
        # One token now: a model's first call is its slowest, and the first
        # reader should not pay for it.
        generator.generate([{"role": "user", "content": "Hello"}], max_tokens=1)
    except Exception as e:  # reported to the app, which prints it and stops
        print(json.dumps({"error": str(e)}), flush=True)
        sys.exit(1)
    service = GenerationService(generator, host=args.host, port=args.port, slots=args.slots,
                                token=os.environ.get(TOKEN_VARIABLE)).start()
    print(json.dumps({"url": service.url, "model": generator.name}), flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        service.stop()


if __name__ == "__main__":
    main()
