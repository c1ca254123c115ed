"""Adapting the models to the library: `tune dataset|lora|embedder`,
`adapters list|export|import`."""
from __future__ import annotations

from pathlib import Path

import click

from readingroom.cli.options import db_option, generator_options, load_generator_or_fail, open_library_or_fail


@click.group(name="tune")
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

    with open_library_or_fail(db) as lib:
        examples = []
        if questions:
            built, report = build_questions(lib, load_generator_or_fail(model, backend), questions, seed=seed,
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
    with open_library_or_fail(db) as lib:
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
    with open_library_or_fail(db) as lib:
        result = tune_embedder(lib, examples, base=base, name=name, progress=not quiet,
                               settings=EmbedderSettings(epochs=epochs, batch_size=batch_size))
        record_embedder(lib, result, base, examples)
    click.echo(f"embedder:{name}: recall@5 of {result.held_out_questions} held-out questions "
               f"{result.recall_before:.3f} -> {result.recall_after:.3f}; saved in {result.folder}; "
               f"`readingroom embed --model embedder:{name}` to use it")


@click.group(name="adapters")
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
