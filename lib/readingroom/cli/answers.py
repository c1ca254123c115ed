"""Cited, checked answers: `ask`."""
from __future__ import annotations

import json

import click

from readingroom.corpus.textio import terminal_safe

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
@click.option("--anchored", is_flag=True,
              help="Claims with the passage's exact words, each checked for meaning by a judge model as it is "
                   "written.")
@click.option("--judge", default=None, metavar="MODEL",
              help="The judging model, of --anchored claims and of the meaning check "
                   "[default: $READINGROOM_JUDGE, else the answering model].")
@click.option("--meaning-check/--words-only", "meaning_check", default=None,
              help="Also put each claim the words support to the judge, which reads its passage "
                   "[default: on when the judge's model is calibrated, as the default model is].")
@click.option("--show-dropped", is_flag=True, help="With --anchored: also print the claims left out, and why.")
@db_option
def ask(question, k, author, year_from, year_to, lang, source, mode, rerank, embedder, model, backend, as_json,
        anchored, judge, meaning_check, show_dropped, db):
    """Answer QUESTION from the library's passages, citing them as [n]. The
    answer is checked by the program: invented citations are removed,
    sentences no cited passage supports are left out, and when nothing is
    left it says the sources do not answer and shows the closest passages."""
    from readingroom.answer.pipeline import answer
    from readingroom.answer.render import body_text, reading_text
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

        if anchored:
            result = _ask_anchored(searcher, question, generator, k, filters, judge, show_dropped, as_json)
        else:
            try:
                result = answer(searcher, question, generator=generator, k=k, filters=filters,
                                stream=None if as_json else show, judge=judge, meaning_check=meaning_check)
            except ValueError as e:
                raise click.ClickException(str(e)) from e
    if as_json:
        click.echo(json.dumps(result.to_dict(), ensure_ascii=False, indent=1, default=str))
        return
    if anchored:
        _anchored_ending(result, show_dropped)
        return
    if streamed:
        click.echo("\n")
        click.echo(click.style("checked answer:", bold=True))
    click.echo(body_text(result))
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
        click.echo(reading_text(result.further_reading, result.language))
    dropped = sum(1 for s in result.sentences if s.kind == "claim" and not s.final)
    notes = []
    if dropped:
        notes.append(f"{dropped} unsupported sentence{'s' if dropped > 1 else ''} left out")
    if result.judge:
        doubted = sum(1 for s in result.sentences if s.meaning_doubted)
        notes.append(f"each claim's meaning judged by {result.judge}, {doubted} not found in its passage")
    if result.invented_citations:
        notes.append("invented citations removed: " + ", ".join(f"[{n}]" for n in result.invented_citations))
    for sentence in (result.crosslingual.withheld if result.crosslingual else []):
        back = f"“{sentence.back_translation}”" if sentence.back_translation is not None else "refused"
        notes.append(terminal_safe(f"translation withheld: “{sentence.translation}”, translated back {back}"))
    if notes:
        click.echo(click.style("(" + "; ".join(notes) + ")", dim=True), err=True)


def claim_lines(claim) -> list[str]:
    """A checked claim as the reader sees it: the claim with its [n], its
    quote in quotation marks under it; when left out, the reason. Corpus and
    model text made terminal-safe here too, not only by the stream guard."""
    text, quote = terminal_safe(claim.text), terminal_safe(" ".join(claim.quote.split()))
    if claim.kept:
        return [f"✓ {text} [{claim.passage}]", f"    “{quote}” (support {claim.support:.2f})"]
    support = f", support {claim.support:.2f}" if claim.support is not None else ""
    lines = [f"✗ {text} [{claim.passage}] (left out: {claim.reason}{support})"]
    if quote:
        lines.append(f"    “{quote}”")
    return lines


def _ask_anchored(searcher, question, generator, k, filters, judge, show_dropped, as_json):
    """The anchored answer, each claim printed as soon as it is checked."""
    from readingroom.answer.pipeline import answer
    from readingroom.models.catalogue import ModelError

    def checked(claim):
        if claim.kept or show_dropped:
            click.echo("\n".join(claim_lines(claim)))

    if not as_json:
        click.echo(click.style("checked claims, as they are written:", bold=True))
    try:
        return answer(searcher, question, generator=generator, k=k, filters=filters, anchored=True, judge=judge,
                      on_claim=None if as_json else checked)
    except (ValueError, ModelError) as e:
        raise click.ClickException(str(e)) from e


def _anchored_ending(result, show_dropped) -> None:
    """After the claims: the abstention, or the sources and the reading list."""
    from readingroom.answer.render import body_text, reading_text

    if result.abstained:
        click.echo(body_text(result))
    else:
        click.echo("")
        click.echo(click.style("sources:", bold=True))
        for c in result.citations:
            hit = result.passages[c["n"] - 1]
            where = f" #{hit.anchor}" if hit.anchor else ""
            click.echo(terminal_safe(f"[{c['n']}] {c['citation']}{where}"))
    if result.further_reading:
        click.echo("")
        click.echo(terminal_safe(reading_text(result.further_reading, result.language)))
    dropped = len(result.dropped_claims)
    if dropped:
        more = "" if show_dropped else " (--show-dropped lists them)"
        click.echo(click.style(f"({dropped} claim{'s' if dropped > 1 else ''} left out by the check{more}; "
                               f"judge: {result.judge})", dim=True), err=True)
