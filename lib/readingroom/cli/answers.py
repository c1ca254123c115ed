"""Cited, checked answers: `ask`."""
from __future__ import annotations

import json

import click

from readingroom.cli.options import (db_option, filter_options, generator_options, load_generator_or_fail,
                                     open_library_or_fail, search_options, searcher_from_options)


@click.command()
@click.argument("question")
@click.option("-k", "k", default=5, show_default=True, help="How many passages the model is given.")
@filter_options
@search_options
@generator_options
@click.option("--json", "as_json", is_flag=True,
              help="Print one JSON object: answer, citations, supported, passages (and the check's details).")
@db_option
def ask(question, k, author, year_from, year_to, lang, source, mode, rerank, embedder, model, backend, as_json, db):
    """Answer QUESTION from the library's passages, citing them as [n]. The
    answer is checked by the program: invented citations are removed,
    sentences no cited passage supports are left out, and when nothing is
    left it says the sources do not answer and shows the closest passages."""
    from readingroom.answer.pipeline import answer
    from readingroom.search.searcher import Filters

    filters = Filters.of(author=author, year_from=year_from, year_to=year_to, language=lang, source=source)
    with open_library_or_fail(db) as lib:
        searcher = searcher_from_options(lib, embedder, rerank, mode)
        generator = load_generator_or_fail(model, backend)
        streamed = []

        def show(piece):
            if not streamed:
                click.echo(click.style("model (unchecked):", dim=True))
            streamed.append(piece)
            click.echo(click.style(piece, dim=True), nl=False)

        try:
            result = answer(searcher, question, generator=generator, k=k, filters=filters,
                            stream=None if as_json else show)
        except ValueError as e:
            raise click.ClickException(str(e)) from e
    if as_json:
        click.echo(json.dumps(result.to_dict(), ensure_ascii=False, indent=1, default=str))
        return
    if streamed:
        click.echo("\n")
        click.echo(click.style("checked answer:", bold=True))
    click.echo(result.body)
    if result.citations:
        click.echo("")
        click.echo(click.style("sources:", bold=True))
        for c in result.citations:
            hit = result.passages[c["n"] - 1]
            where = f" #{hit.anchor}" if hit.anchor else ""
            click.echo(f"[{c['n']}] {c['citation']}{where}")
            click.echo(f"    “{c['quote']}”")
    if result.further_reading:
        click.echo("")
        click.echo(result.text[len(result.body):].strip())
    dropped = sum(1 for s in result.sentences if s.kind == "claim" and not s.final)
    notes = []
    if dropped:
        notes.append(f"{dropped} unsupported sentence{'s' if dropped > 1 else ''} left out")
    if result.invented_citations:
        notes.append("invented citations removed: " + ", ".join(f"[{n}]" for n in result.invented_citations))
    if notes:
        click.echo(click.style("(" + "; ".join(notes) + ")", dim=True), err=True)
