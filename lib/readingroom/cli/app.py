"""The chat as a web page: `app`."""
from __future__ import annotations

import click

from readingroom.cli.options import db_option, generator_options


@click.command()
@click.option("--port", default=8866, show_default=True, help="Port to serve the chat on.")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on; 0.0.0.0 lets the room's network in (with the room's code).")
@click.option("--room", default=None, help='The room\'s name, e.g. "Manifesto, week 3" (on the pages and the handout).')
@click.option("--code", default=None, help="The room's code (default: a new random one).")
@click.option("--max-readers", default=40, show_default=True, type=click.IntRange(1, 500),
              help="Readers at once; one more is asked to wait.")
@click.option("--questions-per-minute", default=4, show_default=True, type=click.IntRange(1, 60),
              help="Questions each reader may ask a minute.")
@click.option("--allow-host", "allow_hosts", multiple=True,
              help="Another name the room is reached by (the Host header), e.g. a DNS name.")
@click.option("--server", default="solara", show_default=True, type=click.Choice(["solara", "voila"]),
              help="What serves the page: solara (every reader in one process, over one shared search "
                   "index: about 1 MB per extra reader) or voila (a kernel per reader: some 600 MB each).")
@generator_options
@db_option
def app(port, host, room, code, max_readers, questions_per_minute, allow_hosts, server, model, backend, db):
    """Serve the chat as a web page for a workshop room: prints a join link
    with the room's code (and a QR code picture of it) and a facilitator's
    link; each reader gets their own conversation; the model is loaded once
    for everyone."""
    from readingroom.ui.app import AppError, run_app

    try:
        run_app(db, host=host, port=port, model=model, backend=backend, room=room, code=code,
                max_readers=max_readers, questions_per_minute=questions_per_minute, allow_hosts=allow_hosts,
                server=server, echo=click.echo)
    except AppError as e:
        raise click.ClickException(str(e)) from e
