"""`[email] schedule` -> a checked Schedule (pure): when the weekly email goes out.

Two spellings, both read in the [site] time zone:

- `DAYS HH:MM`, the friendly one: `mon 08:00`, `mon,thu 07:30`, `mon-fri 07:00`,
  `daily 18:00`;
- a five-field crontab line: `0 8 * * mon` (minute, hour, day of month, month,
  day of week).

Either becomes the five fields of a Schedule, from which newsletter/schedule.py
builds the APScheduler trigger. The crontab fields are checked here by hand
rather than by APScheduler's own parser because config/ is the foundation every
stage imports and may not import apscheduler (tests/unit/test_layout.py), and a
bad schedule must be refused when config.toml is loaded, not when the daemon
first computes the next send. The grammar is APScheduler 3's cron field grammar,
narrowed where APScheduler reads something other than what was written:

- `*`, `*/S`, `N`, `N-M`, `N/S`, `N-M/S`, lists `A,B`; month names `jan`..`dec`
  and weekday names `mon`..`sun`, alone or as ranges (`mon-fri`); `last` as the
  day of month;
- a step on a name range is refused (APScheduler silently drops it), and so is
  trailing text after a name (`mon/2`, `mon-`, `mon-tue-wed`, read as `mon`);
- numbers in the day-of-week field are refused: crontab counts 0 (and 7) as
  Sunday, APScheduler 3 counts 0 as Monday, so `1-5` would mean Tuesday to
  Saturday. Names mean one thing to both.

tests/unit/test_config_schedule.py checks that every spelling accepted here is
accepted by APScheduler too.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from aggregator.errors import ConfigError

#: the config key, for messages
KEY = "email.schedule"
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
EXAMPLES = "'mon 08:00', 'mon,thu 07:30', 'daily 18:00' or '0 8 * * mon'"

_FRIENDLY = re.compile(r"^\s*(?P<days>[a-z,\-]+)\s+(?P<h>\d{1,2}):(?P<m>\d{2})\s*$", re.I)
_NUMBERS = re.compile(r"^(?P<first>[0-9]+)(?:-(?P<last>[0-9]+))?(?:/(?P<step>[0-9]+))?$")
_ALL = re.compile(r"^\*(?:/(?P<step>[0-9]+))?$")
_NAMES = re.compile(r"^(?P<first>[a-z]+)(?:-(?P<last>[a-z]+))?$")


@dataclass(frozen=True)
class Schedule:
    """A checked schedule: the five crontab fields, as APScheduler's CronTrigger takes them."""

    minute: str
    hour: str
    day: str
    month: str
    day_of_week: str


@dataclass(frozen=True)
class _Field:
    name: str
    low: int
    high: int
    #: names standing for low, low + 1, ...
    names: tuple[str, ...] = ()
    numbers: bool = True
    last: bool = False


_MINUTE = _Field("minute", 0, 59)
_HOUR = _Field("hour", 0, 23)
_DAY = _Field("day of month", 1, 31, last=True)
_MONTH = _Field("month", 1, 12, names=MONTHS)
_WEEKDAY = _Field("day of week", 0, 6, names=WEEKDAYS, numbers=False)
_CRONTAB = (_MINUTE, _HOUR, _DAY, _MONTH, _WEEKDAY)


def schedule_error(spec: str, reason: str) -> ConfigError:
    """The error for an unusable `[email] schedule` (callers add the file)."""
    return ConfigError(f"'{KEY}' is not a schedule: {spec!r} ({reason}; write e.g. {EXAMPLES})")


def parse_schedule(spec: str) -> Schedule:
    """The Schedule `spec` spells; ConfigError naming `email.schedule` otherwise."""
    try:
        return _parse(spec)
    except ValueError as e:
        raise schedule_error(spec, str(e)) from None


def _parse(spec: str) -> Schedule:
    m = _FRIENDLY.match(spec)
    if m:
        days = m["days"].lower()
        hour, minute = int(m["h"]), int(m["m"])
        names = {d for part in days.split(",") for d in part.split("-")}
        if days != "daily" and not names <= set(WEEKDAYS):
            raise ValueError(f"unknown day in {days!r}")
        if hour > 23 or minute > 59:
            raise ValueError("no such time of day")
        day_of_week = "*" if days == "daily" else _check(days, _WEEKDAY)
        return Schedule(str(minute), str(hour), "*", "*", day_of_week)
    parts = spec.split()
    if len(parts) == 5:
        checked = [_check(p.lower(), f) for p, f in zip(parts, _CRONTAB, strict=True)]
        return Schedule(*checked)
    raise ValueError("expected 'DAY HH:MM' or five crontab fields")


def _check(value: str, field: _Field) -> str:
    """`value` (lower case) if it is a valid crontab field; ValueError saying why otherwise."""
    for item in value.split(","):
        _check_item(item, field)
    return value


def _check_item(item: str, field: _Field) -> None:
    def wrong(why: str) -> ValueError:
        return ValueError(f"{field.name} {item!r}: {why}")

    span = field.high - field.low
    if m := _ALL.match(item):
        step = int(m["step"]) if m["step"] else None
        if step is not None and not 0 < step <= span:
            raise wrong(f"the step must be between 1 and {span}")
        if step is not None and step > 1 and not field.numbers:
            raise wrong("a step counts weekdays by number; list the days by name (mon,wed,fri)")
        return
    if field.last and item == "last":
        return
    if m := _NUMBERS.match(item):
        if not field.numbers:
            raise wrong(
                "write weekdays by name (mon, mon-fri, sat,sun): crontab counts 0 as Sunday"
                " but the scheduler counts it as Monday"
            )
        first = int(m["first"])
        last = int(m["last"]) if m["last"] else None
        step = int(m["step"]) if m["step"] else None
        _check_range(first, last if last is not None else first, field, wrong)
        if step is not None:
            end = last if last is not None else field.high
            if not 0 < step <= end - first:
                raise wrong(f"the step must be between 1 and {end - first}")
        return
    if field.names and (m := _NAMES.match(item)):
        for name in (m["first"], m["last"]):
            if name is not None and name not in field.names:
                raise wrong(f"unknown name {name!r} (use {', '.join(field.names)})")
        first = field.low + field.names.index(m["first"])
        last = field.low + field.names.index(m["last"]) if m["last"] else first
        _check_range(first, last, field, wrong)
        return
    allowed = "numbers, ranges (1-5), steps (*/15)" + (", names" if field.names else "")
    if not field.numbers:
        allowed = "names (mon), ranges of names (mon-fri) or *"
    raise wrong(f"not a crontab field; use {allowed}")


def _check_range(first: int, last: int, field: _Field, wrong: Callable[[str], ValueError]) -> None:
    if first < field.low or last > field.high:
        raise wrong(f"out of range {field.low}-{field.high}")
    if first > last:
        raise wrong("a range must go from the lower to the higher value")
