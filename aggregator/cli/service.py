"""dupes (and dupes split), serve and daemon."""

from __future__ import annotations

import sys

import click

from aggregator import app
from aggregator.cli.base import Context, cli, errors_to_exit


@cli.group(invoke_without_command=True)
@click.option(
    "--recluster",
    is_flag=True,
    help="Re-judge every entry from scratch first (slow on big stores).",
)
@click.pass_context
@errors_to_exit
def dupes(ctx: click.Context, recluster: bool) -> None:
    """List articles carried by more than one entry: each cluster's canonical
    entry, then every copy with its source and why it was linked (guid, url,
    fingerprint, near: score).

    Undo a wrong merge with `aggregator dupes split ENTRY`.

    Example: aggregator dupes
    """
    if ctx.invoked_subcommand is not None:
        return
    obj: Context = ctx.obj
    config = obj.config()
    with app.open_store(config) as store:
        if recluster:
            linked = app.recluster(config, store)
            click.echo(f"recluster: {linked} entries linked anew")
        clusters = app.dupe_clusters(store)
    if not clusters:
        click.echo("no duplicates: every article is carried by one entry")
        return
    for c in clusters:
        head = c.canonical
        click.echo(f"{head.entry.title}")
        click.echo(f"  {head.id:>7}  canonical    {head.source.name}  {head.entry.link}")
        for copy in c.copies:
            why = app.describe_link(copy.dup_reason, copy.dup_score)
            click.echo(f"  {copy.id:>7}  {why:<11}  {copy.source.name}  {copy.entry.link}")
    click.echo(f"{len(clusters)} clusters, {sum(len(c.copies) for c in clusters)} copies")


@dupes.command()
@click.argument("entry", type=int)
@click.pass_obj
@errors_to_exit
def split(obj: Context, entry: int) -> None:
    """Undo a wrong merge: ENTRY (an id from `aggregator dupes`) leaves its
    cluster and shows on its own; it stays apart in every later run.

    Example: aggregator dupes split 42
    """
    config = obj.config()
    with app.open_store(config) as store:
        parted = app.split_duplicate(config, store, entry)
    click.echo(f"entry {entry} split from {', '.join(map(str, parted))}")


@cli.command()
@click.option("--port", type=int, default=8000, show_default=True, help="Port on 127.0.0.1.")
@click.pass_obj
@errors_to_exit
def serve(obj: Context, port: int) -> None:
    """Preview the output directory on http://127.0.0.1:PORT/ (Ctrl-C stops).

    Serves feeds and pages with the content types and ETag/Last-Modified
    answers the daemon's server gives; nothing is rebuilt.

    Example: aggregator serve --port 8000
    """
    from aggregator import web

    config = obj.config()
    click.echo(f"serving {config.output.dir} on http://127.0.0.1:{port}/ (Ctrl-C stops)")
    web.serve(web.create_app(config.output.dir), "127.0.0.1", port)


@cli.command()
@click.option("--host", default=None, help="Address to bind (default: [daemon] host).")
@click.option("--port", type=int, default=None, help="Port (default: [daemon] port).")
@click.pass_obj
@errors_to_exit
def daemon(obj: Context, host: str | None, port: int | None) -> None:
    """Run as a service: scheduled ingest, build, weekly send, housekeeping, web server.

    SIGTERM or Ctrl-C stops it cleanly; SIGHUP re-reads the config file
    (an invalid one is logged and the old one kept).

    Example: aggregator --log-format json daemon --host 0.0.0.0
    """
    from aggregator import daemon as daemon_mod

    config = obj.config()
    sys.exit(daemon_mod.main(obj.config_path, config, host=host, port=port))
