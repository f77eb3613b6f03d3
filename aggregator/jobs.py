"""Jobs: pipeline calls wrapped in a run record, for cron mode and the daemon alike.

Each job writes a row in the store's `runs` table when it starts and when
it ends, so `aggregator status` and the health endpoint can say when each
last succeeded, whoever ran it. A run killed mid-way keeps its start row
with no end: status shows it as interrupted, and `Store.build_pending`
makes the next run rebuild.

Also here: `status_report`, the at-a-glance summary behind `aggregator
status` and the health endpoint.

What this module does not do: locking (the caller holds the run lock) or
scheduling (daemon.py).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from aggregator import clock, pipeline
from aggregator.config import Config
from aggregator.deliver.files import remove_stale_temp_files
from aggregator.email_schedule import next_fire
from aggregator.errors import AggregatorError
from aggregator.model import BuildReport, IngestReport, Run, SendReport
from aggregator.store import Store

log = logging.getLogger(__name__)

INGEST, BUILD, SEND, HOUSEKEEPING, VACUUM = "ingest", "build", "send", "housekeeping", "vacuum"
JOBS = (INGEST, BUILD, SEND, HOUSEKEEPING)

#: the weekly send, given to the daemon: (config, store, now) -> a one-line summary
Send = Callable[[Config, Store, datetime], str | None]


@dataclass
class RunNote:
    """What a job tells its run record before it ends."""

    detail: str | None = None
    changes: int | None = None


@contextmanager
def recorded(store: Store, job: str) -> Iterator[RunNote]:
    """Record a run of `job`: started now, finished when the block ends.

    An exception marks the run failed (with its message) and propagates.
    """
    run_id = store.start_run(job, clock.now())
    note = RunNote()
    try:
        yield note
    except BaseException as e:
        store.finish_run(run_id, clock.now(), error=str(e) or type(e).__name__, detail=note.detail)
        raise
    store.finish_run(run_id, clock.now(), detail=note.detail, changes=note.changes)


def ingest(
    config: Config,
    store: Store,
    *,
    all_feeds: bool = False,
    progress: pipeline.Progress | None = None,
) -> IngestReport:
    """Ingest every due source (every feed with `all_feeds`); log each failure
    with its source."""
    with recorded(store, INGEST) as note:
        report = pipeline.ingest(config, store, clock.now(), all_feeds=all_feeds, progress=progress)
        new = sum(r.new for r in report.results)
        changed = sum(r.changed for r in report.results)
        failed = sum(1 for r in report.results if not r.ok)
        # Links are recomputed from entries each time, so they only change
        # when entries do: new + changed says whether a build is needed.
        note.changes = new + changed
        note.detail = (
            f"{len(report.results)} sources, {new} new, {changed} changed, {failed} failing"
        )
    for f in report.failures:
        log.warning("ingest failure: %s", f, extra={"job": INGEST, "source": f.location})
    log.info("ingest done: %s", note.detail, extra={"job": INGEST, "status": "ok"})
    return report


def build(config: Config, store: Store) -> BuildReport:
    """Render and write every output."""
    with recorded(store, BUILD) as note:
        report = pipeline.build(config, store, clock.now())
        note.changes = len(report.written)
        note.detail = f"{len(report.written)} files written"
    log.info("build done: %s", note.detail, extra={"job": BUILD, "status": "ok"})
    return report


def describe_send(report: SendReport) -> str:
    """A one-line summary of a send, for the runs table, status and logs."""
    if report.empty:
        return "nothing new: not sent"
    text = f"issue {report.issue}: {report.sent} sent, {report.already} had it"
    if report.failures:
        text += f", {len(report.failures)} failed"
    if report.uncertain:
        text += f", {len(report.uncertain)} uncertain"
    return text


def weekly_send(config: Config, store: Store, now: datetime) -> str | None:
    """The daemon's weekly send: pipeline.send, summarized."""
    return describe_send(pipeline.send(config, store, now))


def unsubscribe_by_token(config: Config, store: Store, token: str, now: datetime) -> str | None:
    """The web endpoint's action: the address unsubscribed, or None for an unknown token."""
    sub = pipeline.unsubscribe(config, store, token, now)
    return sub.email if sub is not None else None


def send(config: Config, store: Store, action: Send) -> None:
    """Run the weekly send through `action` (the newsletter's exactly-once send)."""
    with recorded(store, SEND) as note:
        note.detail = action(config, store, clock.now())
    log.info("send done: %s", note.detail or "", extra={"job": SEND, "status": "ok"})


