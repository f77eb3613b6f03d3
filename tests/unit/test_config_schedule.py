"""[email] schedule checked when config.toml loads (config/schedule.py, no apscheduler):
every spelling it accepts, APScheduler accepts and reads the same way."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from apscheduler.triggers.cron import CronTrigger
from hypothesis import given, settings
from hypothesis import strategies as st

from aggregator.config import Schedule, load, parse_schedule
from aggregator.errors import ConfigError
from aggregator.newsletter.schedule import next_fire, weekly_trigger

SHANGHAI = ZoneInfo("Asia/Shanghai")
#: a Sunday; a year of Mondays after it covers every month and a leap day
SUNDAY = datetime(2027, 11, 21, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("mon 08:00", Schedule("0", "8", "*", "*", "mon")),
        ("MON,Thu 7:30", Schedule("30", "7", "*", "*", "mon,thu")),
        ("mon-fri 07:05", Schedule("5", "7", "*", "*", "mon-fri")),
        ("daily 18:00", Schedule("0", "18", "*", "*", "*")),
        ("0 8 * * mon", Schedule("0", "8", "*", "*", "mon")),
        (
            "*/15 8-18/2 1,15 jan-mar,dec sat,sun",
            Schedule("*/15", "8-18/2", "1,15", "jan-mar,dec", "sat,sun"),
        ),
        ("30 6 last * *", Schedule("30", "6", "last", "*", "*")),
        ("0 9 * * MON-FRI", Schedule("0", "9", "*", "*", "mon-fri")),
    ],
)
def test_each_spelling_becomes_five_crontab_fields(spec: str, expected: Schedule) -> None:
    assert parse_schedule(spec) == expected


@pytest.mark.parametrize(
    ("spec", "reason"),
    [
        ("someday", "expected 'DAY HH:MM' or five crontab fields"),
        ("funday 08:00", "unknown day in 'funday'"),
        ("mon 24:00", "no such time of day"),
        ("fri-mon 08:00", "from the lower to the higher"),
        ("mon-tue-wed 08:00", "day of week 'mon-tue-wed': not a crontab field"),
        ("60 8 * * mon", "minute '60': out of range 0-59"),
        ("0 24 * * mon", "hour '24': out of range 0-23"),
        ("0 8 0 * *", "day of month '0': out of range 1-31"),
        ("0 8 * 13 *", "month '13': out of range 1-12"),
        ("0 8 * foo *", "month 'foo': unknown name 'foo'"),
        ("*/0 8 * * *", "the step must be between 1 and 59"),
        ("*/60 8 * * *", "the step must be between 1 and 59"),
        ("0 8-10/5 * * *", "the step must be between 1 and 2"),
        ("0 8 * * 1-5", "crontab counts 0 as Sunday but the scheduler counts it as Monday"),
        ("0 8 * * */2", "list the days by name"),
        ("0 8 * * mon/2", "day of week 'mon/2': not a crontab field"),
        ("0 8 * * mon-", "day of week 'mon-': not a crontab field"),
        ("0 8 last-1 * *", "day of month 'last-1': not a crontab field"),
        ("0 8 * jan/2 *", "month 'jan/2': not a crontab field"),
    ],
)
def test_a_wrong_schedule_says_why_and_names_the_key(spec: str, reason: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_schedule(spec)
    message = str(err.value)
    assert message.startswith(f"'email.schedule' is not a schedule: {spec!r} (")
    assert reason in message
    assert "'mon 08:00'" in message  # and how to write it


def test_a_wrong_schedule_is_refused_when_config_toml_loads(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text('[email]\nschedule = "0 8 * * 1-5"\n', encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load(path)
    assert str(err.value).startswith(f"{path}: 'email.schedule' is not a schedule")


def fires(trigger: CronTrigger, count: int = 8) -> list[datetime]:
    out, now = [], SUNDAY
    for _ in range(count):
        fire = trigger.get_next_fire_time(None, now)
        if fire is None:
            break
        out.append(fire)
        now = fire + timedelta(seconds=1)
    return out


def test_the_friendly_spelling_fires_as_it_did_before() -> None:
    """What newsletter/schedule.py built before the parsing moved into config/."""
    for spec, days, hour, minute in [
        ("mon 08:00", "mon", 8, 0),
        ("mon,thu 07:30", "mon,thu", 7, 30),
        ("daily 21:15", "*", 21, 15),
    ]:
        before = CronTrigger(day_of_week=days, hour=hour, minute=minute, timezone=SHANGHAI)
        now = fires(before)
        assert [next_fire(spec, SHANGHAI, t - timedelta(seconds=1)) for t in now] == now


def same_fires(spec: str) -> None:
    """`spec` builds a trigger that fires when APScheduler's own crontab reading does."""
    theirs = CronTrigger.from_crontab(spec, timezone=SHANGHAI)  # must not raise
    assert fires(weekly_trigger(spec, SHANGHAI)) == fires(theirs)


@pytest.mark.parametrize(
    "spec",
    [
        "0 8 * * mon",
        "30 7 * * mon,thu",
        "0 9 * * mon-fri",
        "*/15 8-18 * * *",
        "0 8-18/2 1,15 * *",
        "0 6 last * *",
        "0 12 1 jan-mar,dec *",
        "5,35 23 29 feb *",
        "0 0 * * sat,sun",
        "0 8 1-7 * mon",
    ],
)
def test_a_crontab_line_fires_as_apscheduler_reads_it(spec: str) -> None:
    same_fires(spec)


NAMES = ["mon", "fri", "sun", "jan", "dec", "last", "foo"]
ATOMS = st.one_of(
    st.just("*"),
    st.integers(0, 70).map(str),
    st.sampled_from(NAMES),
    st.tuples(st.integers(0, 40), st.integers(0, 40)).map(lambda t: f"{t[0]}-{t[1]}"),
    st.tuples(st.sampled_from(NAMES), st.sampled_from(NAMES)).map(lambda t: f"{t[0]}-{t[1]}"),
)
STEPS = st.one_of(st.just(""), st.integers(0, 40).map(lambda n: f"/{n}"))
ITEMS = st.tuples(ATOMS, STEPS).map("".join)
#: "*" half the time, so that whole lines are often valid
FIELDS = st.one_of(st.just("*"), st.lists(ITEMS, min_size=1, max_size=3).map(",".join))


@settings(max_examples=300, deadline=None)
@given(st.lists(FIELDS, min_size=5, max_size=5).map(" ".join))
def test_every_crontab_line_accepted_here_apscheduler_accepts_alike(spec: str) -> None:
    try:
        parse_schedule(spec)
    except ConfigError:
        return  # refusing more than APScheduler does is allowed (and said in the module)
    same_fires(spec)
