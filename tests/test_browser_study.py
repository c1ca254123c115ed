"""The Study tab in a real browser: `readingroom app` (Voila) on 127.0.0.1
with the real test model, Debian's Chromium driven by Playwright, as in
tests/test_browser.py (whose fixtures it uses: its own app, on the chat's
tiny library). A facilitator opens the room, switches to the Study tab,
picks a document's section and a kind of aid, presses Make, sees the
progress and then the aid: its items (or the message that the check kept
none), escaped, with links to download it. The screenshot goes to
test-artifacts/ (ignored by git)."""
from __future__ import annotations

from pathlib import Path

import pytest
from test_browser import ANSWER, ARTIFACTS, ROOM_CODE, START, app, browser, environment, new_page  # noqa: F401

pytestmark = pytest.mark.slow


def test_a_facilitator_makes_an_aid_in_the_study_tab(browser, app, tmp_path):  # noqa: F811
    url, process, printed = app
    page = new_page(browser, tmp_path)
    page.goto(f"{url}?code={ROOM_CODE}", timeout=START)
    page.locator(".rr-chat").wait_for(state="visible", timeout=START)
    page.locator(".lm-TabBar-tab", has_text="Study").click()
    tab = page.locator(".rr-study-tab")
    tab.wait_for(state="visible")
    assert page.locator(".rr-chat").is_hidden()  # the chat's tab is behind it
    page.locator(".rr-study-document select").select_option(label="The Civil War in France")
    page.locator(".rr-study-section select").select_option(label="Part 1")
    page.locator(".rr-study-kind select").select_option(label="Reading guide")
    page.evaluate("""() => { window.__statuses = [];
        new MutationObserver(() => document.querySelectorAll('.rr-study-status .rr-status').forEach(
            s => window.__statuses.push(s.innerText))).observe(document.body,
            {subtree: true, childList: true, characterData: true}); }""")
    make = page.locator("button.rr-study-make")
    make.click()
    page.locator(".rr-study-downloads a.rr-study-download").first.wait_for(state="visible", timeout=ANSWER)
    statuses = page.evaluate("window.__statuses")
    assert any("choosing the passages" in s or "the model is writing items" in s for s in statuses), statuses
    status = tab.locator(".rr-study-status").inner_text()
    assert "items kept of" in status and "from 1 passages" in status, status
    result = tab.locator(".rr-study-result")
    assert "Reading guide: The Civil War in France › Part 1" in result.locator("h1").inner_text()
    items = result.locator(".rr-study .item")
    if items.count():  # each item with its quote and its [n]
        assert items.first.locator("blockquote").count() >= 1 and "[1]" in items.first.inner_text()
        assert "The Civil War in France" in result.locator("ol.sources").inner_text()
    else:  # the tiny model kept nothing: the tab says so
        assert "No item survived the check" in result.inner_text()
    assert page.locator(".rr-study-tab script").count() == 0
    assert page.evaluate("typeof window.__pwned") == "undefined", "script from a passage ran"
    assert make.is_enabled()
    page.screenshot(path=str(ARTIFACTS / "app-study.png"), full_page=True)
    with page.expect_download(timeout=START) as download:
        page.locator("a.rr-study-download", has_text="the aid as Markdown").click()
    saved = Path(download.value.path()).read_text()
    assert download.value.suggested_filename == "guide-the-civil-war-in-france-part-1.md"
    assert saved.startswith("# Reading guide: The Civil War in France › Part 1") and "<script" not in saved
    print(f"\nscreenshot: {ARTIFACTS / 'app-study.png'}; {items.count()} items; status: {status}")
    page.context.close()
