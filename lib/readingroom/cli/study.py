"""`readingroom study guide|questions|glossary|quiz|timeline|map`: a study
aid for a document, a section of one, or documents chosen with filters,
written to a file (.md, .html; a quiz also .apkg for Anki and .csv) or
shown as Markdown."""
from __future__ import annotations

import re
from pathlib import Path

import click

from readingroom.cli.options import db_option, filter_options

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def terminal_safe(text: str) -> str:
    """Text for a terminal: control characters (escape sequences, bidi
    overrides) from the corpus or the model removed."""
    return _CONTROL.sub("", text)


@click.group()
def study():
    """Study aids for a workshop: every item cited and checked."""


def _study_command(kind: str, help_text: str):
    @study.command(kind, help=help_text)
    @click.option("--doc", default=None, help="The document: its key, id or words of its title.")
    @click.option("--section", default=None, help="Only the section whose heading holds these words.")
    @filter_options
    @click.option("--max-passages", type=int, default=None, help="Most passages to read [default: 24].")
    @click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), default=None,
                  help="File to write: .md, .html, .json; for a quiz also .apkg (Anki) or .csv.")
    @click.option("--model", default=None,
                  help="Generator (and judge) [default: $READINGROOM_GENERATOR, else qwen2.5-coder-1.5b-instruct-q4_k_m].")
    @click.option("--quiet", is_flag=True, help="No progress bar.")
    @db_option
    def command(doc, section, author, year_from, year_to, lang, source, max_passages, output, model, quiet, db):
        import json
        import os

        from readingroom.library.store import LibraryError, open_library
        from readingroom.models.catalogue import DEFAULT_GENERATOR, ModelError
        from readingroom.models.generate import load_generator
        from readingroom.search.searcher import Filters
        from readingroom.study import Selection, SelectionError, make_aid
        from readingroom.study.export import write

        filters = Filters.of(author=list(author), year_from=year_from, year_to=year_to,
                             language=list(lang), source=list(source))
        if output is not None and output.suffix.lower() in (".apkg", ".csv") and kind != "quiz":
            raise click.UsageError(f"{output}: only a quiz is written as .apkg or .csv")
        try:
            lib = open_library(db, read_only=True)
        except LibraryError as e:
            raise click.ClickException(str(e)) from e
        with lib:
            try:
                generator = load_generator(model or os.environ.get("READINGROOM_GENERATOR") or DEFAULT_GENERATOR)
            except (ModelError, ImportError, ValueError) as e:
                raise click.ClickException(str(e)) from e
            try:
                aid = make_aid(kind, lib, Selection(doc, section, filters), generator,
                               max_passages=max_passages, progress=not quiet)
            except SelectionError as e:
                raise click.ClickException(str(e)) from e
            click.echo(terminal_safe(aid.summary()), err=True)
            if output is None:
                click.echo(terminal_safe(aid.to_markdown()))
            elif output.suffix.lower() == ".json":
                output.write_text(json.dumps(aid.to_dict(), indent=1, ensure_ascii=False), encoding="utf-8")
            else:
                try:
                    write(aid, output)
                except ValueError as e:
                    raise click.UsageError(str(e)) from e
            if output is not None:
                click.echo(f"written: {output}", err=True)
    return command


for _kind, _help in [
    ("guide", "A reading guide: what the text argues, section by section, each point with its quote; "
              "then the key passages to read aloud."),
    ("questions", "Discussion questions, each anchored to the passages that bear on it, with where readers "
                  "may disagree."),
    ("glossary", "The text's terms defined from the text, each with its quote and where else the library "
                 "uses it."),
    ("quiz", "Quiz questions and flashcards: answer, proving quote, wrong options the quote does not support "
             "(-o deck.apkg for Anki, quiz.csv)."),
    ("timeline", "Dated events and writings the text mentions, each with its quote, plotted (in .html)."),
    ("map", "A concept map: the text's concepts and the links it makes, each with its quote (drawn in .html)."),
]:
    _study_command(_kind, _help)
