"""The shared text operations (readingroom.text): no model, no library."""
from __future__ import annotations

from readingroom.text import content_words, ends_sentence, sentence_spans, sentences, shorten, tokenize


def test_sentences_end_at_their_marks_in_several_languages():
    assert sentences("¿Qué es la propiedad? Es el robo. ¡Abajo el Estado!") == [
        "¿Qué es la propiedad?", "Es el robo.", "¡Abajo el Estado!"]
    assert sentences("Qu'est-ce que la propriété ? La propriété est un crime. «Non», dit-il.") == [
        "Qu'est-ce que la propriété ?", "La propriété est un crime.", "«Non», dit-il."]
    assert sentences("Die Kommune fiel 1871. Ölarbeiter streikten … Danach kam die Reaktion.") == [
        "Die Kommune fiel 1871.", "Ölarbeiter streikten …", "Danach kam die Reaktion."]


def test_abbreviations_initials_and_a_lower_case_word_do_not_end_a_sentence():
    text = "See vol. 2, e.g. the preface. Mr. Smith met J. S. Mill. It was 3 p.m. and late. Then they left."
    assert sentences(text) == ["See vol. 2, e.g. the preface.", "Mr. Smith met J. S. Mill.",
                               "It was 3 p.m. and late.", "Then they left."]
    # A number's period followed by a capital ends a sentence; "1. the first" does not.
    assert sentences("It fell in 1871. The next year was quiet. Point 1. the first.") == [
        "It fell in 1871.", "The next year was quiet.", "Point 1. the first."]


def test_spans_are_exact_and_a_quotation_can_be_kept_whole():
    text = 'Marx writes: "The Commune was crushed. It lasted seventy-two days." Engels agrees.  '
    spans = sentence_spans(text)
    assert [text[s:e] for s, e in spans] == ['Marx writes: "The Commune was crushed.',
                                             'It lasted seventy-two days."', "Engels agrees."]
    joined = sentence_spans(text, join_quotes=True)
    assert [text[s:e] for s, e in joined] == ['Marx writes: "The Commune was crushed. It lasted seventy-two days."',
                                              "Engels agrees."]
    # A quotation that never closes joins nothing.
    unclosed = 'Engels says: "The state must fall. This is the only passage. The moon is cheese.'
    assert sentence_spans(unclosed, join_quotes=True) == sentence_spans(unclosed)


def test_a_line_that_ends_a_sentence():
    assert ends_sentence("the end of the paragraph.”") and ends_sentence("Why?)")
    assert not ends_sentence("a line that goes on") and not ends_sentence("as follows:")
    assert ends_sentence("as follows:", colon=True)


def test_shorten_cuts_at_a_word_and_says_so():
    assert shorten("short", 10) == "short"
    assert shorten("The state is not abolished, it withers away.", 20) == "The state is not …"
    assert shorten("The state withers", 12, ellipsis="…") == "The state…"


def test_content_words_are_stemmed_without_stop_question_or_reporting_words():
    assert content_words("What does Engels say about the cellars [2] in 1871 and 12?") == ["engel", "cellar", "1871"]
    assert tokenize(["The States"]) == [["state"]]
    assert content_words("Die Arbeiter wohnten in feuchten Kellern", "de") == ["arbeit", "wohnt", "feucht", "kell"]
