"""The chat widget's handlers, run in plain Python (Button.click() runs them;
the answer's thread is waited for), with the real test generator
(SmolLM2-135M, llama.cpp) and the real default embedder (MiniLM) on a tiny
library; and the generation service the app shares one model through, with
the same real model."""
from __future__ import annotations

import base64
import dataclasses
import http.client
import json
import re
import socket
import threading
import time
from urllib.parse import unquote

import pytest
from conftest import CELLARS, COMMUNE, EVIL, build_chat_library

from readingroom import open_library
from readingroom.answer.pipeline import Answer, citation_list, further_reading
from readingroom.answer.render import escape_markdown
from readingroom.ui.chat import Chat, answer_html, cards_html, conversation_markdown
from readingroom.models.embed import load_embedder
from readingroom.models.generate import Generator, GeneratorError
from readingroom.ui.service import TOKEN_HEADER, GenerationService, RemoteGenerator
from readingroom.models.catalogue import DEFAULT_EMBEDDER, TEST_GENERATOR
from readingroom.search.searcher import Hit
from readingroom.answer.check import SupportChecker, check_answer

COMMUNE_QUESTION = "How long did the Paris Commune of 1871 last before it was crushed?"


@pytest.fixture(scope="module")
def shelf(tmp_path_factory):
    """The tiny library, embedded with MiniLM; BM25 indexes in a cache of its own."""
    import readingroom.search.ann as ann_module
    import readingroom.search.index as index_module

    folder = tmp_path_factory.mktemp("chat")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(index_module, "cache_dir", lambda: folder / "cache")
        patch.setattr(ann_module, "cache_dir", lambda: folder / "cache")
        path = build_chat_library(folder / "library.duckdb", embed=True)
        with open_library(path, read_only=True) as lib:
            yield lib


ANSWER_TOKENS = 64  # the small model often writes until it is stopped: a short answer keeps the tests quick


@pytest.fixture
def chat(shelf, generator):
    return Chat(shelf, generator=generator, k=3, max_tokens=ANSWER_TOKENS)


def ask(chat, question, timeout=180):
    turn = chat.ask(question)
    assert turn is not None, "the question was not taken"
    chat.wait(timeout)
    assert not chat.busy, "the answer did not finish in time"
    return turn


def no_markup_from_the_corpus(html_text: str):
    """No tag or attribute of the evil passage survives as HTML."""
    lowered = html_text.lower()
    assert "<script" not in lowered and "<img" not in lowered  # an onerror= could only live in a tag
    assert "<b>markup" not in lowered and "<i>on</i>" not in lowered and 'href="javascript' not in lowered


# --- asking --------------------------------------------------------------------------

@pytest.mark.slow
def test_the_answer_streams_in_unchecked_then_is_replaced_by_the_checked_answer_with_source_cards(chat):
    seen = []

    def watch(change):  # runs in the click's handler, before the answer's thread starts
        for box in change["new"][len(change["old"]):]:
            box.children[2].observe(lambda c: seen.append(c["new"]), "value")

    chat.conversation.observe(watch, "children")
    chat.question.value = COMMUNE_QUESTION
    chat.send_button.click()
    turn = chat.turns[-1]
    assert chat.send_button.disabled and chat.busy  # no second question while this one is answered
    chat.wait(180)
    assert not chat.send_button.disabled and chat.question.value == ""
    result = chat.answers[-1]
    assert isinstance(result, Answer) and result.raw, "the model was asked"
    drafts = [v for v in seen if "rr-unchecked" in v and "rr-checked" not in v]
    assert drafts, "the model's text was shown while it was written"
    assert "not checked yet" in drafts[0]
    assert "rr-checked" in turn.answer.value and "not checked yet" not in turn.answer.value
    # A card per passage given, each with its citation and text.
    cards = re.findall(r'<details class="rr-card"', turn.sources.value)
    assert len(cards) == len(result.passages) == 3
    assert result.passages[0].text == COMMUNE and "seventy-two days" in turn.sources.value
    assert "The Civil War in France" in turn.sources.value and "#ch05" in turn.sources.value
    assert 'href="https://www.marxists.org/archive/marx/works/1871/civil-war-france/#ch05"' in turn.sources.value
    assert result.supported and "checked answer" in turn.status.value, result.raw


