"""The chat app's Study tab: a facilitator picks a text (a document, one
section of it, or the documents the filters let through) and a kind of
study aid, presses Make, and gets the aid (readingroom.study.make_aid):
every item with its checked quote and [n], the passages cited, a picture
for a timeline or a concept map, and links to download it as Markdown, as
a page to print, and, for a quiz, as an Anki deck and CSV.

    from readingroom.ui.chat import Chat
    from readingroom.ui.study_tab import chat_with_study
    chat_with_study(Chat())     # a Tab: the chat, and the Study tab beside it

The tab uses its chat's library and its chat's generator (in the app, the
generation service's one model; in a notebook, the copy the chat loads),
never a second copy. The aid is made in a background thread, like an
answer, so the status line and the progress bar move while the model
works. What the aid shows is study.export's HTML, where every piece of
corpus or model text is escaped; the tab's own words come from the message
catalogue (readingroom.messages) and are escaped too.
"""
from __future__ import annotations

import tempfile
import threading
from pathlib import Path

import ipywidgets as widgets

from readingroom.answer.render import escape_html as escape
from readingroom.messages import translator
from readingroom.models.generate import Generator
from readingroom.study import KINDS, SPECS, Aid, Selection, SelectionError, make_aid, select_material
from readingroom.study.export import to_anki, to_csv, to_html, to_markdown
from readingroom.study.select import MAX_PASSAGES, document_sections, filtered_documents, find_document
from readingroom.ui.chat import SearchFilters, data_link

MAX_DOCUMENTS = 500  # in the document list; the filters narrow a larger library
LABEL_CHARS = 90

STYLE = """<style>
.rr-study-tab { max-width: 60em; }
.rr-study-tab .rr-status { color: #666; font-size: 0.85em; font-style: italic; }
.rr-study-tab .rr-error { color: #b00; white-space: pre-wrap; border-left: 3px solid #b00; padding-left: 0.6em; }
.rr-study-tab .rr-note { color: #666; font-size: 0.85em; }
.rr-study-tab .rr-study h1 { font-size: 1.35em; } .rr-study-tab .rr-study h2 { font-size: 1.1em; }
.rr-study-downloads a { margin-right: 1.2em; color: #1a5fb4; text-decoration: underline; }
</style>"""


def _short(text: str, limit: int = LABEL_CHARS) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[:limit - 1] + "…"


class _Watched(Generator):
    """The chat's generator, telling the tab what it is doing: each call to
    `stream` drafts one batch of items; each `choice_probabilities` is the
    judge checking a statement. Loaded when first needed (in a notebook,
    the chat's own copy, which it loads once per kernel)."""

    backend = "study"

    def __init__(self, load, name: str, report):
        self._load, self.name, self._report = load, name, report
        self._generator = None
        self.last_usage = None

    def _model(self):
        if self._generator is None:
            self._report("loading")
            self._generator = self._load()
            self.name = getattr(self._generator, "name", self.name)
        return self._generator

    def _watching(self, generator):
        watching = getattr(generator, "watching", None)
        if watching is None:
            import contextlib

            return contextlib.nullcontext()
        return watching(lambda n, wait=None: self._report("queue", n))

    def stream(self, messages, **settings):
        generator = self._model()
        self._report("drafting")
        with self._watching(generator):
            yield from generator.stream(messages, **settings)
        self.last_usage = getattr(generator, "last_usage", None)
        self._report("checking")

    def choice_probabilities(self, messages, options):
        generator = self._model()
        with self._watching(generator):
            return generator.choice_probabilities(messages, options)


