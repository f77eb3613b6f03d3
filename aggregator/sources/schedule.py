"""When to fetch a feed next. Pure: no IO, `now` is always an argument.

A feed that answered is fetched again after the interval its own hints ask
for (RSS <ttl>, sy:updatePeriod/sy:updateFrequency, Cache-Control max-age),
held between the configured minimum and maximum. A feed that failed backs
off exponentially from the minimum interval up to a cap; a Retry-After
header (429, 503) is honoured when it asks for longer, up to the same cap.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime

#: a feed due within this much of `now` is fetched now, so a cron job every
#: 30 minutes is not one second too early for a 30-minute interval
GRACE = timedelta(minutes=2)

_PERIODS = {
    "hourly": timedelta(hours=1),
    "daily": timedelta(days=1),
    "weekly": timedelta(weeks=1),
    "monthly": timedelta(days=30),
    "yearly": timedelta(days=365),
}
_MAX_AGE = re.compile(r"(?:^|[,\s])max-age\s*=\s*\"?(\d+)", re.IGNORECASE)


@dataclass(frozen=True)
class ScheduleSettings:
    """The configured bounds of a feed's schedule."""

    min_interval: timedelta
    max_interval: timedelta
    #: the longest an erroring feed waits between tries
    backoff_cap: timedelta


def is_due(next_fetch: datetime | None, now: datetime) -> bool:
    """A feed never fetched, or whose next fetch time has (nearly) come."""
    return next_fetch is None or next_fetch <= now + GRACE


def feed_interval(
    ttl: str | None = None,
    update_period: str | None = None,
    update_frequency: str | None = None,
    cache_control: str | None = None,
) -> timedelta | None:
    """The refresh interval a feed asks for, or None if it gives no hint.

    Several hints: the longest wins, since each says "not more often than".
    """
    hints: list[timedelta] = []
    if ttl and ttl.strip().isdigit() and int(ttl) > 0:
        hints.append(timedelta(minutes=int(ttl)))
    if update_period or update_frequency:
        period = _PERIODS.get((update_period or "daily").strip().lower())
        freq = (update_frequency or "1").strip()
        if period is not None and freq.isdigit() and int(freq) > 0:
            hints.append(period / int(freq))
    if cache_control:
        if "no-cache" in cache_control.lower() or "no-store" in cache_control.lower():
            pass  # says nothing about how often to poll
        elif m := _MAX_AGE.search(cache_control):
            hints.append(timedelta(seconds=int(m.group(1))))
    return max(hints) if hints else None


def next_after_success(now: datetime, hint: timedelta | None, s: ScheduleSettings) -> datetime:
    """The next fetch of a feed that answered (200 or 304)."""
    interval = hint if hint is not None else s.min_interval
    return now + min(max(interval, s.min_interval), s.max_interval)


def backoff(errors: int, s: ScheduleSettings) -> timedelta:
    """The wait after `errors` consecutive failures: min_interval * 2^(errors-1), capped."""
    if errors <= 0:
        return s.min_interval
    # Cap the exponent too: 2**1000 minutes overflows timedelta.
    return min(s.min_interval * (1 << min(errors - 1, 30)), s.backoff_cap)


def next_after_error(
    now: datetime, errors: int, retry_after: timedelta | None, s: ScheduleSettings
) -> datetime:
    """The next fetch of a feed that failed `errors` times in a row."""
    wait = backoff(errors, s)
    if retry_after is not None:
        wait = max(wait, min(retry_after, s.backoff_cap))
    return now + wait


def parse_retry_after(value: str | None, now: datetime) -> timedelta | None:
    """A Retry-After header (seconds, or an HTTP date) as a wait from `now`."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return timedelta(seconds=int(value))
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(when - now, timedelta(0))