@pytest.mark.slow
def test_a_question_the_library_cannot_answer_is_shown_as_not_answered_with_the_closest_passages(chat):
    turn = ask(chat, "Who won the 2018 FIFA World Cup final in Moscow?")
    result = chat.answers[-1]
    assert result.abstained and not result.raw  # stopped by the gate: the model was not asked
    assert "not answered" in turn.status.value and "checked answer" not in turn.status.value
    assert "rr-abstained" in turn.answer.value and "do not answer this question" in turn.answer.value
    assert "The closest passages:" in turn.answer.value


@pytest.mark.slow
def test_a_question_naming_someone_the_library_never_mentions_says_who(chat):
    turn = ask(chat, "How long did Bortkiewicz say the Paris Commune of 1871 lasted?")
    result = chat.answers[-1]
    assert result.abstained and not result.raw and result.gate["unknown_names"] == ["Bortkiewicz"]
    assert "The library never mentions Bortkiewicz." in turn.answer.value
    assert "the model was not asked: the library never mentions Bortkiewicz" in turn.answer.value
    assert "not answered: the library never mentions Bortkiewicz" in turn.status.value  # not "the passages do not"


@pytest.mark.slow
def test_corpus_text_and_model_output_are_escaped_wherever_they_become_html(chat):
    turn = ask(chat, "What went up on the barricades of the Paris Commune in March 1871?")
    result = chat.answers[-1]
    assert any(h.text == EVIL for h in result.passages), "the passage with markup must be shown"
    for value in (turn.answer.value, turn.sources.value, turn.asked.value):
        no_markup_from_the_corpus(value)
    assert "&lt;script&gt;window.__pwned = &#x27;script&#x27;&lt;/script&gt;" in turn.sources.value
    assert "&lt;img src=x onerror=&quot;window.__pwned = &#x27;img&#x27;&quot;&gt;" in turn.sources.value
    assert "Mallory &lt;b&gt;Markup&lt;/b&gt;" in turn.sources.value
    # Whatever the model wrote, even if it repeated the markup, is escaped too.
    repeated = dataclasses.replace(result, raw=f"The model repeats the passage: {EVIL} [1]")
    raw_shown = re.search(r'<details class="rr-raw">.*?</details>', answer_html(repeated), re.S)
    assert raw_shown and "&lt;script&gt;" in raw_shown.group(0)
    no_markup_from_the_corpus(answer_html(repeated))
    # The Markdown export escapes it too (Markdown viewers pass HTML through),
    # whether or not the model cited the passage: an answer that cites it, checked.
    n = next(i for i, h in enumerate(result.passages, start=1) if h.text == EVIL)
    raw = f"The barricades of the Paris Commune went up in March 1871, and its decrees were posted on the walls [{n}]."
    checked = check_answer(raw, result.passages, SupportChecker(load_embedder(DEFAULT_EMBEDDER)))
    cited = Answer(question="When did the barricades go up?", rewritten_question="When did the barricades go up?",
                   language="en", passages=result.passages, raw=raw, sentences=checked.sentences, body=checked.text,
                   citations=citation_list(checked, result.passages), supported=True, abstained=False,
                   further_reading=further_reading(result.passages, checked.cited), invented_citations=[])
    assert [c["n"] for c in cited.citations] == [n]
    exported = conversation_markdown(chat.answers + [cited])
    assert "<script" not in exported and "<img" not in exported and "<i>" not in exported
    assert "Notes &lt;i&gt;on&lt;/i&gt; the Commune" in exported and "Mallory &lt;b&gt;Markup&lt;/b&gt;" in exported
    # A question typed with markup is shown as text.
    turn = ask(chat, "<img src=x onerror=alert(1)> Who won the 2018 FIFA World Cup final in Moscow?")
    assert "&lt;img src=x onerror=alert(1)&gt;" in turn.asked.value and "<img" not in turn.asked.value


TRACKER = "![](https://tracker.example/pixel.gif)"
PHISH = "[verify](https://evil.example/login)"


