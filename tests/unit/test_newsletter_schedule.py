"""[email] schedule: friendly or crontab spelling, in the site's time zone."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from aggregator.errors import ConfigError
from aggregator.newsletter.schedule import next_fire

SHANGHAI = ZoneInfo("Asia/Shanghai")
# a Sunday, 12:00 UTC = 20:00 in Shanghai
SUNDAY = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("schedule", "expected_local"),
    [
        ("mon 08:00", datetime(2026, 11, 23, 8, 0)),
        ("mon,thu 07:30", datetime(2026, 11, 23, 7, 30)),
        ("daily 21:15", datetime(2026, 11, 22, 21, 15)),
        ("0 8 * * mon", datetime(2026, 11, 23, 8, 0)),
    ],
)
def test_next_issue_is_in_the_site_time_zone(schedule: str, expected_local: datetime) -> None:
    fire = next_fire(schedule, SHANGHAI, SUNDAY)
    assert fire is not None
    assert fire.astimezone(SHANGHAI).replace(tzinfo=None) == expected_local


@pytest.mark.parametrize("schedule", ["monday at 8", "funday 08:00", "mon 25:00", "* * *"])
def test_a_wrong_schedule_names_the_key(schedule: str) -> None:
    with pytest.raises(ConfigError, match=r"email\.schedule"):
        next_fire(schedule, SHANGHAI, SUNDAY)
