"""The one place that reads the wall clock.

Everything that decides by time takes `now` as an argument; the shell gets it
from here. Tests replace the clock with `set_now()`.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime


def _system_now() -> datetime:
    return datetime.now(UTC)


_source: Callable[[], datetime] = _system_now


def now() -> datetime:
    """Return the current time, timezone-aware, in UTC."""
    return _source()


def set_now(source: Callable[[], datetime] | None) -> None:
    """Replace the clock (tests); None restores the system clock."""
    global _source
    _source = source if source is not None else _system_now