def test_markdown_links_and_images_from_titles_quotes_and_model_text_come_out_inert():
    """Issue 18, finding 8: a title, a quotation or the model's words holding
    Markdown link or image syntax must not become a link or a loaded image
    in the exported conversation (nor in a news digest, same escaper)."""
    from readingroom.answer.render import escape_markdown as one_escaper
    from readingroom.news.render import md as news_md

    text = f"Working families in Manchester lived in damp cellars {PHISH} and slept seven to a room {TRACKER}."
    hits = [Hit(passage_id="p1", doc_id="d1", title=f"The Condition {TRACKER}", author=f"Friedrich {PHISH} Engels",
                year=1845, citation=f"Engels, The Condition {TRACKER} (1845), ¶1", anchor=None, score=1.0, text=text,
                authors=[f"Friedrich {PHISH} Engels"], url="https://example.org/condition")]
    raw = f"Engels writes that working families in Manchester lived in damp cellars {PHISH} {TRACKER} [1]."
    checked = check_answer(raw, hits, SupportChecker(None))  # words alone: no model needed
    assert checked.supported, checked.sentences
    result = Answer(question=f"Where did they live? {TRACKER}", rewritten_question="Where did they live?",
                    language="en", passages=hits, raw=raw, sentences=checked.sentences, body=checked.text,
                    citations=citation_list(checked, hits), supported=True, abstained=False,
                    further_reading=further_reading(hits, checked.cited), invented_citations=[])
    assert TRACKER in result.body and PHISH in result.citations[0]["quote"]  # the case is really there
    exported = conversation_markdown([result])
    # Live syntax would be an unescaped "![" or "](": every one must be backslashed.
    assert "![" not in exported and "](" not in exported.replace("\\](", "")
    assert "!\\[\\](https://tracker.example/pixel.gif)" in exported  # shown as text, escaped
    assert "\\[verify\\](https://evil.example/login)" in exported
    for escaped in (one_escaper(TRACKER), news_md(PHISH)):
        assert "![" not in escaped and "](" not in escaped.replace("\\]", "")


@pytest.mark.slow
def test_source_cards_show_the_checkers_marks_kept_and_dropped(shelf):
    """A hand-written model answer through the real checker: the cards say
    which sentences cited each passage, with their scores, and which were dropped."""
    hits = [Hit(passage_id=f"p{n}", doc_id=f"d{n}", title=t, author=a, year=None, citation=f"{t}, ¶{n}",
                anchor=None, score=1.0, text=x, authors=[a]) for n, (t, a, x) in
            enumerate([("The Civil War in France", "Karl Marx", COMMUNE),
                       ("The Condition of the Working Class", "Friedrich Engels", CELLARS)], start=1)]
    raw = ("Marx writes that the Paris Commune of 1871 was crushed after seventy-two days [1]. "
           "The moon is made of green cheese and orbits Jupiter [2].\n\nWorkers sailed to the moon [7].")
    checked = check_answer(raw, hits, SupportChecker(load_embedder(DEFAULT_EMBEDDER)))
    result = Answer(question="How long did the Commune last?", rewritten_question="How long did the Commune last?",
                    language="en", passages=hits, raw=raw, sentences=checked.sentences, body=checked.text,
                    citations=citation_list(checked, hits), supported=True, abstained=False,
                    further_reading=further_reading(hits, checked.cited), invented_citations=checked.invented)
    cards = cards_html(result)
    first, second = cards.split('<details class="rr-card" data-n="2">')
    assert "rr-cited" in first and re.search(r"✓ kept, support 0\.\d\d: Marx writes", first)
    assert "not cited" in second and "✗ The moon is made of green cheese" in second
    assert re.search(r"dropped: support 0\.\d\d, below 0\.50", second)
    shown = answer_html(result)
    assert "What the check left out (2)" in shown and "cites only passages it was not given: [7]" in shown
    assert "citations to passages it was not given removed: [7]" in shown
    assert "cheese" not in shown.split("rr-left-out")[0]  # not in the checked answer itself


# --- filters, follow-ups, a new conversation ------------------------------------------------

@pytest.mark.slow
def test_filters_come_from_the_library_and_limit_the_passages(chat):
    assert ("Friedrich Engels", "Friedrich Engels") in chat.author.options
    assert chat.years.min == 1845 and chat.years.max == 1999
    assert [v for _, v in chat.source.options] == ["", "test"] and [v for _, v in chat.language.options] == ["", "en"]
    assert not chat.filters()  # the whole year range: no year filter (documents without a year stay in)
    chat.author.value = "Friedrich Engels"
    ask(chat, COMMUNE_QUESTION)
    assert chat.answers[-1].passages and all(h.authors == ["Friedrich Engels"] for h in chat.answers[-1].passages)
    chat.author.value = ""
    chat.years.value = (1860, 1900)
    assert chat.filters().year_from == 1860 and chat.filters().year_to == 1900
    ask(chat, "Who lived in damp cellars, and where?")
    assert chat.answers[-1].passages and all(1860 <= h.year <= 1900 for h in chat.answers[-1].passages)
    chat.passages.value = 1
    chat.years.value = (chat.years.min, chat.years.max)
    ask(chat, "Who won the 2018 FIFA World Cup final in Moscow?")  # stopped by the gate: the closest are shown
    assert len(chat.answers[-1].passages) == 1


