"""What several command groups share: the --db option, the option sets of
search, filters, the generator and the splitter, and opening the library,
a searcher or a generator with their errors turned into clear messages."""
from __future__ import annotations

import sys
from contextlib import contextmanager
from pathlib import Path

import click

from readingroom.corpus.passages import Splitter
from readingroom.library.ingest import IngestReport
from readingroom.library.store import LibraryError, open_library
from readingroom.paths import default_library_path


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


def finish_ingest(report: IngestReport) -> None:
    click.echo(report.summary(), err=bool(report.problems))
    if report.errors:
        sys.exit(1)  # some files did not go in; the rest did


def filter_options(f):
    f = click.option("--author", multiple=True, help="Any part of an author's name (repeatable).")(f)
    f = click.option("--year-from", type=int, default=None, help="Documents from this year on.")(f)
    f = click.option("--year-to", type=int, default=None, help="Documents up to this year.")(f)
    f = click.option("--lang", multiple=True, help="Document language, e.g. en (repeatable).")(f)
    f = click.option("--source", multiple=True, help="Source, e.g. anarchist-faq (repeatable).")(f)
    return f


def search_options(f):
    f = click.option("--mode", type=click.Choice(["hybrid", "bm25", "vector"]), default="hybrid",
                     show_default=True)(f)
    f = click.option("--rerank", default=None, metavar="SPEC",
                     help="Rerank the best ten: query-likelihood[:MODEL] or embedder:MODEL.")(f)
    f = click.option("--embedder", default=None,
                     help="Embedding model whose vectors to search [default: the one that embedded most].")(f)
    return f


def searcher_from_options(lib, embedder, rerank, mode=None):
    """The library's searcher; with `mode`, set to search that way, falling
    back to words alone (and saying so) while the library has no vectors."""
    import dataclasses

    from readingroom.models.catalogue import ModelError
    from readingroom.search.rerank import load_reranker
    from readingroom.search.searcher import searcher_for

    try:
        searcher = searcher_for(lib, embedder, reranker=load_reranker(rerank))
    except (ModelError, LookupError, ValueError) as e:
        raise click.ClickException(str(e)) from e
    if mode is not None:
        if searcher.index.embedder is None and mode != "bm25":
            click.echo("note: no passage vectors yet (run `readingroom embed`); searching words only", err=True)
            mode = "bm25"
        searcher.settings = dataclasses.replace(searcher.settings, mode=mode)
    return searcher


def generator_options(f):
    f = click.option("--model", default=None,
                     help="Generator: a catalogue name, adapter:NAME or a .gguf path [default: qwen2.5-coder-1.5b-instruct-q4_k_m].")(f)
    f = click.option("--backend", type=click.Choice(["llama.cpp", "transformers"]), default="llama.cpp",
                     show_default=True, help="What runs the generator.")(f)
    return f


def load_generator_or_fail(model, backend):
    from readingroom.models.generate import load_generator
    from readingroom.models.catalogue import DEFAULT_GENERATOR, ModelError

    try:
        return load_generator(model or DEFAULT_GENERATOR, backend=backend)
    except (ModelError, ImportError, ValueError) as e:
        raise click.ClickException(str(e)) from e


def cluster_option(f):
    f = click.option("--cluster", "cluster_address", default=None, metavar="tcp://HOST:8786",
                     help="Do the work on this Dask cluster's workers (the cluster extra; each needs "
                          "the models and sees the files and --shards at the same paths).")(f)
    f = click.option("--shards", type=click.Path(file_okay=False, path_type=Path), default=None,
                     help="With --cluster: the folder the workers write their results to, on a disk every "
                          "machine shares [default: beside the library, LIBRARY.shards].")(f)
    return f


@contextmanager
def cluster_or_here(address: str | None):
    """(the Dask cluster's executor, its number of workers), its dashboard
    named; (None, 1): work here."""
    if address is None:
        yield None, 1
        return
    from readingroom.workers import cluster

    try:
        with cluster(address) as (executor, workers, dashboard):
            click.echo(f"cluster {address}: {workers} workers; dashboard {dashboard}", err=True)
            yield executor, workers
    except (RuntimeError, OSError) as e:
        raise click.ClickException(f"{address}: {e}") from e


def open_library_or_fail(db):
    try:
        return open_library(db)
    except LibraryError as e:
        raise click.ClickException(str(e)) from e
