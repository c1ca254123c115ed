"""The chat app's Study tab (readingroom.ui.study_tab): the text chosen with
the search filters, an aid made by the chat's own model (here, as in the
app, through the generation service: no second copy), shown escaped with
each item's quote and [n], and its downloads (Markdown, a page to print;
for a quiz an Anki deck and CSV). The real test model (SmolLM2) on the
study aids' tiny library, whose injected passage carries <script>."""
from __future__ import annotations

import base64
import csv
import io
import re
import sqlite3
import zipfile

import pytest

from readingroom.models.catalogue import TEST_GENERATOR
from readingroom.search.searcher import Filters
from readingroom.study import Selection
from readingroom.ui.chat import Chat
from readingroom.ui.service import GenerationService, RemoteGenerator
from readingroom.ui.study_tab import chat_with_study

from study_library import INJECTION, build
from test_study import EVIL_DRAFTS, checked


@pytest.fixture(scope="module")
def library_path(tmp_path_factory):
    folder = tmp_path_factory.mktemp("study-tab")
    with pytest.MonkeyPatch.context() as patch:  # the BM25 index in a cache of the test's own
        import readingroom.search.index as index_module

        patch.setattr(index_module, "cache_dir", lambda: folder / "cache")
        yield build(folder / "library.duckdb")


def new_tabs(path, generator=None, **settings):
    chat = Chat(path, generator=generator, model=TEST_GENERATOR)
    return chat_with_study(chat, **settings)


def downloads(tab) -> dict[str, bytes]:
    """file name -> the bytes of each download link in the tab."""
    found = re.findall(r'download="([^"]+)" href="data:[^;]+(?:;charset=utf-8)?;base64,([^"]+)"', tab.downloads.value)
    return {name: base64.b64decode(data) for name, data in found}


@pytest.mark.slow  # a Chat warms up its language detector
def test_the_tab_sits_beside_the_chat_and_lists_documents_and_sections_by_the_filters(library_path):
    tabs = new_tabs(library_path)
    tab = tabs.study
    assert tabs.children == (tabs.chat, tab) and tabs.titles == ("Ask", "Study")
    titles = [label for label, _ in tab.document.options]
    assert titles == ["every document the filters let through", "The Civil War in France", "An Anarchist FAQ: H.2.6"]
    tab.choose("faq-h26", "stack", "glossary")
    assert [h for _, h in tab.section.options] == ["", "H.2.6 Mutual aid", "H.2.6 Mutual aid › Stack's account"]
    assert tab.selection() == Selection(doc=tab.document.value, section="H.2.6 Mutual aid › Stack's account")
    tab.search_filters.author.value = "Karl Marx"  # the filters narrow the list, as in search
    assert [label for label, _ in tab.document.options][1:] == ["The Civil War in France"]
    tab.document.value = ""
    assert tab.selection() == Selection(filters=Filters.of(author="Karl Marx")) and tab.section.disabled
    tabs.chat.library.close()


@pytest.fixture(scope="module")
def service(generator):
    with GenerationService(generator) as running:
        yield running


@pytest.mark.slow
def test_an_aid_is_made_by_the_apps_one_model_and_shown_escaped(library_path, service, generator):
    remote = RemoteGenerator(service.url, service.token)
    # The service judges with the model it holds: the same probabilities as the model here.
    question = [{"role": "user", "content": "Is Paris in France? Answer yes or no."}]
    assert remote.choice_probabilities(question, ("yes", "no")) == \
        pytest.approx(generator.choice_probabilities(question, ("yes", "no")))
    tabs = new_tabs(library_path, generator=remote, max_items=2, max_tokens=160)
    tab = tabs.study
    statuses = []
    tab.status.observe(lambda change: statuses.append(change["new"]), names="value")
    served = service.served
    tab.choose("commune", "Part 2", "quiz")  # the passage with <script> and an instruction to the model
    tab.make()
    tab.wait(120)
    assert not tab.busy and tab.error is None, tab.error
    aid = tab.aid
    assert service.served - served >= 1 + aid.located  # its drafts and its judgements went to the service
    assert aid.material.passages[0].text == INJECTION and aid.drafted == len(aid.items) + len(
        [d for d in aid.dropped if "wrong option" not in d.reason])
    assert any("the model is writing items for passages 1–1 (part 1 of 1)" in s for s in statuses)
    assert f"{len(aid.items)} items kept of {aid.drafted} drafted, from 1 passages" in tab.status.value
    shown = tab.result.value
    assert "<script" not in shown and "<img" not in shown and "javascript:" not in shown.replace("\\", "")
    if not aid.items:  # the tiny model may keep nothing: then the tab says so
        assert "No item survived the check" in shown
    for item in aid.items:
        assert f"[{item.quote.n}]" in shown
    files = downloads(tab)
    stem = "quiz-the-civil-war-in-france-part-2"
    assert {f"{stem}.md", f"{stem}.html"} <= set(files)
    assert files[f"{stem}.md"].decode().startswith("# Quiz: The Civil War in France › Part 2")
    assert tab.make_button.disabled is False and tab.make_button.description == "Make"
    tabs.chat.library.close()