@pytest.mark.slow
def test_a_follow_up_uses_the_conversation_which_exports_as_markdown_and_new_conversation_forgets_it(
        chat, tmp_path):
    ask(chat, "What did Engels write about the cellars in Manchester?")
    assert chat.answers[-1].rewrite == "none"
    turn = ask(chat, "And how many people slept in one room there?")
    follow_up = chat.answers[-1]
    assert follow_up.rewrite in ("model", "fallback") and follow_up.rewritten_question != follow_up.question
    assert follow_up.passages[0].text == CELLARS
    assert "searched for:" in turn.answer.value
    assert len(chat.conversation.children) == 2

    # The conversation as Markdown, with each answer's citations.
    text = chat.markdown()
    assert text.startswith("# A conversation with the library")
    assert "## 1. What did Engels write about the cellars in Manchester?" in text
    assert "## 2. And how many people slept in one room there?" in text
    assert f"_searched for: {follow_up.rewritten_question}_" in text
    for a in chat.answers:
        assert escape_markdown(a.body.split("\n")[0]) in text
        for c in a.citations:
            assert f"- \\[{c['n']}\\] {escape_markdown(c['citation'])}" in text
        for doc in a.further_reading:
            assert escape_markdown(doc["title"]) in text
    assert "model: " + escape_markdown(TEST_GENERATOR) in text
    # The download link carries exactly this text, and so does the saved file.
    link = re.search(r'href="data:text/markdown;charset=utf-8;base64,([^"]+)"', chat.export_link.value).group(1)
    assert base64.b64decode(unquote(link)).decode() == text
    assert 'download="reading-room-conversation.md"' in chat.export_link.value
    assert chat.save_markdown(tmp_path / "talk.md").read_text() == text

    chat.new_button.click()
    assert chat.answers == [] and chat.conversation.children == () and chat.export_link.value == ""
    ask(chat, "And how many people slept in one room there?")
    assert chat.answers[-1].rewrite == "none"  # nothing earlier to rewrite it with


# --- errors are shown, not raised -------------------------------------------------------------

@pytest.mark.slow
def test_a_model_that_is_not_fetched_is_reported_in_the_chat_with_how_to_fetch_it(shelf, tmp_path, monkeypatch):
    chat = Chat(shelf, model="qwen2.5-coder-0.5b-instruct-q4_k_m", k=2)
    monkeypatch.setenv("READINGROOM_CACHE", str(tmp_path / "empty-cache"))  # no model is fetched there
    turn = ask(chat, COMMUNE_QUESTION)
    assert turn.error and "readingroom models fetch qwen2.5-coder-0.5b-instruct-q4_k_m" in turn.error
    assert "rr-error" in turn.answer.value and "Traceback" not in turn.answer.value
    assert not chat.send_button.disabled and chat.answers == []


def test_a_library_that_cannot_be_opened_is_reported_and_send_stays_off(tmp_path):
    chat = Chat(tmp_path / "missing.duckdb")
    assert "cannot be opened" in chat.header.value and chat.send_button.disabled
    assert chat.ask("Anything?") is None


# --- the generation service ------------------------------------------------------------------

@pytest.fixture
def service(generator):
    with GenerationService(generator) as running:
        yield running


def wait_for(condition, seconds=60.0):
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.01)


