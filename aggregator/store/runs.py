"""Runs of the jobs (ingest, build, send...): when each started and ended and
what it changed, for `status`, the health endpoint and the daemon's "is a
build pending"; and the daemon's persistent schedule, read-only."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, func, inspect, select, update

from aggregator.model import JobStatus, Run, ScheduledJob
from aggregator.store.base import StoreBase
from aggregator.store.schema import SCHEDULER_TABLE, runs, scheduler_jobs


class RunsMixin(StoreBase):
    """Job runs and the daemon's schedule."""

    def start_run(self, job: str, now: datetime) -> int:
        """Record that `job` started; returns the run's id for `finish_run`."""
        with self._tx() as conn:
            result = conn.execute(runs.insert().values(job=job, started=now))
            return int(result.inserted_primary_key[0])  # type: ignore[index]

    def finish_run(
        self,
        run_id: int,
        now: datetime,
        *,
        error: str | None = None,
        detail: str | None = None,
        changes: int | None = None,
    ) -> None:
        """Record the end of a run: ok unless `error` is given."""
        with self._tx() as conn:
            conn.execute(
                update(runs)
                .where(runs.c.id == run_id)
                .values(finished=now, ok=error is None, error=error, detail=detail, changes=changes)
            )

    def build_pending(self) -> bool:
        """True if an ingest since the last good build changed (or may have changed)
        the store: it reported changes, or it never finished (killed mid-way)."""
        with self._tx() as conn:
            last_build = conn.execute(
                select(func.max(runs.c.id)).where(runs.c.job == "build", runs.c.ok.is_(True))
            ).scalar_one()
            q = select(runs.c.id).where(
                runs.c.job == "ingest",
                (runs.c.changes.is_(None)) | (runs.c.changes > 0),
            )
            if last_build is not None:
                q = q.where(runs.c.id > last_build)
            return conn.execute(q.limit(1)).first() is not None

    def job_statuses(self, jobs: Sequence[str]) -> list[JobStatus]:
        """For each job name, its latest run and its latest successful run."""
        out = []
        with self._tx() as conn:
            for job in jobs:
                latest = conn.execute(
                    select(runs).where(runs.c.job == job).order_by(runs.c.id.desc()).limit(1)
                ).first()
                good = conn.execute(
                    select(runs)
                    .where(runs.c.job == job, runs.c.ok.is_(True))
                    .order_by(runs.c.id.desc())
                    .limit(1)
                ).first()
                out.append(JobStatus(job=job, last=_run(latest), last_ok=_run(good)))
        return out

    def prune_runs(self, before: datetime) -> int:
        """Delete run records started before `before`; returns how many."""
        with self._tx() as conn:
            return int(conn.execute(delete(runs).where(runs.c.started < before)).rowcount)

    def scheduled_jobs(self) -> list[ScheduledJob]:
        """The daemon's persistent schedule (empty if it never ran)."""
        with self._tx() as conn:
            if not inspect(conn).has_table(SCHEDULER_TABLE):
                return []
            rows = conn.execute(
                select(scheduler_jobs.c.id, scheduler_jobs.c.next_run_time).order_by(
                    scheduler_jobs.c.next_run_time
                )
            ).all()
        return [
            ScheduledJob(
                id=r.id,
                next_run=None
                if r.next_run_time is None
                else datetime.fromtimestamp(r.next_run_time, UTC),
            )
            for r in rows
        ]


def _run(r: Any) -> Run | None:
    if r is None:
        return None
    return Run(
        job=r.job, started=r.started, finished=r.finished, ok=r.ok, error=r.error, detail=r.detail
    )
