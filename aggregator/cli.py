"""The command line: a few lines per command, calling pipeline and store."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import wraps
from pathlib import Path
from typing import Any, TypeVar

import click

from aggregator import __version__, clock, dedupe, pipeline
from aggregator import config as config_mod
from aggregator.config import Config
from aggregator.errors import AggregatorError, ConfigError
from aggregator.model import BuildReport, IngestReport
from aggregator.store import Store

#: exit codes: 1 some source or output failed; 2 bad usage or config
EXIT_FAILED = 1
EXIT_CONFIG = 2

F = TypeVar("F", bound=Callable[..., Any])


@dataclass
class Context:
    config_path: Path

    def config(self) -> Config:
        try:
            return config_mod.load(self.config_path)
        except ConfigError as e:
            click.echo(f"error: {e}", err=True)
            sys.exit(EXIT_CONFIG)


@contextmanager
def _store(config: Config) -> Iterator[Store]:
    store = Store.open(config.database.url)
    try:
        yield store
    finally:
        store.close()


def _errors_to_exit(f: F) -> F:
    """Turn our own errors into a message and an exit code; bugs keep tracebacks."""

    @wraps(f)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return f(*args, **kwargs)
        except AggregatorError as e:
            click.echo(f"error: {e}", err=True)
            sys.exit(EXIT_FAILED)

    return wrapper  # type: ignore[return-value]


@click.group()
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Config file (default: $AGGREGATOR_CONFIG, then ./config.toml).",
)
@click.option("-v", "--verbose", is_flag=True, help="Log more detail.")
@click.version_option(__version__, prog_name="aggregator")
@click.pass_context
def cli(ctx: click.Context, config_path: Path | None, verbose: bool) -> None:
    """aggregator: your posts and the feeds you follow, as one digest.

    Reads the content directory and external feeds into a database, and
    builds Atom feeds, web pages and an email from them.

    Example: aggregator --config config.toml run
    """
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    ctx.obj = Context(config_path or config_mod.default_config_path())


def _print_ingest(report: IngestReport) -> None:
    for r in report.results:
        click.echo(
            f"{r.source.kind:7} {r.source.name}: {r.items} read, {r.new} new, "
            f"{r.changed} changed" + (f", {len(r.failures)} failed" if r.failures else "")
        )
    if report.linked:
        click.echo(f"dedupe: {report.linked} copies linked to their canonical entry")
    for f in report.failures:
        click.echo(f"FAILED {f}", err=True)


def _print_build(report: BuildReport, output: Path) -> None:
    click.echo(f"build: {len(report.written)} files written to {output}")


@cli.command()
@click.pass_obj
@_errors_to_exit
def ingest(obj: Context) -> None:
    """Read the content directory and every feed into the database.

    Example: aggregator ingest
    """
    config = obj.config()
    with _store(config) as store:
        report = pipeline.ingest(config, store, clock.now())
    _print_ingest(report)
    if report.failures:
        sys.exit(EXIT_FAILED)


@cli.command()
@click.pass_obj
@_errors_to_exit
def build(obj: Context) -> None:
    """Render feed.atom, the web pages and the email preview from the database.

    Example: aggregator build
    """
    config = obj.config()
    with _store(config) as store:
        report = pipeline.build(config, store, clock.now())
    _print_build(report, config.output.dir)


@cli.command()
@click.pass_obj
@_errors_to_exit
def run(obj: Context) -> None:
    """Ingest, then build: what cron calls.

    Example: aggregator run
    """
    config = obj.config()
    with _store(config) as store:
        report = pipeline.ingest(config, store, clock.now())
        _print_ingest(report)
        built = pipeline.build(config, store, clock.now())
    _print_build(built, config.output.dir)
    if report.failures:
        sys.exit(EXIT_FAILED)


@cli.command()
@click.pass_obj
@_errors_to_exit
def status(obj: Context) -> None:
    """Show each source with its last scan or fetch and its entry count.

    Example: aggregator status
    """
    config = obj.config()
    with _store(config) as store:
        statuses = store.source_statuses(config.sources)
        total = store.entry_count()
    failing = False
    for s in statuses:
        when = s.last_checked.strftime("%Y-%m-%d %H:%M UTC") if s.last_checked else "never"
        click.echo(
            f"{s.last_status:5}  {s.source.kind:7}  {s.source.name}  "
            f"({s.entry_count} entries, last checked {when})"
        )
        click.echo(f"       {s.source.key}")
        if s.last_error:
            failing = True
            click.echo(f"       last error: {s.last_error}")
    click.echo(f"{total} entries stored")
    if failing:
        sys.exit(EXIT_FAILED)


@cli.group(invoke_without_command=True)
@click.option(
    "--recluster",
    is_flag=True,
    help="Re-judge every entry from scratch first (slow on big stores).",
)
@click.pass_context
@_errors_to_exit
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
    with _store(config) as store:
        if recluster:
            linked = pipeline.dedupe_all(config, store)
            click.echo(f"recluster: {linked} entries linked anew")
        clusters = store.dupe_clusters()
    if not clusters:
        click.echo("no duplicates: every article is carried by one entry")
        return
    for c in clusters:
        head = c.canonical
        click.echo(f"{head.entry.title}")
        click.echo(f"  {head.id:>7}  canonical    {head.source.name}  {head.entry.link}")
        for copy in c.copies:
            why = dedupe.describe(copy.dup_reason, copy.dup_score)
            click.echo(f"  {copy.id:>7}  {why:<11}  {copy.source.name}  {copy.entry.link}")
    click.echo(f"{len(clusters)} clusters, {sum(len(c.copies) for c in clusters)} copies")


@dupes.command()
@click.argument("entry", type=int)
@click.pass_obj
@_errors_to_exit
def split(obj: Context, entry: int) -> None:
    """Undo a wrong merge: ENTRY (an id from `aggregator dupes`) leaves its
    cluster and shows on its own; it stays apart in every later run.

    Example: aggregator dupes split 42
    """
    config = obj.config()
    with _store(config) as store:
        parted = pipeline.split_duplicate(config, store, entry, clock.now())
    click.echo(f"entry {entry} split from {', '.join(map(str, parted))}")


def main() -> None:
    """Console script entry point."""
    cli()