@pytest.mark.slow
def test_the_service_answers_in_order_of_arrival_and_tells_each_its_place(service, generator):
    remote = RemoteGenerator(service.url, service.token)
    assert remote.name == TEST_GENERATOR and remote.health()["queue"] == 0
    positions, finished, texts = {}, [], {}

    def request(name):
        seen = positions.setdefault(name, [])
        with remote.watching(lambda n, wait: seen.append(n)):
            texts[name] = remote.generate([{"role": "user", "content": f"Say the word {name}."}], max_tokens=8)
        finished.append(name)

    # Holding the model's own lock keeps the first request generating, so
    # that the others queue behind it in a known order.
    threads = []
    with generator._lock:
        for i, name in enumerate(["first", "second", "third"]):
            threads.append(threading.Thread(target=request, args=(name,)))
            threads[-1].start()
            wait_for(lambda: service.running and service.queue_length() == i)
        wait_for(lambda: positions.get("third"))
    for t in threads:
        t.join(120)
    assert finished == ["first", "second", "third"]
    assert positions["first"] == [0]
    assert positions["second"][0] == 1 and positions["second"][-1] == 0
    assert positions["third"][0] == 2 and positions["third"][-1] == 0
    assert positions["third"] == sorted(positions["third"], reverse=True)
    assert all(texts.values()) and service.served == 3
    # The same text as the model gives directly: the service adds nothing.
    direct = generator.generate([{"role": "user", "content": "Say the word first."}], max_tokens=8)
    assert texts["first"] == direct
    assert remote.last_usage and remote.last_usage.completion_tokens >= 1


@pytest.mark.slow
def test_the_service_refuses_requests_without_its_token(service):
    with pytest.raises(GeneratorError, match="401"):
        RemoteGenerator(service.url, "not-the-token").generate([{"role": "user", "content": "Hello"}])
    for headers in ({}, {TOKEN_HEADER: service.token[:-1]}):
        connection = http.client.HTTPConnection(*service.server.server_address[:2], timeout=10)
        connection.request("POST", "/generate", body=json.dumps({"messages": [{"role": "user", "content": "x"}]}),
                           headers={"Content-Type": "application/json", **headers})
        assert connection.getresponse().status == 401
        connection.close()
    assert service.served == 0 and service.queue_length() == 0


def raw_request(service, head: bytes, body: bytes = b"", wait: float = 10.0) -> tuple[int, dict, float]:
    """Send bytes as they are; (status, JSON body, seconds to the reply)."""
    started = time.monotonic()
    with socket.create_connection(service.server.server_address[:2], timeout=wait) as s:
        s.sendall(head + body)
        data = b""
        while chunk := s.recv(65536):  # to the end: the service closes after a refusal
            data += chunk
    status = int(data.split(b" ", 2)[1])
    return status, json.loads(data.split(b"\r\n\r\n", 1)[1] or b"{}"), time.monotonic() - started


def post_head(token: str, length: int) -> bytes:
    return (f"POST /generate HTTP/1.0\r\nContent-Type: application/json\r\n{TOKEN_HEADER}: {token}\r\n"
            f"Content-Length: {length}\r\n\r\n").encode()


@pytest.mark.slow
def test_the_token_and_the_size_are_checked_before_the_body_is_read(service):
    # A gigabyte announced, not a byte of it sent: the refusal comes at once.
    status, body, seconds = raw_request(service, post_head("not-the-token", 1 << 30))
    assert status == 401 and TOKEN_HEADER in body["error"] and seconds < 5
    status, body, seconds = raw_request(service, post_head(service.token, 1 << 30))
    assert status == 413 and "bytes" in body["error"] and seconds < 5
    # A client already sending its too-large body hears the refusal too, and the service goes on.
    status, body, _ = raw_request(service, post_head(service.token, 8 << 20), b"[" * 32_000)
    assert status == 413
    assert RemoteGenerator(service.url, service.token).health()["served"] == 0


@pytest.mark.slow
@pytest.mark.parametrize("request_body, complaint", [
    (b'{"messages": [{"role": "user", "content": "x"}], "max_tokens": 1e999}', "finite"),
    (b'{"messages": [{"role": "user", "content": "x"}], "max_tokens": 1000000000}', "max_tokens"),
    (b'{"messages": [{"role": "user", "content": "x"}], "max_tokens": 2.5}', "max_tokens"),
    (b'{"messages": [{"role": "user", "content": "x"}], "temperature": NaN}', "finite"),
    (b'{"messages": [{"role": "user", "content": "x"}], "temperature": Infinity}', "finite"),
    (b'{"messages": [{"role": "user", "content": "x"}], "temperature": 7}', "temperature"),
    (b'{"messages": [{"role": "user", "content": "x"}], "temperature": -1}', "temperature"),
    (b'{"messages": [{"role": "user", "content": "x"}], "seed": -1}', "seed"),
    (b'{"messages": [{"role": "user", "content": "x"}], "stop": ["' + b"y" * 100 + b'"]}', "stop"),
    (b'{"messages": ' + b"[" * 30 + b"]" * 30 + b"}", "message"),
    (b"[" * 200_000 + b"]" * 200_000, "nested too deeply"),
    (b'{"messages": "Hello"}', "messages"),
    (b"\xff\xfe not JSON", "not JSON"),
])
def test_bad_numbers_and_deep_json_are_refused_with_400_not_a_traceback(service, request_body, complaint):
    status, body, _ = raw_request(service, post_head(service.token, len(request_body)), request_body)
    assert status == 400 and complaint in body["error"]
    assert service.queue_length() == 0 and service.served == 0


