"""The chat as a web page: `app`."""
from __future__ import annotations

import click

from readingroom.cli.options import db_option, generator_options


@click.command()
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
