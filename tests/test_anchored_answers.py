"""Anchored answers wired in: the pipeline (answer(anchored=True)), the CLI
(`ask --anchored`) and the chat's "Anchored (quotes checked)" option, over
the tiny library with the real small models (SmolLM2-135M writes and
judges, MiniLM searches).

The judge here is SmolLM2 with its threshold set to 0: its probabilities
tell supported claims from unsupported ones no better than chance (AUC
0.5-0.67), so these tests check the structure and the other steps of the
check (the quote found in its passage, its span, the reason a claim is
left out, the escaping), each claim still scored by a real model.
test_anchored.py tests the judge's quality, with Qwen2.5-Coder-1.5B.

A writer that yields fixed JSON stands in for the model in two tests, and
only for the writer: no prompt makes a real model quote words that are not
in its passage on demand, or quote markup it was not asked about."""
from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from conftest import COMMUNE, EVIL, TINY_SHELF, build_chat_library

from readingroom import ingest
from readingroom.answer.anchored import CheckedClaim
from readingroom.answer.claims import DraftClaim
from readingroom.answer.entailment import Calibration, EntailmentJudge
from readingroom.answer.pipeline import Answer, answer, answer_stream, load_judge
from readingroom.cli import main
from readingroom.cli.answers import claim_lines
from readingroom.answer.quotes import QuoteSpan
from readingroom.models.catalogue import TEST_GENERATOR
from readingroom.models.embed import embed_library
from readingroom.models.generate import Generator

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("private_cache")]

COMMUNE_QUESTION = "How long did the Paris Commune of 1871 last before it was crushed?"


@pytest.fixture
def shelf(library):
    ingest(library, TINY_SHELF, progress=False)
    embed_library(library, progress=False)
    return library


@pytest.fixture(scope="module")
def judge():
    """SmolLM2 on a context of its own (the one the pipeline keeps for
    this model), every score accepted: see the module notes."""
    return EntailmentJudge(load_judge(TEST_GENERATOR).generator, Calibration(TEST_GENERATOR, 0.0, 0.0, 0.0, 0))


class FixedWriter(Generator):
    """A writer that writes `text` in pieces, whatever it is asked."""
    backend = "fixed"
    enforces_json_schema = True

    def __init__(self, claims: list[dict]):
        self.name, self.text, self.calls = "fixed-writer", json.dumps({"claims": claims}), 0

    def stream(self, messages, **settings):
        self.calls += 1
        for i in range(0, len(self.text), 9):
            yield self.text[i:i + 9]


def test_an_anchored_answer_gives_each_claim_its_passage_s_own_words_and_span(shelf, generator, judge):
    # One passage, a short answer: SmolLM2 copies the passage as its first
    # quote, then repeats itself until it is stopped (the unfinished claim is dropped).
    items = list(answer_stream(shelf, COMMUNE_QUESTION, generator=generator, k=1, anchored=True, judge=judge,
                               max_tokens=200))
    result = items[-1]
    assert isinstance(result, Answer) and result.anchored and result.gate["passed"]
    assert result.raw.startswith('{ "claims": [{')  # the grammar's JSON, maybe cut short
    checked = [i for i in items if isinstance(i, CheckedClaim)]
    assert checked and checked == result.claims, result.raw  # each claim streamed as it was checked
    assert "".join(i for i in items if isinstance(i, str)) == result.raw
    for claim in result.claims:
        assert 1 <= claim.passage <= len(result.passages)
        if claim.span is not None:  # found (or repaired): exactly the passage's words at that span
            assert claim.quote == result.passages[claim.passage - 1].text[claim.span.start:claim.span.end]
            assert claim.kept and 0.0 <= claim.support <= 1.0  # the judge scored it (and, at 0, keeps it)
        else:
            assert not claim.kept and claim.reason
    assert any(c.span for c in result.claims), result.raw  # the model's own quote, found in its passage
    assert result.abstained == (not result.kept_claims)
    if result.kept_claims:
        assert result.judge == TEST_GENERATOR and result.first_claim_seconds <= result.seconds
        assert {c["n"] for c in result.citations} == {c.passage for c in result.kept_claims}
        for c in result.citations:
            for q in c["quotes"]:
                assert q["quote"] == result.passages[c["n"] - 1].text[slice(*q["span"])]
        for claim in result.kept_claims:
            assert f"[{claim.passage}]" in result.body
        assert result.text.startswith(result.body + "\n\nRead further:")
    assert result.to_dict()["claims"] == [c.to_dict() for c in result.claims]


