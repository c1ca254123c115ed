"""The `readingroom` command: the library's functions, seen from a shell.

One module per command group, each over the same library functions; this
one only gathers them under the root group `main`.

Every command takes --db FILE (default: $READINGROOM_DB, else
~/.local/share/readingroom/library.duckdb). Nothing here reaches the network
except `corpus fetch`, `corpus add`, `models fetch`, `news samples` and
`news update`, which download only what they name.
"""
from __future__ import annotations

import click

from readingroom.cli import answers, app, evaluate, library, models, news, search, study, tune
from readingroom.cli.terminal import guard_terminal


@click.group()
@click.version_option(package_name="readingroom")
def main():
    """Reading Room: your study group's library, searchable, with cited answers."""
    guard_terminal()  # nothing printed carries control characters from corpus text


for command in (library.ingest, library.corpus, library.stats, models.models_group, search.embed,
                search.search, answers.ask, evaluate.eval_group, tune.tune_group, tune.adapters_group,
                news.news_group, app.app, study.study):
    main.add_command(command)
