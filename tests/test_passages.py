"""Splitting documents into passages: exact spans, budgets, sentences, ids."""
from __future__ import annotations

import pytest

from readingroom import Block, Document, Splitter
from readingroom.corpus.passages import count_tokens, sentence_spans
from readingroom.corpus.sources.text import paragraph_blocks

PROSE = (
    "The history of all hitherto existing society is the history of class struggles. "
    "Freeman and slave, patrician and plebeian, lord and serf, guild-master and journeyman "
    "stood in constant opposition to one another. Mr. Smith and Dr. J. S. Mill disagreed. "
    "Our epoch, the epoch of the bourgeoisie, possesses, however, this distinctive feature: "
    "it has simplified the class antagonisms. "
)


def doc(blocks, **kw):
    return Document(source="test", key=kw.pop("key", "d"), title=kw.pop("title", "A Title"), blocks=blocks, **kw)


def test_passages_are_exact_spans_of_the_document_text():
    d = doc([Block(PROSE * 6, ("One",)), Block("A short paragraph.", ("One",)), Block(PROSE * 3, ("Two",))])
    passages = Splitter(budget=60, overlap=15).split(d)
    assert len(passages) > 4
    for p in passages:
        assert d.text[p.char_start:p.char_end] == p.text
        assert p.n_tokens == count_tokens(p.text) and p.n_tokens <= 60


def test_budget_is_kept_and_cuts_fall_between_sentences():
    d = doc([Block(PROSE * 8)])
    passages = Splitter(budget=50, overlap=10).split(d)
    for p in passages:
        assert p.n_tokens <= 50
        assert p.text[-1] in ".:", p.text[-40:]  # every cut is at a sentence end
        assert p.text[0].isupper()


def test_abbreviations_and_initials_do_not_end_sentences():
    sentences = [PROSE[s:e] for s, e in sentence_spans(PROSE)]
    assert "Mr. Smith and Dr. J. S. Mill disagreed." in sentences
    assert len(sentences) == 4


def test_overlap_repeats_the_end_of_the_previous_passage():
    d = doc([Block(PROSE * 4)])
    a, b = Splitter(budget=60, overlap=25).split(d)[:2]
    assert b.char_start < a.char_end  # they share text
    assert a.text.endswith(d.text[b.char_start:a.char_end])
    no_overlap = Splitter(budget=60, overlap=0).split(d)
    assert all(x.char_end <= y.char_start for x, y in zip(no_overlap, no_overlap[1:]))


def test_a_sentence_longer_than_the_budget_is_cut_between_words():
    d = doc([Block(" ".join(["word"] * 500))])
    passages = Splitter(budget=100, overlap=0).split(d)
    assert [p.n_tokens for p in passages] == [100] * 5
    assert all(not p.text.startswith(" ") and not p.text.endswith(" ") for p in passages)


def test_sections_are_never_merged():
    d = doc([Block("One short paragraph.", ("A",)), Block("Another short one.", ("B",))])
    passages = Splitter().split(d)
    assert [p.section for p in passages] == [("A",), ("B",)]


def test_ids_are_stable_and_survive_edits_elsewhere_in_the_document():
    blocks = [Block(f"Paragraph number {i} says something distinct.", ("S",)) for i in range(40)]
    first = Splitter(budget=30, overlap=0).split(doc(blocks))
    again = Splitter(budget=30, overlap=0).split(doc(list(blocks)))
    assert [p.passage_id for p in first] == [p.passage_id for p in again]
    edited = Splitter(budget=30, overlap=0).split(doc(blocks[:-1] + [Block("A new ending.", ("S",))]))
    unchanged = {p.passage_id for p in first} & {p.passage_id for p in edited}
    assert len(unchanged) >= len(first) - 2
    other_doc = Splitter(budget=30, overlap=0).split(doc(blocks, key="other"))
    assert not {p.passage_id for p in first} & {p.passage_id for p in other_doc}


def test_repeated_text_gets_distinct_ids():
    d = doc([Block("Workers of the world, unite!", ("A",)), Block("Workers of the world, unite!", ("B",))])
    ids = [p.passage_id for p in Splitter().split(d)]
    assert len(set(ids)) == 2


def test_citations_name_author_title_year_section_and_paragraph():
    d = doc(
        [Block("First.", ("Results",)), Block("Second.", ("Results",)), Block("Third paragraph here.", ("Results",))],
        title="The Condition of the Working-Class in England", authors=["Friedrich Engels"], year=1845,
    )
    (together,) = Splitter(budget=16, overlap=0).split(d)
    assert together.citation == (
        "Engels, The Condition of the Working-Class in England (1845), \u201cResults\u201d, \u00b61\u20133"
    )
    d.blocks[2] = Block("Third paragraph here is a good deal longer than the others were.", ("Results",))
    apart = Splitter(budget=16, overlap=0).split(d)
    assert apart[0].citation.endswith("\u00b61\u20132")
    assert apart[-1].citation.endswith("\u00b63")


def test_pdf_pages_are_cited_as_pages():
    d = doc([Block("On page one.", page=1, anchor="page=1"), Block("On page two.", page=2, anchor="page=2")],
            authors=["Rosa Luxemburg", "Someone Else", "A Third"])
    (p,) = Splitter().split(d)
    assert p.citation == "Luxemburg et al., A Title, pp. 1\u20132"
    assert p.anchor == "page=1"


def test_plain_text_headings_make_a_section_path():
    blocks = paragraph_blocks(
        "I. BOURGEOIS AND PROLETARIANS\n\nText one.\n\n1. REACTIONARY SOCIALISM\n\n"
        "_A. Feudal Socialism_\n\nText two.\n\n2. A heavy progressive income tax.\n\nII. OTHERS\n\nText three."
    )
    assert [(b.text, b.section) for b in blocks] == [
        ("Text one.", ("I. BOURGEOIS AND PROLETARIANS",)),
        ("Text two.", ("I. BOURGEOIS AND PROLETARIANS", "1. REACTIONARY SOCIALISM", "A. Feudal Socialism")),
        ("2. A heavy progressive income tax.",
         ("I. BOURGEOIS AND PROLETARIANS", "1. REACTIONARY SOCIALISM", "A. Feudal Socialism")),
        ("Text three.", ("II. OTHERS",)),
    ]


@pytest.mark.parametrize("budget,overlap", [(8, 0), (100, 60)])
def test_bad_settings_are_refused(budget, overlap):
    with pytest.raises(ValueError):
        Splitter(budget=budget, overlap=overlap)


def test_a_paragraph_cut_into_pieces_is_cited_by_part():
    sole = doc([Block(PROSE * 6)], title="State of the Union Address", authors=["George Washington"], year=1790)
    pieces = Splitter(budget=60, overlap=0).split(sole)
    assert [p.citation for p in pieces] == [
        f"Washington, State of the Union Address (1790), part {k} of {len(pieces)}" for k in range(1, len(pieces) + 1)
    ]
    among_others = doc([Block("A first paragraph."), Block(PROSE * 3)])
    cited = [p.citation for p in Splitter(budget=60, overlap=0).split(among_others)]
    assert cited[-1] == f"A Title, \u00b62, part {len(cited) - 1} of {len(cited) - 1}"


def test_a_section_the_title_already_names_is_not_repeated():
    d = doc([Block("Yes.", ("H.1 Have anarchists always opposed state socialism?",))],
            title="An Anarchist FAQ: H.1 Have anarchists always opposed state socialism?")
    assert Splitter().split(d)[0].citation == "An Anarchist FAQ: H.1 Have anarchists always opposed state socialism?, \u00b61"
