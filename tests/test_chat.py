"""The chat widget's handlers, run in plain Python (Button.click() runs them;
the answer's thread is waited for), with the real test generator
(SmolLM2-135M, llama.cpp) and the real default embedder (MiniLM) on a tiny
library; and the generation service the app shares one model through, with
the same real model."""
from __future__ import annotations

import base64
import html
import http.client
import json
import re
import threading
import time
from urllib.parse import unquote

import pytest
from conftest import CELLARS, COMMUNE, EVIL, build_chat_library

from readingroom import open_library
from readingroom.answer.pipeline import Answer, citation_list, further_reading
from readingroom.ui.chat import Chat, answer_html, cards_html, conversation_markdown
from readingroom.models.embed import load_embedder
from readingroom.models.generate import GeneratorError
from readingroom.ui.service import TOKEN_HEADER, GenerationService, RemoteGenerator
from readingroom.models.catalogue import DEFAULT_EMBEDDER, TEST_GENERATOR
from readingroom.search.searcher import Hit
from readingroom.answer.check import SupportChecker, check_answer

COMMUNE_QUESTION = "How long did the Paris Commune of 1871 last before it was crushed?"


@pytest.fixture(scope="module")
def shelf(tmp_path_factory):
    """The tiny library, embedded with MiniLM; BM25 indexes in a cache of its own."""
    import readingroom.search.searcher as search_module

    folder = tmp_path_factory.mktemp("chat")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(search_module, "cache_dir", lambda: folder / "cache")
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
    assert "checked answer" in turn.status.value or "not answered" in turn.status.value


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
    raw_shown = re.search(r'<details class="rr-raw">.*?</details>', turn.answer.value, re.S)
    if raw_shown and "<" in result.raw:
        assert "&lt;" in raw_shown.group(0)
    # The Markdown export escapes it too (Markdown viewers pass HTML through),
    # whether or not the model cited the passage: an answer that cites it, checked.
    n = next(i for i, h in enumerate(result.passages, start=1) if h.text == EVIL)
    raw = f"The barricades of the Paris Commune went up in March 1871, and its decrees were posted on the walls [{n}]."
    checked = check_answer(raw, result.passages, SupportChecker(load_embedder(DEFAULT_EMBEDDER)))
    cited = Answer(question="When did the barricades go up?", rewritten_question="When did the barricades go up?",
                   language="en", passages=result.passages, raw=raw, sentences=checked.sentences, text=checked.text,
                   citations=citation_list(checked, result.passages), supported=True, abstained=False,
                   further_reading=further_reading(result.passages, checked.cited), invented_citations=[])
    assert [c["n"] for c in cited.citations] == [n]
    exported = conversation_markdown(chat.answers + [cited])
    assert "<script" not in exported and "<img" not in exported and "<i>" not in exported
    assert "Notes &lt;i&gt;on&lt;/i&gt; the Commune" in exported and "Mallory &lt;b&gt;Markup&lt;/b&gt;" in exported
    # A question typed with markup is shown as text.
    turn = ask(chat, "<img src=x onerror=alert(1)> Who won the 2018 FIFA World Cup final in Moscow?")
    assert "&lt;img src=x onerror=alert(1)&gt;" in turn.asked.value and "<img" not in turn.asked.value


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
                    language="en", passages=hits, raw=raw, sentences=checked.sentences, text=checked.text,
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
        assert a.body.split("\n")[0] in text
        for c in a.citations:
            assert f"- [{c['n']}] {c['citation']}" in text
        for doc in a.further_reading:
            assert html.escape(doc["title"], quote=False) in text
    assert "model: " + TEST_GENERATOR in text
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
        with remote.watching(seen.append):
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
        assert json.loads(response.readline()) == {"queue": 1}
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
    blocker = threading.Thread(target=remote.generate, args=([{"role": "user", "content": "Hi"}],),
                               kwargs={"max_tokens": 4})
    with generator._lock:
        blocker.start()
        wait_for(lambda: service.running)
        turn = chat.ask(COMMUNE_QUESTION)
        turn.status.observe(lambda change: statuses.append(change["new"]), "value")
        wait_for(lambda: any("waiting: 1 ahead of you" in s for s in statuses))
    chat.wait(120)
    blocker.join(60)
    assert chat.answers and chat.answers[-1].model == TEST_GENERATOR
    assert turn.error is None and "rr-checked" in turn.answer.value


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
    import readingroom.search.searcher as search_module
    from readingroom.ui.app import prepare_library
    from readingroom.library.store import LibraryOutdated

    monkeypatch.setattr(search_module, "cache_dir", lambda: tmp_path / "cache")
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
