"""The chat page speaks its reader's language before the first question
(readingroom.ui.intro): the words above the chat and the chat's labels come
from the message catalogue in the language the browser asks for, under
Solara (the session's headers) and under Voila ($HTTP_ACCEPT_LANGUAGE)."""
from __future__ import annotations

import pytest

from conftest import CHAT_SHELF
from readingroom import ingest, open_library
from readingroom.messages import message
from readingroom.ui.chat import SearchFilters
from readingroom.ui.intro import LANGUAGE_COOKIE, intro_html, page_language, solara_language

GERMAN_BROWSER = "de-DE,de;q=0.9,en-US;q=0.8,en;q=0.7"


def test_the_intro_is_the_catalogues_in_the_readers_language():
    german = intro_html("de")
    assert german.startswith("<h1>Der Chat: Fragen Sie die Bibliothek</h1>")
    assert "<strong>Was er kann und was nicht.</strong>" in german and "What it can do" not in german
    english = intro_html(None, title=False)
    assert english.startswith("<p><strong>What it can do, and what it cannot.</strong></p>")
    # It says what the default check does, and what the anchored option adds: a judge of meaning.
    assert "The default check scores each sentence by the words and the meaning" in english
    assert "<em>Anchored (quotes checked)</em>" in english and "a judge" in english
    assert "<em>Verankert (Zitate geprüft)</em>" in german
    for language in ("fr", "es", "it", "ru"):
        shown = intro_html(language)
        assert message("page-title", language) in shown and message("setting-anchored", language) in shown


def test_the_readers_language_comes_from_the_browser_under_solara_and_voila(monkeypatch):
    assert solara_language({"accept-language": [GERMAN_BROWSER], "host": ["127.0.0.1"]}) == "de"
    assert solara_language({"host": ["127.0.0.1"]}) == solara_language(None) == "en"
    # The door's cookie, from the page request, wins over the websocket's own header (Chromium 150
    # under an emulated locale sends the page "de-DE" and the websocket "en-US"); an unknown code does not.
    english_socket = {"accept-language": ["en-US,en;q=0.9"]}
    assert solara_language(english_socket, {LANGUAGE_COOKIE: "de"}) == "de"
    assert solara_language(english_socket, {LANGUAGE_COOKIE: "<script>"}) == "en"
    monkeypatch.delenv("VOILA_PREHEAT", raising=False)
    monkeypatch.setenv("HTTP_ACCEPT_LANGUAGE", "ru-RU,ru;q=0.9")
    assert page_language() == "ru"
    monkeypatch.delenv("HTTP_ACCEPT_LANGUAGE")
    assert page_language() == "en"  # a notebook: the catalogue's English


def test_the_filters_speak_the_page_language_and_keep_their_choice():
    filters = SearchFilters(None, "de")
    assert filters.author.description == "Autor" and filters.author.options == (("jeder Autor", ""),)
    assert filters.years.description == "Jahre" and filters.source.description == "Quelle"
    filters.set_language("fr")
    assert filters.language.options[0] == ("toute langue", "") and filters.language.value == ""


@pytest.mark.slow  # a Chat warms up its language detector
def test_the_chat_speaks_german_before_the_first_question(tmp_path, monkeypatch):
    import readingroom.search.index as index_module
    from readingroom.models.catalogue import TEST_GENERATOR
    from readingroom.ui.chat import Chat
    from readingroom.ui.study_tab import chat_with_study

    monkeypatch.setattr(index_module, "cache_dir", lambda: tmp_path / "cache")
    with open_library(tmp_path / "library.duckdb") as lib:
        ingest(lib, CHAT_SHELF, progress=False)
    chat = Chat(tmp_path / "library.duckdb", model=TEST_GENERATOR, language="de")
    try:
        assert chat.send_button.description == "Senden"
        assert chat.question.placeholder == message("ask-placeholder", "de")
        assert chat.header.value.startswith("<div><b>Fragen Sie die Bibliothek.</b> 5 Dokumente, 5 Textstellen in ")
        assert chat.anchored.description == "Verankert (Zitate geprüft)"
        assert chat.filters_and_settings.titles == ("Filter und Einstellungen",) and chat.author.description == "Autor"
        tabs = chat_with_study(chat)  # the Study tab speaks the chat's language
        assert tabs.titles == (message("tab-chat", "de"), message("tab-study", "de"))
        assert tabs.study.search_filters.author.description == "Autor"
        chat.set_language("en")  # Voila learns the reader's language after the chat is made
        assert chat.send_button.description == "Send" and chat.anchored.description == "Anchored (quotes checked)"
        assert "Ask the library." in chat.header.value
    finally:
        chat.library.close()