@pytest.mark.slow
def test_a_checked_aid_shows_each_item_with_its_quote_and_citation_and_exports_all_four_files(
        library_path, generator):
    """Deterministic: an aid of hand-written drafts put through the real check
    (judge threshold 0) on the real passages, shown by the tab."""
    tabs = new_tabs(library_path)
    tab = tabs.study
    good = {"passage": 2, "quote": "The Commune abolished night work in the bakeries in April 1871",
            "question": "What did the Commune abolish in the bakeries?", "answer": "Night work", "wrong": []}
    aid = checked(tabs.chat.library, generator, "quiz", Selection(doc="commune"), [good, *EVIL_DRAFTS])
    assert len(aid.items) == 3
    tab.show(aid)
    shown = tab.result.value
    for bad in ("<script", "<img src=x", "<b>it", "<a href='http", "href='javascript", 'href="javascript'):
        assert bad not in shown, bad
    assert "&lt;script&gt;alert(&#x27;pwned&#x27;)&lt;/script&gt;" in shown  # the passage's markup, as text
    assert "“The Commune abolished night work in the bakeries in April 1871” <span class='n'>[2]</span>" in shown
    assert "What did the Commune abolish in the bakeries?" in shown and "Night work" in shown
    assert "The Civil War in France" in shown  # the citation, in the passages cited
    assert "3 items kept of 3 drafted" in tab.status.value and "No item survived" not in shown
    files = downloads(tab)
    stem = "quiz-the-civil-war-in-france"
    assert set(files) == {f"{stem}.md", f"{stem}.html", f"{stem}.apkg", f"{stem}.csv"}
    assert "<script" not in files[f"{stem}.html"].decode() and "@media print" in files[f"{stem}.html"].decode()
    rows = list(csv.reader(io.StringIO(files[f"{stem}.csv"].decode())))
    assert rows[0][:2] == ["question", "answer"] and len(rows) == 4
    with zipfile.ZipFile(io.BytesIO(files[f"{stem}.apkg"])) as deck:
        collection = deck.read("collection.anki2")
    path = library_path.replace("library.duckdb", "collection.anki2")
    with open(path, "wb") as f:
        f.write(collection)
    con = sqlite3.connect(path)
    notes = [row[0].split("\x1f") for row in con.execute("SELECT flds FROM notes")]
    con.close()
    assert ["What did the Commune abolish in the bakeries?", "Night work"] in [n[:2] for n in notes]

    timeline = checked(tabs.chat.library, generator, "timeline", Selection(doc="commune"), [
        {"passage": 2, "quote": "The Commune abolished night work in the bakeries in April 1871",
         "date": "1871", "event": "The Commune abolishes night work in the bakeries"}])
    tab.show(timeline)  # its picture is shown; a timeline has no deck
    assert "data:image/png;base64," in tab.result.value and len(downloads(tab)) == 2
    tabs.chat.library.close()


@pytest.mark.parametrize("extra, refused", [
    ({"choices": ["yes", "no"]}, None),
    ({"json_schema": {"type": "object"}}, None),
    ({"choices": []}, "choices must be"),
    ({"choices": ["x" * 33]}, "choices must be"),
    ({"choices": "yes"}, "choices must be"),
    ({"json_schema": ["not", "an", "object"]}, "json_schema must be"),
    ({"json_schema": {"description": "x" * 20_000}}, "json_schema must be"),
])
def test_the_service_takes_the_judges_choices_and_a_json_schema_within_bounds(extra, refused):
    import json

    from readingroom.ui.service import RequestRefused, parse_request

    raw = json.dumps({"messages": [{"role": "user", "content": "Is it so?"}], **extra}).encode()
    if refused:
        with pytest.raises(RequestRefused, match=refused) as error:
            parse_request(raw)
        assert error.value.status == 400
        return
    _, settings = parse_request(raw)
    assert settings.get("choices", settings.get("json_schema")) == next(iter(extra.values()))


@pytest.mark.slow  # a Chat warms up its language detector
def test_an_aid_with_nothing_kept_says_so_once_in_the_readers_language(library_path):
    from html import escape

    from readingroom.messages import message
    from readingroom.study import Aid, select_material

    tabs = new_tabs(library_path, language="de")
    material = select_material(tabs.chat.library, Selection(doc="commune"))
    tabs.study.show(Aid(kind="quiz", title="Quiz: The Civil War in France", material=material, drafted=2))
    shown = tabs.study.result.value
    assert shown.count(escape(message("study-nothing-kept", "de"))) == 1
    assert "No item survived" not in shown  # the aid's own English line is not added to it
    page = downloads(tabs.study)["quiz-the-civil-war-in-france.html"].decode()
    assert escape(message("study-nothing-kept", "de")) in page and "No item survived" not in page
    tabs.chat.library.close()