def housekeeping(config: Config, store: Store) -> None:
    """Prune old run records and stray temp files; ANALYZE, and VACUUM when due."""
    d = config.daemon
    with recorded(store, HOUSEKEEPING) as note:
        now = clock.now()
        pruned = store.prune_runs(now - timedelta(days=d.keep_runs_days))
        temp = remove_stale_temp_files(config.output.dir, now, timedelta(hours=1))
        (last_vacuum,) = store.job_statuses([VACUUM])
        due = last_vacuum.last_ok is None or last_vacuum.last_ok.started < now - timedelta(
            days=d.vacuum_interval_days
        )
        if due:
            with recorded(store, VACUUM):
                store.optimize(vacuum=True)
        else:
            store.optimize(vacuum=False)
        note.detail = f"{pruned} old run records pruned, {temp} stray temp files removed" + (
            ", vacuumed" if due else ", analyzed"
        )
    log.info("housekeeping done: %s", note.detail, extra={"job": HOUSEKEEPING})


def _iso(when: datetime | None) -> str | None:
    return when.isoformat(timespec="seconds") if when else None


def _run_dict(run: Run | None) -> dict[str, Any] | None:
    if run is None:
        return None
    state = "running or interrupted" if run.finished is None else "ok" if run.ok else "failed"
    return {
        "started": _iso(run.started),
        "finished": _iso(run.finished),
        "state": state,
        "error": run.error,
        "detail": run.detail,
    }


def status_report(config: Config, store: Store, now: datetime) -> dict[str, Any]:
    """Everything `aggregator status` shows, as plain JSON-ready data."""
    sources = []
    for s in store.source_statuses(config.sources):
        state = (
            "disabled"
            if s.disabled_reason
            else {"ok": "ok", "error": "failing", "never": "never checked"}[s.last_status]
        )
        sources.append(
            {
                "name": s.source.name,
                "kind": str(s.source.kind),
                "key": str(config.content.dir) if s.source.kind == "content" else s.source.key,
                "state": state,
                "last_checked": _iso(s.last_checked),
                "last_error": s.last_error,
                "entries": s.entry_count,
                "disabled_reason": s.disabled_reason,
                "moved_to": s.moved_to,
                "consecutive_errors": s.consecutive_errors,
                "next_fetch": _iso(s.next_fetch) if not s.disabled_reason else None,
            }
        )
    counts: dict[str, int] = {}
    for row in sources:
        state = str(row["state"])
        counts[state] = counts.get(state, 0) + 1
    total, new = store.entry_stats(now - timedelta(days=7))
    runs = {j.job: j for j in store.job_statuses(JOBS)}
    scheduled = store.scheduled_jobs()
    if config.daemon.send_interval > 0:
        next_issue = next((_iso(j.next_run) for j in scheduled if j.id == SEND), None)
    else:
        try:
            next_issue = _iso(next_fire(config.email.schedule, config.site.tz, now))
        except AggregatorError as e:
            next_issue = f"invalid schedule: {e}"
    return {
        "now": _iso(now),
        "sources": sources,
        "source_counts": counts,
        "entries": {"total": total, "new_this_week": new},
        "jobs": {
            name: {"last": _run_dict(j.last), "last_ok": _run_dict(j.last_ok)}
            for name, j in runs.items()
        },
        "issues": {**_last_issue(store), "next": next_issue},
        "subscribers": {
            "configured": len(config.subscribers),
            **Counter(str(s.status) for s in store.subscribers()),
        },
        "schedule": [{"job": j.id, "next_run": _iso(j.next_run)} for j in scheduled],
    }


def _last_issue(store: Store) -> dict[str, Any]:
    """The latest stored issue: its key, when it was composed, deliveries by status."""
    issue = store.latest_issue()
    if issue is None:
        return {"last": None, "last_key": None, "deliveries": {}}
    counts = Counter(str(d.status) for d in store.deliveries(issue.key).values())
    return {"last": _iso(issue.created), "last_key": issue.key, "deliveries": dict(counts)}


def health_report(config: Config, store: Store, now: datetime) -> dict[str, Any]:
    """The health endpoint's answer: last successes and failing feeds.

    `ok` is false (HTTP 503) only when the store cannot be read: a failing
    feed is reported, but the service itself is healthy.
    """
    try:
        runs = {j.job: j for j in store.job_statuses(JOBS)}
        failing = [
            {
                "name": s.source.name,
                "url": s.source.key,
                "error": s.last_error,
                "last_checked": _iso(s.last_checked),
            }
            for s in store.source_statuses(config.sources)
            if s.last_status == "error"
        ]
    except AggregatorError as e:
        log.error("health check cannot read the store: %s", e)
        return {"ok": False, "error": str(e), "now": _iso(now)}

    def last_ok(job: str) -> str | None:
        run = runs[job].last_ok
        return _iso(run.finished) if run else None

    return {
        "ok": True,
        "now": _iso(now),
        "last_ingest": last_ok(INGEST),
        "last_build": last_ok(BUILD),
        "last_send": last_ok(SEND),
        "failing_feeds": failing,
    }