class StudyTab(widgets.VBox):
    """Study aids from the chat's library, made with the chat's model.
    `max_passages`, `max_items`, `max_tokens`: make_aid's bounds (the tests
    keep them small); `language`: the catalogue's language for the tab's
    words (None: English, as the chat's own labels)."""

    def __init__(self, chat, *, max_passages: int = MAX_PASSAGES, max_items: int | None = None,
                 max_tokens: int | None = None, language: str | None = None):
        self.chat = chat
        self.say = say = translator(language)
        self.max_passages, self.max_items, self.max_tokens = max_passages, max_items, max_tokens
        self.aid: Aid | None = None
        self.error: str | None = None
        self.thread: threading.Thread | None = None

        index = chat.searcher.index if chat.searcher else None
        self.search_filters = SearchFilters(index.docs if index else None, language,
                                            passage_languages=index.languages() if index else None)
        self.document = widgets.Dropdown(description=say("study-document"), layout=widgets.Layout(width="46em"))
        self.section = widgets.Dropdown(description=say("study-section"), layout=widgets.Layout(width="46em"))
        self.kind = widgets.Dropdown(options=[(say(f"study-kind-{k}"), k) for k in KINDS],
                                     description=say("study-kind"))
        self.make_button = widgets.Button(description=say("study-make"), button_style="primary", icon="book")
        self.progress = widgets.IntProgress(value=0, min=0, max=1, layout=widgets.Layout(visibility="hidden"))
        self.status = widgets.HTML()
        self.result = widgets.HTML()
        self.downloads = widgets.HTML()
        for w, name in ((self.document, "rr-study-document"), (self.section, "rr-study-section"),
                        (self.kind, "rr-study-kind"), (self.make_button, "rr-study-make"),
                        (self.progress, "rr-study-progress"), (self.status, "rr-study-status"),
                        (self.result, "rr-study-result"), (self.downloads, "rr-study-downloads")):
            w.add_class(name)

        filters = widgets.Accordion(children=[widgets.VBox(list(self.search_filters.widgets))],
                                    titles=(say("study-filters"),))
        filters.selected_index = None
        self.search_filters.observe(lambda _change: self._list_documents())
        self.document.observe(lambda _change: self._list_sections(), names="value")
        self.make_button.on_click(self._on_make)
        intro = widgets.HTML(f'<div class="rr-note">{escape(say("study-intro"))}</div>')
        super().__init__([widgets.HTML(STYLE), intro, filters, self.document, self.section, self.kind,
                          widgets.HBox([self.make_button, self.progress]), self.status, self.result,
                          self.downloads])
        self.add_class("rr-study-tab")
        if chat.problem or chat.library is None:
            self.make_button.disabled = True
            self.status.value = f'<div class="rr-error">{escape(chat.problem or "")}</div>'
            return
        self._list_documents()

    # --- choosing the text ---------------------------------------------------------------
    def _list_documents(self) -> None:
        found = filtered_documents(self.chat.library, self.search_filters.filters())
        options = [(self.say("study-all-documents"), "")] if found else []
        options += [(_short(title), doc_id) for doc_id, title in found[:MAX_DOCUMENTS]]
        keep = self.document.value
        self.document.options = options
        if options:
            self.document.value = keep if keep in [v for _, v in options] else options[min(1, len(options) - 1)][1]
        self._list_sections()

    def _list_sections(self) -> None:
        doc_id = self.document.value
        headings = document_sections(self.chat.library, doc_id) if doc_id else []
        self.section.options = [(self.say("study-whole-document"), "")] + [(_short(h), h) for h in headings]
        self.section.value = ""
        self.section.disabled = not doc_id

    def selection(self) -> Selection:
        """The text chosen in the widgets."""
        if self.document.value:
            return Selection(doc=self.document.value, section=self.section.value or None)
        return Selection(filters=self.search_filters.filters())

    def choose(self, doc: str, section: str | None = None, kind: str = "guide") -> None:
        """Set the widgets as a facilitator would (scripts and tests): `doc`
        a document's key, id or words of its title, `section` words of one
        of its headings."""
        self.document.value = find_document(self.chat.library, doc)[0]
        if section:
            self.section.value = next(h for h in self.section.options[1:] if section.lower() in h[1].lower())[1]
        self.kind.value = kind

    # --- making it -----------------------------------------------------------------------
    @property
    def busy(self) -> bool:
        return self.thread is not None and self.thread.is_alive()

    def make(self) -> None:
        """Press Make (returns at once; `wait()` for the aid)."""
        self.make_button.click()

    def wait(self, timeout: float | None = None) -> None:
        if self.thread is not None:
            self.thread.join(timeout)

    def _say(self, text: str, css: str = "rr-status") -> None:
        self.status.value = f'<div class="{css}">{escape(text)}</div>' if text else ""

    def _set_busy(self, busy: bool) -> None:
        self.make_button.disabled = busy
        self.make_button.description = self.say("study-making") if busy else self.say("study-make")
        for w in (self.document, self.section, self.kind):
            w.disabled = busy
        self.progress.layout.visibility = "visible" if busy else "hidden"

    def _on_make(self, _button=None) -> None:
        if self.busy or self.chat.library is None:
            return
        # Read the widgets here, in the kernel's thread; the worker only writes.
        job = dict(kind=self.kind.value, selection=self.selection(), model=self.chat.model_choice.value)
        self.aid, self.error = None, None
        self.result.value = self.downloads.value = ""
        self._say(self.say("study-choosing"))
        self._set_busy(True)
        self.thread = threading.Thread(target=self._make, args=(job,), name="readingroom-study", daemon=True)
        self.thread.start()

    def _make(self, job: dict) -> None:
        say = self.say
        try:
            material = select_material(self.chat.library, job["selection"], max_passages=self.max_passages)
            batches = [passages for _, passages in SPECS[job["kind"]].batches(material)]
            self.progress.max, self.progress.value = max(len(batches), 1), 0
            kept = []

            def report(what, n=None):
                if what == "loading" and not self.chat.shared_model:
                    self._say(say("study-loading", model=job["model"]))
                elif what == "queue" and n:
                    self._say(say("study-queue", ahead=n))
                elif what == "drafting" and self.progress.value < len(batches):
                    part = batches[self.progress.value]
                    self._say(say("study-drafting", first=part[0].n, last=part[-1].n,
                                  part=self.progress.value + 1, parts=len(batches)))
                elif what == "checking":
                    self.progress.value += 1
                    self._say(say("study-checking", kept=len(kept)))

            generator = _Watched(lambda: self.chat._generator_for(job["model"]), job["model"], report)
            aid = make_aid(job["kind"], self.chat.library, material, generator, max_items=self.max_items,
                           max_tokens=self.max_tokens, progress=False, on_item=kept.append)
            self.show(aid)
        except (SelectionError, ValueError, LookupError, OSError) as e:
            self.fail(str(e))
        except Exception as e:  # shown in the tab: a traceback means nothing to a facilitator
            self.fail(f"{type(e).__name__}: {e}")
        finally:
            self._set_busy(False)

    def fail(self, error: str) -> None:
        self.error = error
        self._say(self.say("study-failed", error=error), "rr-error")

    # --- showing it ----------------------------------------------------------------------
    def show(self, aid: Aid) -> None:
        """The aid in the tab (escaped: study.export's HTML), its status and
        its downloads. Also for an aid made elsewhere."""
        say = self.say
        self.aid = aid
        seconds = say("seconds", seconds=f"{aid.seconds:.0f}") if aid.seconds >= 1 else say("under-a-second")
        notes = [say("study-done", kept=len(aid.items), drafted=aid.drafted, passages=len(aid.material.passages),
                     model=aid.model or "?", seconds=seconds)]
        if aid.material.cut:
            notes.append(say("study-cut", passages=len(aid.material.passages), cut=aid.material.cut))
        self._say("; ".join(notes))
        nothing = f'<div class="rr-note rr-study-nothing">{escape(say("study-nothing-kept"))}</div>'
        self.result.value = ("" if aid.items else nothing) + to_html(aid, page=False, nothing_kept="")
        self.downloads.value = downloads_html(aid, say)