def test_a_claim_whose_quote_is_not_in_its_passage_is_left_out_with_its_reason(shelf, judge):
    writer = FixedWriter([
        {"passage": 1, "quote": "the Commune lasted for two whole years in Lyon",
         "text": "The Commune lasted two years."},
        {"passage": 1, "quote": "it was crushed by the army of Versailles after seventy-two days",
         "text": "The Commune was crushed by the army of Versailles after seventy-two days."}])
    result = answer(shelf, COMMUNE_QUESTION, generator=writer, k=3, anchored=True, judge=judge)
    assert writer.calls == 1 and result.passages[0].text == COMMUNE
    invented, real = result.claims
    assert not invented.kept and invented.reason == "its quote is not in the passage" and invented.span is None
    assert invented.support is None  # left out before the judge was asked
    assert real.kept and real.quote == "it was crushed by the army of Versailles after seventy-two days"
    assert COMMUNE[real.span.start:real.span.end] == real.quote
    assert real.text.startswith("According to Marx, ")  # whose view it is, named once
    assert result.body == f"{real.text[:-1]} [1]." and not result.abstained
    assert result.dropped_claims == [invented]
    # The gate applies as for any answer: a question the library cannot answer never reaches the writer.
    football = answer(shelf, "Who won the 2018 FIFA World Cup final in Moscow?", generator=writer, k=3,
                      anchored=True, judge=judge)
    assert football.abstained and football.raw == "" and not football.claims and writer.calls == 1


def test_when_no_claim_is_kept_the_anchored_answer_abstains(shelf, judge):
    writer = FixedWriter([{"passage": 2, "quote": "nothing of the kind is written anywhere here",
                           "text": "The Commune abolished money."}])
    result = answer(shelf, COMMUNE_QUESTION, generator=writer, k=3, anchored=True, judge=judge)
    assert result.abstained and not result.supported and not result.citations
    assert result.body == "The library's sources do not answer this question." and len(result.dropped_claims) == 1


def test_cli_ask_anchored_prints_each_checked_claim_with_its_quote(shelf, monkeypatch):
    shelf.close()
    monkeypatch.setenv("READINGROOM_JUDGE", TEST_GENERATOR)
    result = CliRunner().invoke(main, ["ask", COMMUNE_QUESTION, "-k", "1", "--model", TEST_GENERATOR,
                                       "--anchored", "--show-dropped", "--db", str(shelf.path)])
    assert result.exit_code == 0, result.output
    heading, _, rest = result.output.partition("checked claims, as they are written:\n")
    assert rest, result.output
    claims = [line for line in rest.splitlines() if line[:2] in ("✓ ", "✗ ")]
    assert claims, result.output  # with --show-dropped every claim the model wrote is printed
    assert all("[" in line for line in claims)
    assert "Read further:" in rest or "The library's sources do not answer this question." in rest
    assert "judge: " + TEST_GENERATOR in result.output or all(line.startswith("✓") for line in claims)


def test_cli_claim_lines_put_the_quote_in_quotation_marks_and_strip_control_characters():
    draft = DraftClaim(1, "q", "x")
    kept = CheckedClaim(draft, "The Commune\x1b]0;owned\x07 lasted long.", 1, "p1", QuoteSpan(0, 5, 100.0, False),
                        "seventy-two\x1b[2J days", 0.91, True)
    assert claim_lines(kept) == ["✓ The Commune]0;owned lasted long. [1]",
                                 "    “seventy-two[2J days” (support 0.91)"]
    dropped = CheckedClaim(draft, "The Commune lasted two years.", 2, "p2", None, "", None, False,
                           "its quote is not in the passage")
    assert claim_lines(dropped) == ["✗ The Commune lasted two years. [2] (left out: its quote is not in the passage)"]


def test_the_chat_marks_each_kept_claim_s_quote_in_its_escaped_passage(tmp_path, private_cache, judge):
    from readingroom import open_library
    from readingroom.ui.chat import Chat, conversation_markdown

    path = build_chat_library(tmp_path / "chat.duckdb", embed=True)
    quote = "went up in March 1871. <script>window.__pwned = 'script'</script>"
    writer = FixedWriter([{"passage": 1, "quote": quote,
                           "text": "The barricades of the Commune went up in March 1871."}])
    with open_library(path, read_only=True) as lib:
        chat = Chat(lib, generator=writer, k=3, judge=judge, anchored=True)
        assert chat.anchored.description == "Anchored (quotes checked)" and chat.anchored.value
        turn = chat.ask("When did the barricades of the Paris Commune go up in March 1871?")
        chat.wait(120)
        result = chat.answers[-1]
        assert turn.error is None and result.anchored, turn.answer.value
        assert result.passages[0].text == EVIL and result.kept_claims, result.claims
        shown = turn.answer.value + turn.sources.value
        assert "<script" not in shown.lower() and "<img" not in shown.lower()
        marked = ("<mark class=\"rr-quote\">went up in March 1871. &lt;script&gt;window.__pwned = "
                  "&#x27;script&#x27;&lt;/script&gt;</mark>")
        assert marked in turn.answer.value  # in the claim's excerpt of its passage
        assert marked in turn.sources.value  # and in the passage's card
        assert "The barricades of the Commune went up in March 1871." in turn.answer.value
        exported = conversation_markdown(chat.answers)
        assert "<script" not in exported
        assert "  > went up in March 1871. &lt;script&gt;window.\\_\\_pwned" in exported
        assert Chat(lib, generator=writer).anchored.value is False  # off unless asked for
