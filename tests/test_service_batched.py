"""The generation service with continuous batching (slots > 1), with the
real test model (SmolLM2-135M, llama.cpp): answers asked together are
decoded together, each gets its own text, the same as one at a time; the
shared system prompt is read once; a reader who goes away frees the slot;
`stop()` ends every answer being written; a waiting reader still hears its
place. The one-at-a-time service (slots=1) is tested in test_chat.py."""
from __future__ import annotations

import http.client
import json
import threading
import time

import pytest

from readingroom.models.generate import GeneratorError
from readingroom.ui.service import TOKEN_HEADER, GenerationService, RemoteGenerator

SYSTEM = ("You answer questions about the history of the labour movement in short, plain sentences. "
          "Say only what you know for certain, and say so when you do not know.")
QUESTIONS = ["What was the Paris Commune?", "Who wrote the Communist Manifesto?",
             "What is a general strike?", "Why did the First International split?"]
LONG = [{"role": "user", "content": "Write the numbers from 1 to 1000, separated by commas."}]  # greedy: it writes until stopped


def messages(question: str) -> list[dict]:
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": question}]


def wait_for(condition, seconds=60.0):
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.01)


def ask_together(remote_for, requests: list[dict]) -> tuple[list, list]:
    """Send every request at the same moment, each from its own thread; (texts, usages)."""
    texts, usages = [None] * len(requests), [None] * len(requests)

    def one(i):
        remote = remote_for()
        texts[i] = remote.generate(**requests[i])
        usages[i] = remote.last_usage

    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(requests))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(180)
    return texts, usages


def open_request(service, body: dict):
    """A /generate request left open: (connection, response)."""
    connection = http.client.HTTPConnection(*service.server.server_address[:2], timeout=60)
    connection.request("POST", "/generate", body=json.dumps(body),
                       headers={"Content-Type": "application/json", TOKEN_HEADER: service.token})
    return connection, connection.getresponse()


@pytest.mark.slow
def test_answers_asked_together_are_decoded_together_each_the_same_as_alone(generator):
    # Greedy decoding in a batch gives the same tokens as alone here: each
    # sequence attends over its own KV stream, and its row of the matrix
    # products comes out the same beside other rows. llama.cpp does not
    # promise that for every batch width (its kernels can sum in another
    # order), so answers are kept short; with the unified cache (one pool
    # of cells, masked) two of these four answers did differ after 20 to
    # 35 tokens, at a near-tie of this 135M model.
    settings = {"max_tokens": 24, "temperature": 0.0}
    alone = [generator.generate(messages(q), **settings) for q in QUESTIONS]
    with GenerationService(generator, slots=4) as service:
        texts, usages = ask_together(lambda: RemoteGenerator(service.url, service.token),
                                     [{"messages": messages(q), **settings} for q in QUESTIONS])
        assert service.batch.widest_step >= 2, "the answers were not decoded in one batch"
        assert not service.batch.active and service.served == 4
    assert texts == alone
    assert len(set(texts)) == 4  # each reader got their own answer, not a neighbour's
    # The shared start (the system prompt) was read once and copied to the
    # others: three of the four prompts read only part of themselves.
    assert all(u.completion_tokens >= 1 and u.prompt_tokens > 0 for u in usages)
    shared = sorted(u.cached_tokens for u in usages)
    assert shared[0] == 0 and shared[1] > 30, usages


@pytest.mark.slow
def test_a_later_question_reads_only_what_follows_the_shared_system_prompt(generator):
    alone = [generator.generate(messages(q), max_tokens=48) for q in QUESTIONS[:2]]
    with GenerationService(generator, slots=2) as service:
        remote = RemoteGenerator(service.url, service.token)
        texts = [remote.generate(messages(QUESTIONS[0]), max_tokens=48)]
        first = remote.last_usage
        texts.append(remote.generate(messages(QUESTIONS[1]), max_tokens=48))
        second = remote.last_usage
        read = service.batch.prompt_tokens_read
    # One at a time through the batch (its prefix cache, its sampler, its
    # detokenising and stop strings): exactly the generator's own text.
    assert texts == alone
    assert first.cached_tokens == 0
    # Everything before the question's own words came from the cache.
    system_tokens = len(generator.llama.tokenize(SYSTEM.encode(), add_bos=False, special=False))
    assert second.cached_tokens > system_tokens
    assert read == first.prompt_tokens + second.prompt_tokens - second.cached_tokens


