"""Shared fixtures: a temporary copy of the bundled example, a fixed clock, an SMTP server."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from aggregator import clock
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
def example(tmp_path: Path) -> Path:
    """A temporary copy of the bundled example; returns its config.toml path."""
    for name in ("content", "examples"):
        shutil.copytree(ROOT / name, tmp_path / name)
    shutil.copy(ROOT / "config.toml", tmp_path / "config.toml")
    return tmp_path / "config.toml"


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    """A real SMTP server (aiosmtpd) on 127.0.0.1 that keeps every message it accepts."""
    yield from serve()
