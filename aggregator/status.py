"""What `aggregator status` and the health endpoint say: typed values read from
the store, and the JSON shape they are published in.

`status()` gathers a Status; the CLI prints it for a person and `to_json()`
gives the machine-readable form (`status --json`); `health()` is the daemon's
`/healthz` answer.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any

from aggregator.config import Config
from aggregator.errors import AggregatorError
from aggregator.model import JobStatus, Run, ScheduledJob, SourceKind, SourceStatus
from aggregator.newsletter.schedule import next_fire
from aggregator.store import Store

log = logging.getLogger(__name__)

INGEST, BUILD, SEND, HOUSEKEEPING, VACUUM = "ingest", "build", "send", "housekeeping", "vacuum"
#: the jobs status reports on (vacuum is part of housekeeping)
JOBS = (INGEST, BUILD, SEND, HOUSEKEEPING)


@dataclass(frozen=True)
class SourceLine:
    """One source as status shows it."""

    status: SourceStatus
    #: where it is read from: the content directory, or the feed's URL
    location: str

    @property
    def state(self) -> str:
        """ok, failing, disabled or never checked."""
        if self.status.disabled_reason:
            return "disabled"
        return {"ok": "ok", "error": "failing", "never": "never checked"}[self.status.last_status]


@dataclass(frozen=True)
class IssueLine:
    """The latest stored issue, and when the next one is due."""

    last_key: str | None
    #: when the latest issue was composed
    last_created: datetime | None
    #: the latest issue's deliveries by status ("sent": 12, ...)
    deliveries: dict[str, int]
    next: datetime | None


@dataclass(frozen=True)
class Status:
    """Everything `aggregator status` shows."""

    now: datetime
    sources: tuple[SourceLine, ...]
    entries_total: int
    entries_new_this_week: int
    jobs: dict[str, JobStatus]
    issues: IssueLine
    #: subscribers listed in config.toml, and stored subscribers by status
    subscribers_configured: int
    subscribers: dict[str, int]
    schedule: tuple[ScheduledJob, ...]
    #: the [site] time zone: every time is shown in it, with its offset
    tz: tzinfo = UTC

    @property
    def source_counts(self) -> dict[str, int]:
        """Sources by state (only states that occur)."""
        return dict(Counter(s.state for s in self.sources))

    def to_json(self) -> dict[str, Any]:
        """The JSON shape of `status --json` (stable: scripts read it); times are
        ISO 8601 in the [site] time zone, with its offset."""
        i, tz = self.issues, self.tz
        return {
            "now": _iso(self.now, tz),
            "sources": [_source_json(s, tz) for s in self.sources],
            "source_counts": self.source_counts,
            "entries": {"total": self.entries_total, "new_this_week": self.entries_new_this_week},
            "jobs": {
                name: {"last": _run_json(j.last, tz), "last_ok": _run_json(j.last_ok, tz)}
                for name, j in self.jobs.items()
            },
            "issues": {
                "last": _iso(i.last_created, tz),
                "last_key": i.last_key,
                "deliveries": i.deliveries,
                "next": _iso(i.next, tz),
            },
            "subscribers": {"configured": self.subscribers_configured, **self.subscribers},
            "schedule": [{"job": j.id, "next_run": _iso(j.next_run, tz)} for j in self.schedule],
        }


def status(config: Config, store: Store, now: datetime) -> Status:
    """Read everything `aggregator status` shows."""
    sources = tuple(
        SourceLine(
            s, str(config.content.dir) if s.source.kind == SourceKind.CONTENT else s.source.key
        )
        for s in store.source_statuses(config.sources)
    )
    total, new = store.entry_stats(now - timedelta(days=7))
    scheduled = tuple(store.scheduled_jobs())
    next_send: datetime | None = None
    if config.daemon.send_interval > 0:
        next_send = next((j.next_run for j in scheduled if j.id == SEND), None)
    else:  # the schedule was checked when config.toml was loaded
        next_send = next_fire(config.email.schedule, config.site.tz, now)
    latest = store.latest_issue()
    deliveries = (
        dict(Counter(str(d.status) for d in store.deliveries(latest.key).values()))
        if latest
        else {}
    )
    return Status(
        now=now,
        sources=sources,
        entries_total=total,
        entries_new_this_week=new,
        jobs={j.job: j for j in store.job_statuses(JOBS)},
        issues=IssueLine(
            last_key=latest.key if latest else None,
            last_created=latest.created if latest else None,
            deliveries=deliveries,
            next=next_send,
        ),
        subscribers_configured=len(config.subscribers),
        subscribers=dict(Counter(str(s.status) for s in store.subscribers())),
        schedule=scheduled,
        tz=config.site.tz,
    )


def health(
    config: Config, store: Store, now: datetime, *, outputs_missing: str | None = None
) -> dict[str, Any]:
    """The health endpoint's answer: last successes and failing feeds.

    `ok` is false (HTTP 503), with a `reason`, when the store cannot be read
    or outputs are missing (`outputs_missing` says why: readers get nothing
    or a broken site); a failing feed is reported, but the service itself is
    healthy.
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
        reason = f"the database cannot be read: {e}"
        return {"ok": False, "reason": reason, "error": str(e), "now": _iso(now)}

    def last_ok(job: str) -> str | None:
        run = runs[job].last_ok
        return _iso(run.finished) if run else None

    return {
        "ok": outputs_missing is None,
        **({"reason": f"outputs missing: {outputs_missing}"} if outputs_missing else {}),
        "now": _iso(now),
        "last_ingest": last_ok(INGEST),
        "last_build": last_ok(BUILD),
        "last_send": last_ok(SEND),
        "failing_feeds": failing,
    }


def run_state(run: Run) -> str:
    """ok, failed, or "running or interrupted" (no end recorded)."""
    return "running or interrupted" if run.finished is None else "ok" if run.ok else "failed"


def _iso(when: datetime | None, tz: tzinfo | None = None) -> str | None:
    """ISO 8601 with the offset; in `tz` when given."""
    if when is None:
        return None
    return (when.astimezone(tz) if tz else when).isoformat(timespec="seconds")


def _run_json(run: Run | None, tz: tzinfo) -> dict[str, Any] | None:
    if run is None:
        return None
    return {
        "started": _iso(run.started, tz),
        "finished": _iso(run.finished, tz),
        "state": run_state(run),
        "error": run.error,
        "detail": run.detail,
    }


def _source_json(line: SourceLine, tz: tzinfo) -> dict[str, Any]:
    s = line.status
    return {
        "name": s.source.name,
        "kind": str(s.source.kind),
        "key": line.location,
        "state": line.state,
        "last_checked": _iso(s.last_checked, tz),
        "last_error": s.last_error,
        "entries": s.entry_count,
        "disabled_reason": s.disabled_reason,
        "moved_to": s.moved_to,
        "consecutive_errors": s.consecutive_errors,
        "next_fetch": _iso(s.next_fetch, tz) if not s.disabled_reason else None,
    }
