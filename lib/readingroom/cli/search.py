"""Vectors and search: `embed`, `search`."""
from __future__ import annotations

import json

import click

from readingroom.cli.options import (cluster_option, cluster_or_here, db_option, filter_options,
                                     open_library_or_fail, search_options, searcher_from_options)


@click.command()
@click.option("--model", default=None, help="Embedder: a catalogue name or a path [default: all-minilm-l6-v2].")
@click.option("--batch-size", default=32, show_default=True)
@click.option("--backend", type=click.Choice(["torch", "openvino-bf16"]), default="torch", show_default=True,
              help="What runs the model; the stored vectors are the same model's either way.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@click.option("--document", "documents", multiple=True,
              help="Only this document's passages: its doc id or its key, e.g. secB2 (repeatable).")
@cluster_option
@db_option
def embed(model, batch_size, backend, quiet, documents, cluster_address, shards, db):
    """Embed every passage that has no vector for the model yet (resumable)."""
    from readingroom.models.embed import embed_library
    from readingroom.models.catalogue import DEFAULT_EMBEDDER, ModelError

    with open_library_or_fail(db) as lib, cluster_or_here(cluster_address) as (executor, workers):
        doc_ids = None
        if documents:  # each named by its doc id or its key
            found = lib.con.execute("SELECT doc_id, key FROM documents WHERE doc_id IN (SELECT unnest($n)) "
                                    "OR key IN (SELECT unnest($n))", {"n": list(documents)}).fetchall()
            unknown = set(documents) - {name for row in found for name in row}
            if unknown:
                raise click.ClickException(f"no document has the id or key {', '.join(sorted(unknown))}")
            doc_ids = [doc_id for doc_id, _ in found]
        try:
            if executor is None:
                report = embed_library(lib, model or DEFAULT_EMBEDDER, batch_size=batch_size, progress=not quiet,
                                       backend=backend, doc_ids=doc_ids)
            else:  # the workers write vectors to shards that are merged here
                from readingroom.models.sharded_embed import embed_on_cluster

                report, run = embed_on_cluster(lib, executor, shards=shards, workers=workers,
                                               model=model or DEFAULT_EMBEDDER, batch_size=batch_size,
                                               progress=not quiet, backend=backend, doc_ids=doc_ids)
                click.echo(run.summary(), err=True)
        except (ModelError, ImportError) as e:
            raise click.ClickException(str(e)) from e
    click.echo(report.summary())


@click.command()
@click.argument("query")
@click.option("-k", "k", default=10, show_default=True, help="How many passages.")
@filter_options
@search_options
@click.option("--json", "as_json", is_flag=True, help="Print one JSON array, best first.")
@db_option
def search(query, k, author, year_from, year_to, lang, source, mode, rerank, embedder, as_json, db):
    """Find the passages that best match QUERY (BM25 and vectors, fused)."""
    from readingroom.search.searcher import Filters

    filters = Filters.of(author=author, year_from=year_from, year_to=year_to, language=lang, source=source)
    with open_library_or_fail(db) as lib:
        hits = searcher_from_options(lib, embedder, rerank, mode).search(query, k, filters)
    if as_json:
        click.echo(json.dumps([h.to_dict() for h in hits], ensure_ascii=False, indent=1))
        return
    if not hits:
        click.echo("nothing found")
    for n, h in enumerate(hits, start=1):
        where = f" #{h.anchor}" if h.anchor else ""
        click.echo(click.style(f"[{n}] {h.citation}{where}", bold=True) + f"  (score {h.score:.4g})")
        text = " ".join(h.text.split())
        click.echo("    " + (text if len(text) <= 400 else text[:400] + " ..."))
