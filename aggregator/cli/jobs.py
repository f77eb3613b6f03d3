"""ingest, build, run and status: the digest's own commands."""

from __future__ import annotations

import json
import sys
from datetime import datetime, tzinfo
from pathlib import Path

import click

from aggregator import app
from aggregator.cli.base import EXIT_FAILED, Context, cli, errors_to_exit, locked
from aggregator.config import Config
from aggregator.model import BuildReport, IngestReport, SourceKind, SourceResult
from aggregator.status import Status, run_state


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
@errors_to_exit
def ingest(obj: Context, all_feeds: bool) -> None:
    """Read the content directory and the feeds that are due into the database.

    Each feed has its own schedule (its hints, within [fetch] min and max
    intervals; longer after errors); --all fetches every feed now.

    Example: aggregator ingest --all
    """
    config = obj.config()
    with locked(config), app.open_store(config) as store:
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
@errors_to_exit
def build(obj: Context, email_preview: bool) -> None:
    """Render feed.atom, the web pages and the email preview from the database.

    Example: aggregator build
    """
    config = obj.config()
    with locked(config), app.open_store(config) as store:
        report = app.build(config, store, email_preview=email_preview)
    _print_build(report, config.output.dir)


@cli.command()
@ALL_OPTION
@EMAIL_PREVIEW_OPTION
@click.pass_obj
@errors_to_exit
def run(obj: Context, all_feeds: bool, email_preview: bool) -> None:
    """Ingest, then build: what cron calls.

    Takes the run lock: if another run (or the daemon's job) holds it, exits
    at once with code 75 and a message naming the holder's PID.

    Example: aggregator run
    """
    config = obj.config()
    with locked(config), app.open_store(config) as store:
        report = _ingest(config, store, all_feeds)
        _print_ingest(report)
        built = app.build(config, store, email_preview=email_preview)
    _print_build(built, config.output.dir)
    if report.failures:
        sys.exit(EXIT_FAILED)


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object, for machines.")
@click.pass_obj
@errors_to_exit
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


def _when(when: datetime | None, tz: tzinfo) -> str:
    """A time in the [site] time zone, with its offset (stored times are UTC)."""
    return when.astimezone(tz).isoformat(sep=" ", timespec="seconds") if when else "never"


def _print_status(r: Status) -> None:
    def when(t: datetime | None) -> str:
        return _when(t, r.tz)

    counts = r.source_counts
    click.echo(
        f"Sources: {counts.get('ok', 0)} ok, {counts.get('failing', 0)} failing, "
        f"{counts.get('disabled', 0)} disabled, {counts.get('never checked', 0)} never checked"
    )
    for line in r.sources:
        s = line.status
        click.echo(
            f"  {line.state:8} {s.source.kind!s:7} {s.source.name}  "
            f"({s.entry_count} entries, last checked {when(s.last_checked)})"
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
            click.echo(f"           next fetch {when(s.next_fetch)}")
    click.echo(f"{r.entries_total} entries stored, {r.entries_new_this_week} new this week")
    for name in (app.INGEST, app.BUILD):
        job = r.jobs[name]
        ok, last = job.last_ok, job.last
        text = f"Last {name}: {when(ok.finished) if ok else 'never'}"
        if last and run_state(last) != "ok":
            text += f" (latest {run_state(last)} at {when(last.started)}"
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
        latest = f"{i.last_key} (composed {when(i.last_created)}; {sent})"
    upcoming = when(i.next)
    click.echo(f"Last issue: {latest}; next: {upcoming}")
    subs = ", ".join(
        f"{n} {k}" for k, n in {"configured": r.subscribers_configured, **r.subscribers}.items()
    )
    click.echo(f"Subscribers: {subs}")
    if r.schedule:
        click.echo("Scheduler jobs:")
        for j in r.schedule:
            click.echo(f"  {j.id:13} next run {when(j.next_run)}")
    else:
        click.echo("Scheduler jobs: none (the daemon has not run on this database)")