def file_stem(aid: Aid) -> str:
    """A file name for the aid: its kind and its material's title, plain letters only."""
    words = "".join(c if c.isalnum() else "-" for c in aid.material.title.lower())
    return "-".join(filter(None, f"{aid.kind}-{words}".split("-")))[:80]


def downloads_html(aid: Aid, say) -> str:
    """Download links for the aid (chat.data_link, as the chat's own
    export): Markdown and a page to print; for a quiz an Anki deck and CSV."""
    stem = file_stem(aid)
    links = [data_link(to_markdown(aid).encode("utf-8"), f"{stem}.md", "text/markdown;charset=utf-8",
                       say("study-download-markdown"), "rr-study-download"),
             data_link(to_html(aid, nothing_kept=say("study-nothing-kept")).encode("utf-8"), f"{stem}.html",
                       "text/html;charset=utf-8",
                       say("study-download-html"), "rr-study-download")]
    if aid.kind == "quiz" and aid.items:
        with tempfile.TemporaryDirectory(prefix="readingroom-study-") as folder:
            deck = to_anki(aid, Path(folder) / f"{stem}.apkg").read_bytes()
        links += [data_link(deck, f"{stem}.apkg", "application/octet-stream", say("study-download-anki"),
                            "rr-study-download"),
                  data_link(to_csv(aid).encode("utf-8"), f"{stem}.csv", "text/csv;charset=utf-8",
                            say("study-download-csv"), "rr-study-download")]
    return f'<div class="rr-study-downloads-list"><b>{escape(say("study-download"))}:</b> {" ".join(links)}</div>'


def chat_with_study(chat, **study_settings) -> widgets.Tab:
    """The chat and its Study tab, side by side in tabs (the app's page);
    the tab speaks the chat's page language unless `language` is given."""
    study_settings.setdefault("language", getattr(chat, "page_language", None))
    say = translator(study_settings["language"])
    study = StudyTab(chat, **study_settings)
    tabs = widgets.Tab(children=[chat, study], titles=(say("tab-chat"), say("tab-study")))
    tabs.add_class("rr-tabs")
    tabs.chat, tabs.study = chat, study
    return tabs


__all__ = ["StudyTab", "chat_with_study", "downloads_html"]