@pytest.mark.slow
def test_idle_connections_cannot_lock_the_service_up(generator):
    with GenerationService(generator, max_connections=4, request_seconds=1.0) as small:
        idle = [socket.create_connection(small.server.server_address[:2], timeout=10) for _ in range(12)]
        try:
            remote = RemoteGenerator(small.url, small.token)
            started = time.monotonic()
            # Told 503 while the idle ones hold every slot, the client tries again; they are closed after 1 s.
            assert remote.generate([{"role": "user", "content": "Say yes."}], max_tokens=2)
            assert time.monotonic() - started < 30
            for s in idle:  # every idle one was closed by the service (after a 503, or after 1 s idle)
                while s.recv(4096):
                    pass
        finally:
            for s in idle:
                s.close()


class Counting(Generator):
    """The real model, counting the pieces it writes (to see a generation stop)."""

    def __init__(self, inner):
        self.inner, self.name, self.backend, self.pieces = inner, inner.name, inner.backend, 0
        self.last_usage = None

    def stream(self, messages, **settings):
        for piece in self.inner.stream(messages, **settings):
            self.pieces += 1
            yield piece


@pytest.mark.slow
def test_stop_cancels_the_request_being_generated(generator):
    counting = Counting(generator)
    service = GenerationService(counting).start()
    remote = RemoteGenerator(service.url, service.token)
    failures = []

    def ask():
        try:
            remote.generate([{"role": "user", "content": "Count from one to five hundred in words."}],
                            max_tokens=1500)
        except GeneratorError as e:
            failures.append(str(e))

    reader = threading.Thread(target=ask)
    with generator._lock:  # the request is taken by the worker, and waits for the model
        reader.start()
        wait_for(lambda: service.running)
        stopping = threading.Thread(target=service.stop)
        stopping.start()
        wait_for(lambda: failures, seconds=30)
    stopping.join(60)
    reader.join(60)
    assert not stopping.is_alive() and "stopping" in failures[0]
    assert counting.pieces <= 2, f"the model went on writing after stop(): {counting.pieces} pieces"


@pytest.mark.slow
def test_a_reader_who_goes_away_leaves_the_queue(service, generator):
    remote = RemoteGenerator(service.url, service.token)
    blocker = threading.Thread(target=remote.generate, args=([{"role": "user", "content": "Hi"}],),
                               kwargs={"max_tokens": 4})
    with generator._lock:
        blocker.start()
        wait_for(lambda: service.running)
        connection = http.client.HTTPConnection(*service.server.server_address[:2], timeout=30)
        connection.request("POST", "/generate", body=json.dumps({"messages": [{"role": "user", "content": "x"}]}),
                           headers={"Content-Type": "application/json", TOKEN_HEADER: service.token})
        response = connection.getresponse()
        assert json.loads(response.readline())["queue"] == 1
        assert service.queue_length() == 1
        response.close()
        connection.close()  # the page was closed
        wait_for(lambda: service.queue_length() == 0, seconds=10)
    blocker.join(60)
    assert service.served == 1  # the blocker only: the request that left was never generated


@pytest.mark.slow
def test_the_chat_in_the_app_shows_its_place_in_the_queue(shelf, service, generator):
    remote = RemoteGenerator(service.url, service.token)
    chat = Chat(shelf, generator=remote, k=2, max_tokens=ANSWER_TOKENS)
    assert chat.model_choice.disabled and "shared by everyone" in chat.model_choice.label
    statuses = []
    remote.generate([{"role": "user", "content": "Hi"}], max_tokens=2)  # one served: the service can estimate
    blocker = threading.Thread(target=remote.generate, args=([{"role": "user", "content": "Hi"}],),
                               kwargs={"max_tokens": 4})
    with generator._lock:
        blocker.start()
        wait_for(lambda: service.running)
        turn = chat.ask(COMMUNE_QUESTION)
        turn.status.observe(lambda change: statuses.append(change["new"]), "value")
        wait_for(lambda: any("waiting: 1 ahead of you" in s for s in statuses))
    assert any("about" in s for s in statuses)  # the service had timed a request: an estimate of the wait
    chat.wait(120)
    blocker.join(60)
    assert chat.answers and chat.answers[-1].model == TEST_GENERATOR
    assert turn.error is None and "rr-checked" in turn.answer.value


