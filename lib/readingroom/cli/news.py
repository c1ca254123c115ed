"""News feeds matched to the reader's interests: `news add-feed|feeds|samples|
update|digest|alerts`."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from readingroom.cli.options import db_option, generator_options, open_library_or_fail
from readingroom.corpus import corpora


@click.group(name="news")
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

    with open_library_or_fail(db) as lib:
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

    with open_library_or_fail(db) as lib:
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

    with open_library_or_fail(db) as lib:
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


def _over_window(db, run, profile, since, until, days, **settings):
    """`run` (build_digest or check_alerts) over the open library for the
    window --since/--until/--days, a window it cannot read as a clear error."""
    with open_library_or_fail(db) as lib:
        try:
            return run(lib, profile, since, until, days=days, **settings)
        except ValueError as e:
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
    digest = _over_window(db, build_digest, profile, since, until, days, generator=generator,
                          model_stories=model_stories, progress=not quiet)
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
    if list_only:
        with open_library_or_fail(db) as lib:
            table = alerts_table(lib, profile.name if profile else None)
        click.echo("no alerts recorded yet" if table.empty else table.drop(columns=["item_id"]).to_string(
            index=False, max_colwidth=50))
        return
    command = shlex.split(command_line) if command_line else None
    report = _over_window(db, check_alerts, profile, since, until, days, command=command,
                          alert_input="env" if use_env else None, deliver=not dry_run)
    click.echo(report.summary())
    if report.failed:
        sys.exit(1)
