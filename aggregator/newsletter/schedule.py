"""`[email] schedule` -> an APScheduler trigger, and when it next fires (pure).

The spelling (`mon 08:00`, `mon,thu 07:30`, `daily 18:00`, or a five-field
crontab line `0 8 * * mon`) is parsed and checked in config/schedule.py, when
config.toml is loaded; this builds the trigger from the checked fields, read in
the [site] time zone.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime, tzinfo

from apscheduler.triggers.cron import CronTrigger

from aggregator.config import parse_schedule, schedule_error


def weekly_trigger(schedule: str, tz: tzinfo) -> CronTrigger:
    """The trigger for `schedule`; ConfigError naming `email.schedule` if it is wrong."""
    fields = parse_schedule(schedule)
    try:
        return CronTrigger(**asdict(fields), timezone=tz)
    except ValueError as e:  # config/schedule.py accepts only what APScheduler does: a bug
        raise schedule_error(schedule, str(e)) from None


def next_fire(schedule: str, tz: tzinfo, now: datetime) -> datetime | None:
    """When `schedule` next fires after `now` (aware)."""
    fire: datetime | None = weekly_trigger(schedule, tz).get_next_fire_time(None, now)
    return fire