@pytest.mark.slow
def test_each_reader_asks_at_most_their_questions_a_minute(shelf, generator):
    chat = Chat(shelf, generator=generator, k=2, max_tokens=8, questions_per_minute=1)
    ask(chat, COMMUNE_QUESTION)
    assert chat.ask("And how did it end?") is None  # a second within the minute: not taken
    assert "may ask 1 a minute" in chat.notice.value and "Ask again in" in chat.notice.value
    assert chat.question.value == "And how did it end?" and len(chat.turns) == 1
    chat.asked_at[0] -= 61  # a minute later
    ask(chat, "And how did it end?")
    assert len(chat.turns) == 2 and chat.notice.value == ""


@pytest.mark.slow
def test_a_german_question_hears_its_status_lines_in_german(shelf, generator):
    chat = Chat(shelf, generator=generator, k=2, max_tokens=8)
    seen = []
    turn = chat.ask("Wie lange dauerte die Pariser Kommune von 1871, bevor sie niedergeschlagen wurde?")
    turn.status.observe(lambda change: seen.append(change["new"]), "value")
    turn.answer.observe(lambda change: seen.append(change["new"]), "value")
    chat.wait(180)
    assert not chat.busy and turn.language == "de"
    german = ("schreibt", "Belege werden geprüft", "noch nicht geprüft", "geprüfte Antwort", "nicht beantworten",
              "Textstellen")
    assert any(word in s for s in seen for word in german), seen
    english = ("searching the library", "writing …", "checking the citations", "not checked yet")
    assert not any(word in s for s in seen for word in english), seen


def test_the_anchored_notes_speak_the_questions_language():
    from readingroom.answer.anchored import CheckedClaim
    from readingroom.answer.claims import DraftClaim
    from readingroom.answer.quotes import QuoteSpan
    from readingroom.ui.chat import anchored_answer_html, claims_so_far_html

    hit = Hit(passage_id="p1", doc_id="d1", title="The Civil War in France", author="Karl Marx", year=1871,
              citation="Marx, The Civil War in France (1871), Part 1", anchor=None, score=1.0, text=COMMUNE,
              authors=["Karl Marx"])
    quote = "it was crushed by the army of Versailles"
    kept = CheckedClaim(DraftClaim(1, quote, "Sie wurde niedergeschlagen."), "Sie wurde niedergeschlagen.",
                        1, "p1", QuoteSpan(COMMUNE.index(quote), COMMUNE.index(quote) + len(quote), 100.0, False),
                        quote, 0.97, True)
    left = dataclasses.replace(kept, kept=False, reason="kein Beleg")
    writing = claims_so_far_html([kept, left], "de")
    assert "Behauptungen geprüft und behalten: 1, ausgelassen: 1" in writing and "checked and kept" not in writing
    result = Answer(question="Wie endete die Kommune?", rewritten_question="How did the Commune end?",
                    language="de", passages=[hit], raw="{}", sentences=[], body="", citations=[], supported=True,
                    abstained=False, further_reading=[], anchored=True, claims=[kept, left], judge="judge-model")
    done = anchored_answer_html(result)
    assert "Behauptungen behalten: 1, ausgelassen: 1" in done and "von judge-model beurteilt" in done
    assert "claims kept" not in done and "left out;" not in done


