"""`[email] schedule` -> an APScheduler trigger, and when it next fires (pure).

Two spellings are accepted, both read in the [site] time zone:

- `DAYS HH:MM`, the friendly one: `mon 08:00`, `mon,thu 07:30`, `daily 18:00`;
- a five-field crontab line: `0 8 * * mon`.
"""

from __future__ import annotations

import re
from datetime import datetime, tzinfo

from apscheduler.triggers.cron import CronTrigger

from aggregator.errors import ConfigError

_DAYS = {"mon", "tue", "wed", "thu", "fri", "sat", "sun"}
_FRIENDLY = re.compile(r"^\s*(?P<days>[a-z,\-]+)\s+(?P<h>\d{1,2}):(?P<m>\d{2})\s*$", re.I)


def weekly_trigger(schedule: str, tz: tzinfo) -> CronTrigger:
    """The trigger for `schedule`; ConfigError naming `email.schedule` if it is wrong."""
    m = _FRIENDLY.match(schedule)
    try:
        if m:
            days = m["days"].lower()
            hour, minute = int(m["h"]), int(m["m"])
            names = {d for part in days.split(",") for d in part.split("-")}
            if days != "daily" and not names <= _DAYS:
                raise ValueError(f"unknown day in {days!r}")
            if hour > 23 or minute > 59:
                raise ValueError("no such time of day")
            return CronTrigger(
                day_of_week="*" if days == "daily" else days,
                hour=hour,
                minute=minute,
                timezone=tz,
            )
        if len(schedule.split()) == 5:
            return CronTrigger.from_crontab(schedule, timezone=tz)
        raise ValueError("expected 'DAY HH:MM' or five crontab fields")
    except ValueError as e:
        raise ConfigError(
            f"'email.schedule' is not a schedule: {schedule!r} ({e}; "
            "write e.g. 'mon 08:00', 'mon,thu 07:30', 'daily 18:00' or '0 8 * * mon')"
        ) from None


def next_fire(schedule: str, tz: tzinfo, now: datetime) -> datetime | None:
    """When `schedule` next fires after `now` (aware)."""
    fire: datetime | None = weekly_trigger(schedule, tz).get_next_fire_time(None, now)
    return fire
