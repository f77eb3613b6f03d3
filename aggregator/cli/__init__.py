"""The command line: a few lines per command, each calling the front door (app.py).

base: the group, its context, exit codes, the run lock; jobs: ingest, build,
run, status; feeds: the feeds followed; newsletter: send, preview,
subscribers, unsubscribe; service: dupes, serve, daemon.
"""

from __future__ import annotations

# Importing the command modules registers their commands on the group.
from aggregator.cli import feeds, jobs, newsletter, service
from aggregator.cli.base import EXIT_CONFIG, EXIT_FAILED, EXIT_LOCKED, cli

__all__ = [
    "EXIT_CONFIG",
    "EXIT_FAILED",
    "EXIT_LOCKED",
    "cli",
    "feeds",
    "jobs",
    "main",
    "newsletter",
    "service",
]


def main() -> None:
    """Console script entry point."""
    cli()
