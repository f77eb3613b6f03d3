"""The persistent schedule: a send that came due while the daemon was down
fires once after the restart, and a further restart does not fire it again."""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from pathlib import Path

from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler

from aggregator import clock
from aggregator import config as config_mod
from aggregator.config import Config
from aggregator.daemon import Daemon
from aggregator.model import SendReport
from aggregator.store import SCHEDULER_TABLE, Store
from tests.daemon_helpers import free_port, wait_for, write_config


class Outbox:
    """A real (if small) send: records each call, as the newsletter's send would."""

    def __init__(self) -> None:
        self.sent: list[datetime] = []

    def __call__(self, config: Config, store: Store, now: datetime, **_: object) -> SendReport:
        self.sent.append(now)
        return SendReport(issue=f"2026-W{len(self.sent):02}", sent=1)


def start(path: Path, outbox: Outbox) -> Daemon:
    config = config_mod.load(path)
    d = Daemon(path, config, send=outbox)
    d.start()
    return d


def move_send(db_url: str, when: datetime | None) -> None:
    """Rewrite the stored send job's next run, as if the daemon had been down.

    Straight through the job store: a running scheduler would race to fire it.
    """
    store = SQLAlchemyJobStore(url=db_url, tablename=SCHEDULER_TABLE)
    store.start(BackgroundScheduler(), "default")
    job = store.lookup_job("send")
    job.next_run_time = when
    store.update_job(job)
    store.shutdown()


def test_missed_send_fires_once_after_restart_and_never_twice(tmp_path: Path) -> None:
    path = write_config(tmp_path, [], free_port(), ingest_interval=3600)
    outbox = Outbox()
    d = start(path, outbox)
    try:
        store = d.store
        jobs = {j.id: j.next_run for j in store.scheduled_jobs()}
        assert set(jobs) == {"ingest", "send", "housekeeping"}
        assert jobs["send"] is not None and jobs["send"] > clock.now()
        next_week = jobs["send"]
    finally:
        assert d.shutdown()
    assert outbox.sent == []

    url = config_mod.load(path).database.url
    move_send(url, clock.now() - timedelta(minutes=30))  # due while we were down

    d = start(path, outbox)
    try:
        wait_for("the missed send", lambda: outbox.sent, timeout=10)
        # back on its weekly time (stored by the scheduler just after it starts the job)
        wait_for(
            "the send to move to next week",
            lambda: {j.id: j.next_run for j in d.store.scheduled_jobs()}["send"] == next_week,
            timeout=5,
        )
        last_ok = wait_for(
            "the send's run record", lambda: d.store.job_statuses(["send"])[0].last_ok
        )
        assert last_ok.detail == "issue 2026-W01: 1 sent, 0 had it"
    finally:
        assert d.shutdown()

    d = start(path, outbox)
    try:
        time.sleep(1.5)
    finally:
        assert d.shutdown()
    assert len(outbox.sent) == 1


def test_a_send_missed_beyond_the_grace_time_is_skipped(tmp_path: Path) -> None:
    path = write_config(tmp_path, [], free_port(), ingest_interval=3600, misfire_grace_time=60)
    outbox = Outbox()
    d = start(path, outbox)
    assert d.shutdown()
    move_send(config_mod.load(path).database.url, clock.now() - timedelta(hours=2))
    d = start(path, outbox)
    try:
        time.sleep(1.5)
    finally:
        assert d.shutdown()
    assert outbox.sent == []


def test_changing_the_schedule_replaces_the_stored_trigger(tmp_path: Path) -> None:
    path = write_config(tmp_path, [], free_port(), ingest_interval=3600)
    outbox = Outbox()
    d = start(path, outbox)
    try:
        before = {j.id: j.next_run for j in d.store.scheduled_jobs()}["send"]
        text = path.read_text(encoding="utf-8") + '[email]\nschedule = "daily 06:00"\n'
        path.write_text(text, encoding="utf-8")
        assert d.reload()
        after = {j.id: j.next_run for j in d.store.scheduled_jobs()}["send"]
        assert after is not None and before is not None and after != before
        assert after.astimezone(d.config.site.tz).hour == 6
        # an invalid schedule is refused and the old one kept
        path.write_text(text.replace("daily 06:00", "someday"), encoding="utf-8")
        assert not d.reload()
        assert d.config.email.schedule == "daily 06:00"
    finally:
        assert d.shutdown()


def test_a_send_lost_to_a_race_is_caught_up_from_the_run_records(tmp_path: Path) -> None:
    # The scheduler moved the job on to next week without a successful send
    # (what APScheduler does when a start loses a race with shutdown).
    path = write_config(tmp_path, [], free_port(), ingest_interval=3600)
    outbox = Outbox()
    d = start(path, outbox)
    assert d.shutdown()
    config = config_mod.load(path)
    # a daily send an hour ago (site time zone: UTC), well within the grace time
    hour_ago = clock.now() - timedelta(hours=1)
    schedule = f"{hour_ago.minute} {hour_ago.hour} * * *"
    text = path.read_text(encoding="utf-8") + f'[email]\nschedule = "{schedule}"\n'
    path.write_text(text, encoding="utf-8")
    d = start(path, outbox)  # stores the daily trigger; an hour ago passed unsent
    assert d.shutdown()
    assert outbox.sent == []
    d = start(path, outbox)
    try:
        wait_for("the caught-up send", lambda: outbox.sent, timeout=10)
    finally:
        assert d.shutdown()
    assert config.daemon.misfire_grace_time >= 6 * 3600
    d = start(path, outbox)
    try:
        time.sleep(1.0)
    finally:
        assert d.shutdown()
    assert len(outbox.sent) == 1


def test_send_interval_overrides_the_weekly_schedule_until_set_back_to_0(tmp_path: Path) -> None:
    path = write_config(tmp_path, [], free_port(), ingest_interval=3600, send_interval=3600)
    outbox = Outbox()
    d = start(path, outbox)
    try:
        # an interval send runs at start-up, then every send_interval seconds
        wait_for("the send at start-up", lambda: outbox.sent, timeout=10)
        wait_for(
            "the send's next run an interval later",
            lambda: (
                (n := {j.id: j.next_run for j in d.store.scheduled_jobs()}["send"])
                and n > clock.now() + timedelta(minutes=59)
            ),
        )
        path.write_text(path.read_text().replace("send_interval = 3600", ""), encoding="utf-8")
        assert d.reload()
        weekly = {j.id: j.next_run for j in d.store.scheduled_jobs()}["send"]
        assert weekly is not None
        local = weekly.astimezone(d.config.site.tz)  # back on "mon 08:00"
        assert (local.weekday(), local.hour, local.minute) == (0, 8, 0)
    finally:
        assert d.shutdown()
    assert len(outbox.sent) == 1
