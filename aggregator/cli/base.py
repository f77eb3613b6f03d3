"""The `aggregator` command group, its context and the habits every command shares:
config loading (exit 2 on a bad config), the run lock (exit 75 when held),
our own errors as a message and exit 1 (bugs keep their tracebacks)."""

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

from aggregator import __version__, logs
from aggregator import config as config_mod
from aggregator.config import Config
from aggregator.errors import AggregatorError, ConfigError
from aggregator.lock import LockHeld
from aggregator.lock import hold as hold_lock

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
def locked(config: Config, wait: float = 0.0) -> Iterator[None]:
    """Hold the run lock (cron mode), waiting up to `wait` seconds for it:
    a second run that cannot have it exits with EXIT_LOCKED."""
    try:
        with hold_lock(config.daemon.lock_file, wait):
            yield
    except LockHeld as e:
        click.echo(f"error: {e}", err=True)
        sys.exit(EXIT_LOCKED)


def errors_to_exit(f: F) -> F:
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
