"""`aggregator feeds`: the list lives in config.toml; these commands edit it in place."""

from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path

import click

from aggregator import app
from aggregator.cli.base import EXIT_FAILED, Context, cli, errors_to_exit


@cli.group()
def feeds() -> None:
    """Manage the feeds you follow: add, list, remove, import and export (OPML).

    The list of feeds is config.toml's [[feeds]] tables: these commands edit
    that file in place, keeping its comments. The database keeps each feed's
    entries and fetch state.

    Example: aggregator feeds add https://example.org/ --tag friends
    """


@feeds.command("add")
@click.argument("url")
@click.option("--name", default="", help="The name readers see (default: the feed's title).")
@click.option("--tag", "tags", multiple=True, help="A tag added to every entry (repeatable).")
@click.option("--no-check", is_flag=True, help="Add the URL as given, without fetching it.")
@click.pass_obj
@errors_to_exit
def feeds_add(obj: Context, url: str, name: str, tags: tuple[str, ...], no_check: bool) -> None:
    """Follow a feed. Given a web page, add the feed it links (autodiscovery).

    Example: aggregator feeds add https://example.org/blog/ --name "A blog" --tag friends
    """
    followed = app.follow_feed(obj.config(), url, name=name, tags=tags, check=not no_check)
    if followed.page:
        click.echo(f"{followed.page} is a web page; it links the feed {followed.url}")
    if not followed.added:
        click.echo(f"already followed: {followed.url}")
        return
    named = f" ({followed.name})" if followed.name else ""
    click.echo(f"added {followed.url}{named} to {obj.config_path}")


@feeds.command("list")
@click.pass_obj
@errors_to_exit
def feeds_list(obj: Context) -> None:
    """Show every feed: status, last fetch, next fetch, last error, entry count.

    Example: aggregator feeds list
    """
    from rich.console import Console
    from rich.table import Table

    config = obj.config()
    with app.open_store(config) as store:
        statuses = app.feed_statuses(config, store)
    table = Table("feed", "status", "last fetch", "next fetch", "entries", "last error")
    tz = config.site.tz  # times in the [site] time zone, with the offset

    def when(t: datetime) -> str:
        return t.astimezone(tz).isoformat(sep=" ", timespec="minutes")

    for s in statuses:
        state = (
            "disabled"
            if s.disabled_reason
            else ("moved" if s.moved_to and s.last_status == "ok" else s.last_status)
        )
        table.add_row(
            f"{s.source.name}\n{s.moved_to or s.source.key}",
            state,
            when(s.last_checked) if s.last_checked else "never",
            when(s.next_fetch) if s.next_fetch and not s.disabled_reason else "",
            str(s.entry_count),
            s.disabled_reason or s.last_error or "",
        )
    Console(width=None if sys.stdout.isatty() else 160).print(table)
    click.echo(f"{len(statuses)} feeds")


@feeds.command("remove")
@click.argument("url")
@click.pass_obj
@errors_to_exit
def feeds_remove(obj: Context, url: str) -> None:
    """Stop following a feed. Its entries stay in the database but no longer appear.

    Example: aggregator feeds remove https://example.org/feed.xml
    """
    removed = app.unfollow_feed(obj.config(), url)
    if removed is None:
        click.echo(f"error: no feed {url} in {obj.config_path}", err=True)
        sys.exit(EXIT_FAILED)
    click.echo(f"removed {removed.url} from {obj.config_path} (its entries are kept, hidden)")


@feeds.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.pass_obj
@errors_to_exit
def feeds_import(obj: Context, file: Path) -> None:
    """Follow every feed of an OPML file (what feed readers export).

    Example: aggregator feeds import subscriptions.opml
    """
    listed, added = app.import_feeds(obj.config(), file)
    click.echo(
        f"imported {len(added)} feeds from {file} into {obj.config_path}"
        f" ({len(listed) - len(added)} already followed)"
    )


@feeds.command("export")
@click.option(
    "-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="File to write."
)
@click.pass_obj
@errors_to_exit
def feeds_export(obj: Context, output: Path | None) -> None:
    """Write the feeds you follow as OPML 2.0 (to stdout, or to a file with -o).

    Example: aggregator feeds export -o subscriptions.opml
    """
    data = app.export_feeds(obj.config())
    if output is None:
        click.echo(data.decode("utf-8"), nl=False)
    else:
        output.write_bytes(data)
        click.echo(f"wrote {output}")
