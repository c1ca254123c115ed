"""The message catalogue (readingroom.messages): every message in every
language, with the same placeholders; the reader's language chosen; English
when a language is unknown."""
from __future__ import annotations

import pytest

from conftest import TINY_SHELF
from readingroom import ingest
from readingroom.messages import catalogue, languages, message, placeholders, preferred_language, translator

REQUIRED = ("en", "de", "fr", "es", "it", "ru")


def test_the_catalogue_has_the_languages_the_reader_is_promised():
    assert set(REQUIRED) <= set(languages())


@pytest.mark.parametrize("language", sorted(set(REQUIRED) | set(languages())))
def test_every_message_is_translated_with_the_same_placeholders(language):
    english, translated = catalogue("en"), catalogue(language)
    missing = sorted(set(english) - set(translated))
    assert not missing, f"{language} lacks {missing}"
    assert not sorted(set(translated) - set(english)), f"{language} has keys English lacks"
    for key, text in english.items():
        assert placeholders(translated[key]) == placeholders(text), (language, key, translated[key])
        if language != "en" and key not in ("seconds", "sources"):  # "{seconds} s", "Sources": the same in French
            assert translated[key] != text, f"{language} {key!r} is still English"


def test_placeholders_are_filled_and_an_unknown_language_falls_back_to_english():
    assert message("room-full", "de", readers=40).startswith("Der Raum ist voll (40 Lesende).")
    assert message("not-answered", "xx") == message("not-answered", None) == message("not-answered", "en") \
        == "The library's sources do not answer this question."
    assert translator("de-AT")("read-further") == "Weiterlesen"
    with pytest.raises(KeyError):
        message("no-such-message", "de")


@pytest.mark.parametrize("header, language", [
    ("de-CH,de;q=0.9,en;q=0.8", "de"), ("en-US,en;q=0.9,de;q=0.8", "en"), ("ja,fr;q=0.5", "fr"),
    ("ja", "en"), (None, "en"), ("fr;q=0.2,ru;q=0.7", "ru"), ("de;q=0,it", "it")])
def test_the_browser_language_is_the_first_the_catalogue_has(header, language):
    assert preferred_language(header) == language


def test_a_german_question_the_library_cannot_answer_is_refused_in_german(library, private_cache):
    """Through the real pipeline (BM25 only, no model: the gate stops it; the
    question is searched as asked, not translated, which would need a model:
    tests/test_translate.py covers that path)."""
    from readingroom.answer.pipeline import answer

    ingest(library, TINY_SHELF, progress=False)
    german = answer(library, "Wer hat das Finale der Fußball-Weltmeisterschaft im Jahr 2018 gewonnen?", k=3,
                    translate=False)
    assert german.language == "de" and german.abstained and german.raw == ""
    assert german.body == "Die Quellen der Bibliothek beantworten diese Frage nicht."
    english = answer(library, "Who won the final of the football World Cup in 2018?", k=3)
    assert english.language == "en" and english.abstained
    assert english.body == "The library's sources do not answer this question."


def test_the_closest_passages_and_the_reading_list_are_headed_in_the_readers_language(library, private_cache):
    from readingroom.answer.pipeline import further_reading
    from readingroom.answer.render import closest_passages, reading_text
    from readingroom.search.searcher import Searcher

    ingest(library, TINY_SHELF, progress=False)
    hits = Searcher(library).search("damp cellars in Manchester", 2)
    assert closest_passages(hits, "de").startswith("Die ähnlichsten Textstellen:\n[1] ")
    assert closest_passages(hits, "ru").startswith("Ближайшие фрагменты:\n[1] ")
    assert closest_passages(hits, None).startswith("The closest passages:\n[1] ")
    reading = further_reading(hits, [1])
    assert reading_text(reading, "fr").startswith("Pour aller plus loin:\n- Friedrich Engels, ")
    assert reading_text(reading, "xx").startswith("Read further:\n- ")


def test_the_rooms_door_refuses_in_the_browsers_language_and_escapes():
    from readingroom.ui.gate import refused_page

    assert "Dieser Raum braucht seinen Code" in refused_page("room-needs-code", "de-DE,de;q=0.9")
    assert "needs its code" in refused_page("room-needs-code", None)
    page = refused_page("room-upstream-down", "fr", error="<script>x</script>")
    assert "Le serveur du chat n&#x27;a pas répondu (&lt;script&gt;" in page and "<script>" not in page


@pytest.mark.parametrize("language,ahead,seconds,expected", [
    ("de", 2, 31.0, "Warteschlange: 2 vor Ihnen, etwa 30 s"),
    ("fr", 1, 150.0, "en attente : 1 avant vous, environ 2 min"),
    ("en", 3, None, "waiting: 3 ahead of you"),  # no estimate before the room's first answer
])
def test_a_waiting_reader_sees_their_place_in_their_language(language, ahead, seconds, expected):
    from readingroom.ui.chat import waiting_words

    assert waiting_words(ahead, seconds, language) == expected
