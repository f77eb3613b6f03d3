"""Shared fixtures: a temporary copy of the bundled example, a fixed clock, an SMTP server."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from aggregator import clock
from tests.databases import Databases
from tests.smtp_server import SmtpServer, serve

ROOT = Path(__file__).resolve().parent.parent
#: the example's posts are dated up to late November 2026
NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


@pytest.fixture
def fixed_now() -> Iterator[datetime]:
    """Freeze aggregator's clock at NOW for the test."""
    clock.set_now(lambda: NOW)
    yield NOW
    clock.set_now(None)


@pytest.fixture
def example(tmp_path: Path, databases: Databases) -> Path:
    """A temporary copy of the bundled example; returns its config.toml path.

    Its database is the example's SQLite file, or a fresh PostgreSQL database
    when $AGGREGATOR_TEST_DATABASE_URL names a server."""
    for name in ("content", "examples"):
        shutil.copytree(ROOT / name, tmp_path / name)
    config = tmp_path / "config.toml"
    shutil.copy(ROOT / "config.toml", config)
    if databases.server is not None:
        text = config.read_text(encoding="utf-8")
        line = 'url = "sqlite:///data/aggregator.db"'
        assert line in text, "config.toml's [database] url changed: update this fixture"
        config.write_text(text.replace(line, f'url = "{databases.new()}"', 1), encoding="utf-8")
    return config


@pytest.fixture
def databases(tmp_path: Path) -> Iterator[Databases]:
    """Empty databases for the test: SQLite files, or PostgreSQL databases when
    $AGGREGATOR_TEST_DATABASE_URL names a server (see tests/databases.py)."""
    made = Databases(tmp_path)
    yield made
    made.drop_all()


@pytest.fixture
def database_url(databases: Databases) -> str:
    """The URL of one empty database for the test."""
    return databases.new()


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    """A real SMTP server (aiosmtpd) on 127.0.0.1 that keeps every message it accepts."""
    yield from serve()