@pytest.mark.slow
def test_judgements_and_schemas_go_one_at_a_time_between_batched_answers(generator):
    schema = {"type": "object", "properties": {"answer": {"type": "string"}}, "required": ["answer"]}
    with GenerationService(generator, slots=4) as service:
        make = lambda: RemoteGenerator(service.url, service.token)  # noqa: E731
        texts, _ = ask_together(make, [{"messages": messages(QUESTIONS[0]), "max_tokens": 8},
                                       {"messages": messages("Reply in JSON."), "max_tokens": 24,
                                        "json_schema": schema},
                                       {"messages": messages(QUESTIONS[1]), "max_tokens": 8}])
        chances = make().choice_probabilities(messages("Is the sky blue? Answer yes or no."), ["yes", "no"])
        assert service.served == 4
    assert all(texts) and texts[1].lstrip().startswith("{")
    assert set(chances) == {"yes", "no"} and 0 < sum(chances.values()) <= 1.0001


@pytest.mark.slow
def test_a_reader_who_goes_away_frees_the_slot_and_a_waiting_reader_hears_its_place(generator):
    with GenerationService(generator, slots=2) as service:
        remote = RemoteGenerator(service.url, service.token)
        remote.generate(messages(QUESTIONS[0]), max_tokens=2)  # one timed: the service can estimate waits
        first, first_response = open_request(service, {"messages": LONG, "max_tokens": 1500})
        second, second_response = open_request(service, {"messages": LONG, "max_tokens": 1500})
        for response in (first_response, second_response):  # each has a slot: not waiting
            assert json.loads(response.readline()) == {"queue": 0, "wait": 0.0}
        places = []

        def third_reader():
            with remote.watching(lambda n, wait: places.append((n, wait))):
                places.append(remote.generate(messages(QUESTIONS[1]), max_tokens=4))

        third = threading.Thread(target=third_reader)
        third.start()
        wait_for(lambda: service.queue_length() == 1)
        wait_for(lambda: places)
        ahead, wait = places[0]
        assert ahead == 1 and wait is not None and wait >= 0  # every slot taken: one to finish before it
        first_response.close()
        first.close()  # the page was closed
        third.join(60)  # it got the freed slot while the other long answer was still being written
        assert not third.is_alive() and isinstance(places[-1], str) and places[-1]
        assert places[-2][0] == 0  # it heard that it had a slot
        wait_for(lambda: len(service.batch.active) == 1, seconds=10)  # the second long answer goes on
        second_response.close()
        second.close()
        wait_for(lambda: not service.batch.active, seconds=10)


@pytest.mark.slow
def test_stop_ends_every_answer_being_written(generator):
    service = GenerationService(generator, slots=2).start()
    remote = RemoteGenerator(service.url, service.token)
    failures, pieces = [], []

    def ask():
        try:
            for piece in remote.stream(LONG, max_tokens=1500):
                pieces.append(piece)
        except GeneratorError as e:
            failures.append(str(e))

    readers = [threading.Thread(target=ask) for _ in range(2)]
    for reader in readers:
        reader.start()
    wait_for(lambda: len(pieces) >= 4)
    assert len(service._running) == 2
    started = time.monotonic()
    service.stop()
    for reader in readers:
        reader.join(30)
    assert time.monotonic() - started < 30
    assert len(failures) == 2 and all("stopping" in f for f in failures)
    written = len(pieces)
    time.sleep(0.5)
    assert len(pieces) == written and not service._running
