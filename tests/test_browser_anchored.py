"""An anchored answer in a real browser: `readingroom app` (Voila) on
127.0.0.1, driven by Playwright with Debian's Chromium, the "Anchored
(quotes checked)" option ticked, a question the tiny library answers nearly
word for word. The reader must see the claim's quote marked in its passage
card, the passage's own words, and nothing of the corpus's markup run.

Qwen2.5-Coder-1.5B writes and judges (READINGROOM_GENERATOR and
READINGROOM_JUDGE, as the app reads them): SmolLM2-135M cannot judge (AUC
0.5-0.67, answer/judge_calibration.json), so with it no claim would be
kept, or any would. Skipped when the 1.5B is not fetched. The screenshot
goes to test-artifacts/anchored-answer.png."""
from __future__ import annotations

import pytest
from test_browser import (  # noqa: F401  (browser and environment are fixtures)
    ARTIFACTS, EVIL_TEXT, START, browser, environment, new_page, serving_app)

from readingroom.models.catalogue import ModelError

pytestmark = pytest.mark.slow

MODEL = "qwen2.5-coder-1.5b-instruct-q4_k_m"
# The tiny library's Commune passage says: "...it was crushed by the army of Versailles after seventy-two days."
QUESTION = "Who crushed the Paris Commune?"
ANSWER = 300_000  # ms: writing and judging with the 1.5B took 96 s at a load of 11 on two cores
ROOM, CODE = "Anchored", "anchoredroom"


@pytest.fixture(scope="module")
def anchored_app(environment):
    from readingroom.models.resolve import resolve

    try:
        resolve(MODEL)
    except ModelError as e:
        pytest.skip(f"{MODEL} is not fetched ({e})")
    folder, db, env = environment
    env = {**env, "READINGROOM_GENERATOR": MODEL, "READINGROOM_JUDGE": MODEL}
    with serving_app(db, env, folder / "anchored-app.log", MODEL, ROOM, CODE) as (url, _, _):
        yield f"{url}?code={CODE}"


def test_an_anchored_answer_shows_its_quote_marked_in_the_passage_card(browser, anchored_app, tmp_path):
    page = new_page(browser, tmp_path)
    page.goto(anchored_app, timeout=START)
    page.locator(".rr-chat").wait_for(state="visible", timeout=START)
    page.locator(".rr-settings").get_by_text("Filters and settings").click()  # open the accordion
    option = page.locator(".rr-anchored-option input[type=checkbox]")
    option.check()
    assert option.is_checked()
    page.locator(".rr-question textarea").fill(QUESTION)
    page.locator("button.rr-send").click()
    page.locator(".rr-checked").first.wait_for(state="visible", timeout=ANSWER)
    assert page.locator(".rr-checked.rr-anchored").count() == 1, page.locator(".rr-checked").inner_text()

    # Open every card: each kept claim's quote is marked inside its passage.
    cards = page.locator("details.rr-card")
    for i in range(cards.count()):
        cards.nth(i).locator("summary").click()
    marks = page.locator("details.rr-card[open] .rr-passage mark.rr-quote")
    marks.first.wait_for(state="visible")
    for i in range(marks.count()):
        mark = marks.nth(i)
        quote = mark.inner_text()
        passage = mark.locator("xpath=ancestor::div[contains(@class,'rr-passage')]").inner_text()
        assert len(quote.split()) >= 3 and quote in passage  # the passage's own words, not the model's
    assert "crushed by the army of Versailles" in " ".join(marks.all_inner_texts())
    claim = page.locator(".rr-claims li.rr-claim.rr-kept").first
    assert "Versailles" in claim.inner_text() and claim.locator("mark.rr-quote").count() == 1

    # Nothing of the corpus's markup became markup: the passage with <script> shows it as text.
    evil = page.locator(".rr-card[open] .rr-passage", has_text="window.__pwned")  # BM25 gives it as passage 2
    assert evil.count() == 1 and EVIL_TEXT in evil.inner_text()
    assert page.locator(".rr-chat img").count() == 0 and page.locator(".rr-chat script").count() == 0
    assert page.evaluate("typeof window.__pwned") == "undefined", "script from a passage ran"
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "anchored-answer.png"), full_page=True)
    print(f"\nscreenshot: {ARTIFACTS / 'anchored-answer.png'}")
    page.context.close()
