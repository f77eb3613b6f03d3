"""The command line: a few lines per command, calling pipeline and store."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import wraps
from pathlib import Path
from typing import Any, TypeVar

import click

from aggregator import __version__, clock, jobs, logs
from aggregator import config as config_mod
from aggregator.config import Config
from aggregator.errors import AggregatorError, ConfigError
from aggregator.lock import LockHeld
from aggregator.lock import hold as hold_lock
from aggregator.model import BuildReport, IngestReport
from aggregator.store import Store

#: exit codes: 1 some source or output failed; 2 bad usage or config
EXIT_FAILED = 1
EXIT_CONFIG = 2
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
def _locked(config: Config) -> Iterator[None]:
    """Hold the run lock (cron mode): a second run exits with EXIT_LOCKED."""
    try:
        with hold_lock(config.daemon.lock_file):
            yield
    except LockHeld as e:
        click.echo(f"error: {e}", err=True)
        sys.exit(EXIT_LOCKED)


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
    with _locked(config), _store(config) as store:
        report = jobs.ingest(config, store)
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
    with _locked(config), _store(config) as store:
        report = jobs.build(config, store)
    _print_build(report, config.output.dir)


@cli.command()
@click.pass_obj
@_errors_to_exit
def run(obj: Context) -> None:
    """Ingest, then build: what cron calls.

    Takes the run lock: if another run (or the daemon's job) holds it, exits
    at once with code 75 and a message naming the holder's PID.

    Example: aggregator run
    """
    config = obj.config()
    with _locked(config), _store(config) as store:
        report = jobs.ingest(config, store)
        _print_ingest(report)
        built = jobs.build(config, store)
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
    with _store(config) as store:
        report = jobs.status_report(config, store, clock.now())
    if as_json:
        click.echo(json.dumps(report, ensure_ascii=False, indent=2))
    else:
        _print_status(report)
    if report["source_counts"].get("failing"):
        sys.exit(EXIT_FAILED)


def _when(iso: str | None) -> str:
    return iso.replace("T", " ") if iso else "never"


def _print_status(r: dict[str, Any]) -> None:
    counts = r["source_counts"]
    click.echo(
        f"Sources: {counts.get('ok', 0)} ok, {counts.get('failing', 0)} failing, "
        f"{counts.get('disabled', 0)} disabled, {counts.get('never checked', 0)} never checked"
    )
    for s in r["sources"]:
        click.echo(
            f"  {s['state']:8} {s['kind']:7} {s['name']}  "
            f"({s['entries']} entries, last checked {_when(s['last_checked'])})"
        )
        click.echo(f"           {s['key']}")
        if s["last_error"]:
            click.echo(f"           last error: {s['last_error']}")
    e = r["entries"]
    click.echo(f"{e['total']} entries stored, {e['new_this_week']} new this week")
    for name in (jobs.INGEST, jobs.BUILD):
        j = r["jobs"][name]
        ok = j["last_ok"]
        line = f"Last {name}: {_when(ok['finished']) if ok else 'never'}"
        last = j["last"]
        if last and last["state"] != "ok":
            line += f" (latest {last['state']} at {_when(last['started'])}"
            line += f": {last['error']})" if last["error"] else ")"
        elif ok and ok["detail"]:
            line += f" ({ok['detail']})"
        click.echo(line)
    click.echo(f"Last issue: {_when(r['issues']['last'])}; next: {_when(r['issues']['next'])}")
    subs = ", ".join(f"{n} {k}" for k, n in r["subscribers"].items())
    click.echo(f"Subscribers: {subs}")
    if r["schedule"]:
        click.echo("Scheduler jobs:")
        for j in r["schedule"]:
            click.echo(f"  {j['job']:13} next run {_when(j['next_run'])}")
    else:
        click.echo("Scheduler jobs: none (the daemon has not run on this database)")


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
