"""The command line: a few lines per command, each calling the front door (app.py)."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from functools import wraps
from pathlib import Path
from typing import Any, TypeVar

import click

from aggregator import __version__, app, logs
from aggregator import config as config_mod
from aggregator.config import Config
from aggregator.errors import AggregatorError, ConfigError
from aggregator.lock import LockHeld
from aggregator.lock import hold as hold_lock
from aggregator.model import (
    BuildReport,
    IngestReport,
    SendReport,
    SourceKind,
    SourceResult,
    SubscriberStatus,
)
from aggregator.status import Status, run_state

#: exit codes: 1 some source or output failed; 2 bad usage or config
EXIT_FAILED = 1
EXIT_CONFIG = 2
#: seconds a `send` waits for a running `run` to release the lock
SEND_LOCK_WAIT = 600.0
#: another run holds the lock (sysexits' EX_TEMPFAIL: try again later)
EXIT_LOCKED = 75

F = TypeVar("F", bound=Callable[..., Any])


@dataclass
class Context:
    config_path: Path

    def config(self) -> Config:
        try:
            config = config_mod.load(self.config_path)
        except ConfigError as e:
            click.echo(f"error: {e}", err=True)
            sys.exit(EXIT_CONFIG)
        logs.add_secret(config.email.smtp_password())
        return config


@contextmanager
def _locked(config: Config, wait: float = 0.0) -> Iterator[None]:
    """Hold the run lock (cron mode), waiting up to `wait` seconds for it:
    a second run that cannot have it exits with EXIT_LOCKED."""
    try:
        with hold_lock(config.daemon.lock_file, wait):
            yield
    except LockHeld as e:
        click.echo(f"error: {e}", err=True)
        sys.exit(EXIT_LOCKED)


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
@click.option(
    "--log-format",
    type=click.Choice(logs.FORMATS),
    default="human",
    show_default=True,
    help="Log lines for people, or JSON lines for a log collector.",
)
@click.version_option(__version__, prog_name="aggregator")
@click.pass_context
def cli(ctx: click.Context, config_path: Path | None, verbose: bool, log_format: str) -> None:
    """aggregator: your posts and the feeds you follow, as one digest.

    Reads the content directory and external feeds into a database, and
    builds Atom feeds, web pages and an email from them.

    Example: aggregator --config config.toml run
    """
    logs.setup(log_format, logging.INFO if verbose else logging.WARNING)
    ctx.obj = Context(config_path or config_mod.default_config_path())


def _print_ingest(report: IngestReport) -> None:
    feed_results = []
    for r in report.results:
        if r.source.kind == SourceKind.FEED:
            feed_results.append(r)
            continue
        click.echo(
            f"{r.source.kind:7} {r.source.name}: {r.items} read, {r.new} new, "
            f"{r.changed} changed" + (f", {len(r.failures)} failed" if r.failures else "")
        )
    if feed_results:
        # One summary line for every feed (thousands of feeds: cron mails what we print);
        # each failed feed gets its FAILED line below.
        click.echo(_feeds_summary(feed_results))
    if report.linked:
        copies = "copy" if report.linked == 1 else "copies"
        click.echo(f"dedupe: {report.linked} {copies} linked to their canonical entry")
    for w in report.warnings:
        click.echo(f"WARNING {w}", err=True)
    for f in report.failures:
        click.echo(f"FAILED {f}", err=True)


def _feeds_summary(results: list[SourceResult]) -> str:
    counts: dict[str, int] = {}
    for r in results:
        key = "failed" if r.failures and not r.items else (r.fetch or "fetched")
        counts[key] = counts.get(key, 0) + 1
    order = ["fetched", "not modified", "unchanged", "not due", "disabled", "failed"]
    parts = [f"{counts[k]} {k}" for k in order if counts.get(k)]
    new = sum(r.new for r in results)
    changed = sum(r.changed for r in results)
    return f"feeds   {len(results)}: {', '.join(parts)}; {new} new, {changed} changed entries"


def _ingest(config: Config, store: app.Store, all_feeds: bool) -> IngestReport:
    """app.ingest, with a progress bar when a person watches (stdout is a terminal)."""
    if not sys.stdout.isatty():
        return app.ingest(config, store, all_feeds=all_feeds)
    from rich.progress import Progress

    with Progress(transient=True) as bar:
        task = bar.add_task("fetching feeds", total=None)

        def progress(done: int, total: int, result: SourceResult | None) -> None:
            bar.update(task, completed=done, total=total)
            if result is not None and result.failures and not result.items:
                bar.console.print(f"FAILED {result.failures[0]}", markup=False, highlight=False)

        return app.ingest(config, store, all_feeds=all_feeds, progress=progress)


ALL_OPTION = click.option(
    "--all", "all_feeds", is_flag=True, help="Fetch every feed now, not only those due."
)


def _print_build(report: BuildReport, output: Path) -> None:
    removed = f", {len(report.removed)} stale removed" if report.removed else ""
    click.echo(f"build: {len(report.written)} files written to {output}{removed}")
    if report.email_preview:
        click.echo(
            f"email preview: issue {report.email_preview} (not stored, not sent) in "
            f"{output / 'email.html'} and email.txt"
        )
    for f in report.failures:
        click.echo(f"WARNING {f}", err=True)


@cli.command()
@ALL_OPTION
@click.pass_obj
@_errors_to_exit
def ingest(obj: Context, all_feeds: bool) -> None:
    """Read the content directory and the feeds that are due into the database.

    Each feed has its own schedule (its hints, within [fetch] min and max
    intervals; longer after errors); --all fetches every feed now.

    Example: aggregator ingest --all
    """
    config = obj.config()
    with _locked(config), app.open_store(config) as store:
        report = _ingest(config, store, all_feeds)
    _print_ingest(report)
    if report.failures:
        sys.exit(EXIT_FAILED)


EMAIL_PREVIEW_OPTION = click.option(
    "--email-preview/--no-email-preview",
    default=True,
    show_default=True,
    help="Also compose the next email issue (not stored, not sent) as email.html and email.txt.",
)


@cli.command()
@EMAIL_PREVIEW_OPTION
@click.pass_obj
@_errors_to_exit
def build(obj: Context, email_preview: bool) -> None:
    """Render feed.atom, the web pages and the email preview from the database.

    Example: aggregator build
    """
    config = obj.config()
    with _locked(config), app.open_store(config) as store:
        report = app.build(config, store, email_preview=email_preview)
    _print_build(report, config.output.dir)


@cli.command()
@ALL_OPTION
@EMAIL_PREVIEW_OPTION
@click.pass_obj
@_errors_to_exit
def run(obj: Context, all_feeds: bool, email_preview: bool) -> None:
    """Ingest, then build: what cron calls.

    Takes the run lock: if another run (or the daemon's job) holds it, exits
    at once with code 75 and a message naming the holder's PID.

    Example: aggregator run
    """
    config = obj.config()
    with _locked(config), app.open_store(config) as store:
        report = _ingest(config, store, all_feeds)
        _print_ingest(report)
        built = app.build(config, store, email_preview=email_preview)
    _print_build(built, config.output.dir)
    if report.failures:
        sys.exit(EXIT_FAILED)


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object, for machines.")
@click.pass_obj
@_errors_to_exit
def status(obj: Context, as_json: bool) -> None:
    """Show sources, entries, last runs, the next issue and the schedule at a glance.

    Exits 1 when a source is failing.

    Example: aggregator status --json
    """
    config = obj.config()
    with app.open_store(config) as store:
        report = app.status(config, store)
    if as_json:
        click.echo(json.dumps(report.to_json(), ensure_ascii=False, indent=2))
    else:
        _print_status(report)
    if report.source_counts.get("failing"):
        sys.exit(EXIT_FAILED)


def _when(when: datetime | None) -> str:
    return when.isoformat(sep=" ", timespec="seconds") if when else "never"


def _print_status(r: Status) -> None:
    counts = r.source_counts
    click.echo(
        f"Sources: {counts.get('ok', 0)} ok, {counts.get('failing', 0)} failing, "
        f"{counts.get('disabled', 0)} disabled, {counts.get('never checked', 0)} never checked"
    )
    for line in r.sources:
        s = line.status
        click.echo(
            f"  {line.state:8} {s.source.kind!s:7} {s.source.name}  "
            f"({s.entry_count} entries, last checked {_when(s.last_checked)})"
        )
        click.echo(f"           {line.location}")
        if s.moved_to:
            click.echo(f"           moved permanently to {s.moved_to} (fetched from there)")
        if s.disabled_reason:
            click.echo(f"           disabled: {s.disabled_reason}")
        elif s.last_error:
            click.echo(f"           last error: {s.last_error}")
            if s.consecutive_errors > 1:
                click.echo(f"           {s.consecutive_errors} failures in a row")
        if s.next_fetch and not s.disabled_reason:
            click.echo(f"           next fetch {_when(s.next_fetch)}")
    click.echo(f"{r.entries_total} entries stored, {r.entries_new_this_week} new this week")
    for name in (app.INGEST, app.BUILD):
        job = r.jobs[name]
        ok, last = job.last_ok, job.last
        text = f"Last {name}: {_when(ok.finished) if ok else 'never'}"
        if last and run_state(last) != "ok":
            text += f" (latest {run_state(last)} at {_when(last.started)}"
            text += f": {last.error})" if last.error else ")"
        elif ok and ok.detail:
            text += f" ({ok.detail})"
        click.echo(text)
    i = r.issues
    latest = "none yet"
    if i.last_key:
        counts = i.deliveries
        others = [f"{n} {k}" for k, n in counts.items() if k != "sent"]
        sent = ", ".join([f"{counts.get('sent', 0)} sent", *others])
        latest = f"{i.last_key} (composed {_when(i.last_created)}; {sent})"
    upcoming = f"invalid schedule: {i.next_error}" if i.next_error else _when(i.next)
    click.echo(f"Last issue: {latest}; next: {upcoming}")
    subs = ", ".join(
        f"{n} {k}" for k, n in {"configured": r.subscribers_configured, **r.subscribers}.items()
    )
    click.echo(f"Subscribers: {subs}")
    if r.schedule:
        click.echo("Scheduler jobs:")
        for j in r.schedule:
            click.echo(f"  {j.id:13} next run {_when(j.next_run)}")
    else:
        click.echo("Scheduler jobs: none (the daemon has not run on this database)")


# -- feeds: the list lives in config.toml; these commands edit it in place -----


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
@_errors_to_exit
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
@_errors_to_exit
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
    for s in statuses:
        state = (
            "disabled"
            if s.disabled_reason
            else ("moved" if s.moved_to and s.last_status == "ok" else s.last_status)
        )
        table.add_row(
            f"{s.source.name}\n{s.moved_to or s.source.key}",
            state,
            f"{s.last_checked:%Y-%m-%d %H:%M}" if s.last_checked else "never",
            f"{s.next_fetch:%Y-%m-%d %H:%M}" if s.next_fetch and not s.disabled_reason else "",
            str(s.entry_count),
            s.disabled_reason or s.last_error or "",
        )
    Console(width=None if sys.stdout.isatty() else 160).print(table)
    click.echo(f"{len(statuses)} feeds")


@feeds.command("remove")
@click.argument("url")
@click.pass_obj
@_errors_to_exit
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
@_errors_to_exit
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
@_errors_to_exit
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


# -- the newsletter ------------------------------------------------------------


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

    # A cron `send` that meets a slow `run` waits for it rather than skipping
    # the week; the deliveries table is what keeps two senders from doubling up.
    with _locked(config, wait=SEND_LOCK_WAIT), app.open_store(config) as store:
        report = app.send(
            config, store, issue_key=issue_key, dry_run=dry_run, outbox=outbox,
            resend_uncertain=resend_uncertain, progress=progress,
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
    with app.open_store(config) as store:
        paths = app.preview(config, store, issue_key)
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
    with app.open_store(config) as store:
        subs = app.subscribers(config, store)
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
    with app.open_store(config) as store:
        sub = app.add_subscriber(config, store, email, name)
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
    with app.open_store(config) as store:
        sub = app.remove_subscriber(config, store, email)
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
    with app.open_store(config) as store:
        sub = app.unsubscribe(config, store, token_or_email)
    if sub is None:
        raise click.ClickException(f"no subscriber with token or address {token_or_email!r}")
    click.echo(f"{sub.status}: {sub.email}")


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
@_errors_to_exit
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
@_errors_to_exit
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
@_errors_to_exit
def daemon(obj: Context, host: str | None, port: int | None) -> None:
    """Run as a service: scheduled ingest, build, weekly send, housekeeping, web server.

    SIGTERM or Ctrl-C stops it cleanly; SIGHUP re-reads the config file
    (an invalid one is logged and the old one kept).

    Example: aggregator --log-format json daemon --host 0.0.0.0
    """
    from aggregator import daemon as daemon_mod

    config = obj.config()
    sys.exit(daemon_mod.main(obj.config_path, config, host=host, port=port))


def main() -> None:
    """Console script entry point."""
    cli()