@pytest.mark.slow
def test_in_the_app_the_chat_reads_the_newest_copy_of_the_library_and_logs_to_the_room(
        tmp_path, monkeypatch, generator):
    import readingroom.search.ann as ann_module
    import readingroom.search.index as index_module
    from conftest import tiny_document as doc

    from readingroom import ingest
    from readingroom.ui.room import LOG_VARIABLE, RoomLog
    from readingroom.ui.snapshot import SNAPSHOT_VARIABLE, LibrarySnapshots

    monkeypatch.setattr(index_module, "cache_dir", lambda: tmp_path / "cache")
    monkeypatch.setattr(ann_module, "cache_dir", lambda: tmp_path / "cache")
    db = build_chat_library(tmp_path / "library.duckdb", embed=False)
    snapshots = LibrarySnapshots(db, tmp_path / "snapshots")
    first = snapshots.refresh().path
    monkeypatch.setenv(SNAPSHOT_VARIABLE, str(snapshots.pointer))
    monkeypatch.setenv(LOG_VARIABLE, str(tmp_path / "room-log.jsonl"))
    chat = Chat(generator=generator, k=2, max_tokens=ANSWER_TOKENS)
    assert chat.library.path == first and len(chat.searcher.index) == 5
    with open_library(db) as lib:  # a writer, while the chat is open
        ingest(lib, [doc("jura", "The Federation of the Jura met at Sonvilier in November 1871.",
                         ["James Guillaume"], 1871, "The International")], progress=False)
    assert snapshots.refresh().made
    question = "Where did the Federation of the Jura meet in November 1871?"
    turn = ask(chat, question)
    assert turn.error is None and chat.library.path != first and len(chat.searcher.index) == 6
    assert any("Sonvilier" in hit.text for hit in chat.answers[-1].passages)
    assert "library.duckdb" in chat.markdown()  # the original's name, not the copy's
    logged = RoomLog(tmp_path / "room-log.jsonl").entries()
    assert [e.question for e in logged] == [question]
    assert set(logged[0].to_dict()) == {"question", "answer", "abstained", "model", "minute", "cited"}  # no one's id
    snapshots.close()


def test_the_app_serves_the_chat_notebook_s_reader_cells_shipped_in_the_package(tmp_path):
    from pathlib import Path

    from readingroom.ui.app import app_page

    notebook = json.loads((Path(__file__).parents[1] / "notebooks" / "06_chat.ipynb").read_text())
    shown = [c for c in notebook["cells"] if "notebook-only" not in c.get("metadata", {}).get("tags", [])]
    page = json.loads(app_page(tmp_path).read_text())
    assert [(c["cell_type"], "".join(c["source"])) for c in page["cells"]] == \
        [(c["cell_type"], "".join(c["source"])) for c in shown], \
        "lib/readingroom/ui/chat_page.ipynb is behind notebooks/06_chat.ipynb: copy the cells over"
    assert all(not c.get("outputs") for c in page["cells"])


# --- readingroom app, when it cannot start -------------------------------------------------------

@pytest.mark.slow
def test_the_app_says_why_it_cannot_start(shelf, tmp_path):
    from click.testing import CliRunner

    from readingroom.cli import main

    missing = CliRunner().invoke(main, ["app", "--db", str(tmp_path / "none.duckdb"), "--port", "0"])
    assert missing.exit_code != 0 and "no library here yet" in missing.output
    # The library is fine; the model is not: the loader's words, and nothing left running.
    wrong = CliRunner().invoke(main, ["app", "--db", str(shelf.path), "--model", "no-such-model"])
    assert wrong.exit_code != 0 and "could not be loaded" in wrong.output and "unknown model" in wrong.output


def test_the_app_upgrades_a_library_from_an_earlier_version_before_sessions_open_it_read_only(
        tmp_path, monkeypatch):
    import readingroom.library.store as library_module
    import readingroom.search.ann as ann_module
    import readingroom.search.index as index_module
    from readingroom.ui.app import prepare_library
    from readingroom.library.store import LibraryOutdated

    monkeypatch.setattr(index_module, "cache_dir", lambda: tmp_path / "cache")
    monkeypatch.setattr(ann_module, "cache_dir", lambda: tmp_path / "cache")
    path = build_chat_library(tmp_path / "old.duckdb", embed=False)
    # A schema one version ahead of the file's: the file is now "from an earlier version".
    monkeypatch.setattr(library_module, "MIGRATIONS", library_module.MIGRATIONS + ["CREATE TABLE later (x INT);"])
    monkeypatch.setattr(library_module, "SCHEMA_VERSION", len(library_module.MIGRATIONS))
    with pytest.raises(LibraryOutdated):
        open_library(path, read_only=True)
    prepare_library(tmp_path / "old.duckdb")
    with open_library(path, read_only=True) as lib:  # what every session does
        assert lib.schema_version == len(library_module.MIGRATIONS)
        assert len(lib.con.execute("SELECT doc_id FROM documents").fetchall()) == 5
