"""Measuring search and answers on questions with known answers: `eval
retrieval|answers|runs`."""
from __future__ import annotations

import json
from pathlib import Path

import click

from readingroom.cli.options import (db_option, generator_options, load_generator_or_fail, open_library_or_fail,
                                     search_options, searcher_from_options)


def show_run(run, as_json: bool) -> None:
    """A recorded run: its summary, or with --json its id, metrics and settings."""
    if as_json:
        click.echo(json.dumps({"run_id": run.run_id, "metrics": run.metrics, "settings": run.settings}))
    else:
        click.echo(run.summary())


@click.group(name="eval")
def eval_group():
    """Measure search (and later answers) on questions with known answers."""


@eval_group.command(name="retrieval")
@click.option("--qa", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="JSON Lines: {\"q\": ..., \"gold\": exact text} (or gold_doc, gold_section).")
@click.option("-k", "--k", "k", default=10, show_default=True)
@click.option("--limit", type=int, default=None, help="Only the first N questions.")
@click.option("--label", default=None, help="A name for this run in the runs table.")
@search_options
@click.option("--json", "as_json", is_flag=True, help="Print the metrics as JSON.")
@db_option
def eval_retrieval(qa, k, limit, label, mode, rerank, embedder, as_json, db):
    """Recall@1/5/10, MRR@10 and nDCG@10 of search on a questions file; the
    run is recorded in the library's runs table."""
    from readingroom.evaluate.questions import QuestionsError
    from readingroom.evaluate.retrieval import evaluate_retrieval

    with open_library_or_fail(db) as lib:
        searcher = searcher_from_options(lib, embedder, rerank)
        try:
            run = evaluate_retrieval(lib, qa, searcher=searcher, k=k, mode=mode, limit=limit, label=label)
        except QuestionsError as e:
            raise click.ClickException(str(e)) from e
    show_run(run, as_json)
    missing = run.metrics.get("gold_not_in_library")
    if missing and not as_json:
        click.echo(f"warning: {missing} questions have gold text this library does not hold "
                   "(they count as misses)", err=True)


@eval_group.command(name="runs")
@click.option("--kind", default=None, help="Only runs of this kind (retrieval, answers ...).")
@db_option
def eval_runs(kind, db):
    """The recorded evaluation runs, newest first."""
    from readingroom.evaluate.runs import runs

    with open_library_or_fail(db) as lib:
        table = runs(lib, kind)
    if table.empty:
        click.echo("no runs recorded yet")
        return
    shown = table.drop(columns=["settings"])
    numbers = shown.select_dtypes("float").columns
    shown[numbers] = shown[numbers].round(3)
    click.echo(shown.to_string(index=False, max_colwidth=40))


@eval_group.command(name="answers")
@click.option("--qa", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="JSON Lines of answerable questions with gold (as for `eval retrieval`).")
@click.option("--unanswerable", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="JSON Lines of questions the library cannot answer ({\"q\": ...}).")
@click.option("-k", "--k", "k", default=5, show_default=True, help="Passages given to the model.")
@click.option("--limit", type=int, default=None, help="Only the first N questions of each file.")
@click.option("--label", default=None, help="A name for this run in the runs table.")
@click.option("--embedder", default=None,
              help="Embedding model whose vectors to search [default: the one that embedded most].")
@generator_options
@click.option("--json", "as_json", is_flag=True, help="Print the metrics as JSON.")
@db_option
def eval_answers(qa, unanswerable, k, limit, label, embedder, model, backend, as_json, db):
    """Citation validity, support, gold-passage citation rate and abstention
    accuracy of checked answers; the run is recorded in the runs table."""
    from readingroom.evaluate.answers import evaluate_answers
    from readingroom.evaluate.questions import QuestionsError

    with open_library_or_fail(db) as lib:
        searcher = searcher_from_options(lib, embedder, None)
        generator = load_generator_or_fail(model, backend)
        try:
            run = evaluate_answers(lib, qa, unanswerable=unanswerable, searcher=searcher, generator=generator,
                                   k=k, limit=limit, label=label)
        except QuestionsError as e:
            raise click.ClickException(str(e)) from e
    show_run(run, as_json)
