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

from aggregator import __version__, clock, pipeline
from aggregator import config as config_mod
from aggregator.config import Config
from aggregator.errors import AggregatorError, ConfigError
from aggregator.model import BuildReport, IngestReport, SendReport, SubscriberStatus
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


# -- the email digest (issue 7) -----------------------------------------------


def _print_send(report: SendReport) -> None:
    if report.empty:
        click.echo("send: nothing new since the last issue; not sent (email.send_empty = false)")
        return
    what = "composed" if report.composed else "resumed"
    if report.dry_run:
        click.echo(f"send: issue {report.issue}: dry run, {report.sent} .eml files written")
        for path in report.written:
            click.echo(f"  {path}")
        return
    click.echo(
        f"send: issue {report.issue} ({what}): {report.sent} sent, {report.already} had it"
        + (f", {report.busy} left to another sender" if report.busy else "")
        + (f", {len(report.failures)} failed" if report.failures else "")
        + (f", {len(report.uncertain)} uncertain" if report.uncertain else "")
    )
    for f in report.failures:
        click.echo(f"FAILED {f}", err=True)
    for email in report.uncertain:
        click.echo(
            f"UNCERTAIN {email}: interrupted while handing the message to the server;"
            f" not resent (aggregator send --issue {report.issue} --resend-uncertain)",
            err=True,
        )


@cli.command()
@click.option("--issue", "issue_key", help="Send (or resume) this issue, like 2026-W47.")
@click.option("--dry-run", is_flag=True, help="Write .eml files instead of sending.")
@click.option(
    "--outbox",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where --dry-run writes (default: <output dir>/outbox).",
)
@click.option(
    "--resend-uncertain",
    is_flag=True,
    help="Also resend deliveries interrupted mid-handover (may duplicate).",
)
@click.pass_obj
@_errors_to_exit
def send(
    obj: Context,
    issue_key: str | None,
    dry_run: bool,
    outbox: Path | None,
    resend_uncertain: bool,
) -> None:
    """Send this week's email issue to every subscriber who has not had it.

    Composes the issue (entries first seen since the last one) on first use
    and stores it; running again resumes without sending anyone a second copy.

    Example: aggregator send --dry-run --outbox /tmp/outbox
    """
    config = obj.config()

    def progress(done: int, total: int, email: str, what: str) -> None:
        if sys.stderr.isatty() or done == total or done % 50 == 0:
            click.echo(f"  [{done}/{total}] {email}: {what}", err=True)

    with _store(config) as store:
        report = pipeline.send(
            config, store, clock.now(), issue_key=issue_key, dry_run=dry_run,
            outbox=outbox, resend_uncertain=resend_uncertain, progress=progress,
        )  # fmt: skip
    _print_send(report)
    if report.failures:
        sys.exit(EXIT_FAILED)


@cli.command()
@click.option("--issue", "issue_key", help="A stored issue, like 2026-W47 (default: the next).")
@click.pass_obj
@_errors_to_exit
def preview(obj: Context, issue_key: str | None) -> None:
    """Write an issue's email HTML and text to the output directory and print their paths.

    Example: aggregator preview --issue 2026-W47
    """
    config = obj.config()
    with _store(config) as store:
        paths = pipeline.preview(config, store, clock.now(), issue_key)
    for path in paths:
        click.echo(str(path))


@cli.group()
def subscribers() -> None:
    """List, add and remove email subscribers.

    Example: aggregator subscribers list
    """


@subscribers.command("list")
@click.pass_obj
@_errors_to_exit
def subscribers_list(obj: Context) -> None:
    """Show every subscriber with their status.

    Example: aggregator subscribers list
    """
    config = obj.config()
    with _store(config) as store:
        pipeline.sync_subscribers(config, store, clock.now())
        subs = store.subscribers()
    for sub in subs:
        origin = "config.toml" if sub.in_config else "database"
        name = f" ({sub.name})" if sub.name else ""
        click.echo(f"{sub.status:12}  {sub.email}{name}  [{origin}] {sub.note}")
    active = sum(1 for s in subs if s.status == SubscriberStatus.ACTIVE)
    click.echo(f"{len(subs)} subscribers, {active} active")


@subscribers.command("add")
@click.argument("email")
@click.option("--name", default="", help="The name shown in the To header.")
@click.pass_obj
@_errors_to_exit
def subscribers_add(obj: Context, email: str, name: str) -> None:
    """Add a subscriber (or make an unsubscribed one active again).

    Example: aggregator subscribers add ada@example.com --name "Ada L."
    """
    config = obj.config()
    with _store(config) as store:
        sub = pipeline.add_subscriber(config, store, email, name, clock.now())
    click.echo(f"{sub.status}: {sub.email}")


@subscribers.command("remove")
@click.argument("email")
@click.pass_obj
@_errors_to_exit
def subscribers_remove(obj: Context, email: str) -> None:
    """Stop sending to a subscriber (kept as unsubscribed, with their history).

    Example: aggregator subscribers remove ada@example.com
    """
    config = obj.config()
    with _store(config) as store:
        sub = pipeline.remove_subscriber(config, store, email, clock.now())
    if sub is None:
        raise click.ClickException(f"no subscriber {email}")
    click.echo(f"{sub.status}: {sub.email}")
    if sub.in_config:
        click.echo("note: the address is still listed in config.toml; remove it there too")


@cli.command()
@click.argument("token_or_email")
@click.pass_obj
@_errors_to_exit
def unsubscribe(obj: Context, token_or_email: str) -> None:
    """Unsubscribe someone by their unsubscribe token or their address.

    Example: aggregator unsubscribe reader@example.com
    """
    config = obj.config()
    with _store(config) as store:
        now = clock.now()
        pipeline.sync_subscribers(config, store, now)
        sub = pipeline.unsubscribe(config, store, token_or_email, now)
        if sub is None and "@" in token_or_email:
            found = store.subscriber_by_email(token_or_email.strip())
            sub = pipeline.unsubscribe(config, store, found.token, now) if found else None
    if sub is None:
        raise click.ClickException(f"no subscriber with token or address {token_or_email!r}")
    click.echo(f"{sub.status}: {sub.email}")


def main() -> None:
    """Console script entry point."""
    cli()
