"""The store: SQLAlchemy Core schema, upserts and every query.

The only module that writes SQL. Rows go in and come out as model values;
no session or row object leaves this module. Portable between SQLite (the
default, WAL mode) and PostgreSQL: no SQLite-only SQL outside a dialect check.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    DateTime,
    Dialect,
    Engine,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
    create_engine,
    delete,
    event,
    func,
    inspect,
    select,
    text,
    update,
)
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import SQLAlchemyError

from aggregator.errors import StoreError
from aggregator.model import (
    DedupeCandidate,
    DupeLink,
    Entry,
    JobStatus,
    Run,
    ScheduledJob,
    Source,
    SourceKind,
    SourceStatus,
    StoredEntry,
)


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in, aware UTC datetimes out, on every backend."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return value.replace(tzinfo=UTC) if value is not None else None


metadata = MetaData()

sources = Table(
    "sources",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("kind", String(16), nullable=False),
    Column("key", Text, nullable=False, unique=True),
    Column("name", Text, nullable=False),
    Column("last_checked", UTCDateTime),
    Column("last_status", String(16), nullable=False, default="never"),
    Column("last_error", Text),
)

entries = Table(
    "entries",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("source_id", Integer, ForeignKey("sources.id"), nullable=False),
    Column("guid", Text, nullable=False),
    Column("link", Text, nullable=False),
    Column("canonical_url", Text, nullable=False),
    Column("title", Text, nullable=False),
    Column("author", Text, nullable=False),
    Column("published", UTCDateTime, nullable=False),
    Column("updated", UTCDateTime, nullable=False),
    Column("first_seen", UTCDateTime, nullable=False),
    Column("content_html", Text, nullable=False),
    Column("text", Text, nullable=False),
    Column("summary", Text),
    Column("tags", JSON, nullable=False),
    Column("content_hash", String(64), nullable=False),
    Column("fingerprint", String(64), nullable=False),
    #: id of the canonical entry this one duplicates; rows are linked, never deleted
    Column("duplicate_of", Integer, ForeignKey("entries.id")),
    Column("dup_reason", Text),
    #: the source no longer has it (a deleted post); kept, but not shown
    Column("gone", Boolean, nullable=False, default=False),
    UniqueConstraint("source_id", "guid", name="uq_entries_source_guid"),
)
Index("ix_entries_canonical_url", entries.c.canonical_url)
Index("ix_entries_fingerprint", entries.c.fingerprint)
Index("ix_entries_published", entries.c.published)


#: one row per run of a job (daemon or cron); feeds the health endpoint and status
runs = Table(
    "runs",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("job", String(32), nullable=False),
    Column("started", UTCDateTime, nullable=False),
    Column("finished", UTCDateTime),
    Column("ok", Boolean),
    Column("error", Text),
    Column("detail", Text),
    #: what the run changed (ingest: new + changed entries + links; build: files)
    Column("changes", Integer),
)
Index("ix_runs_job_started", runs.c.job, runs.c.started)

#: APScheduler's job table (its SQLAlchemyJobStore creates it): read-only here,
#: so `status` can list the schedule without starting a scheduler.
SCHEDULER_TABLE = "apscheduler_jobs"
_scheduler_jobs = Table(
    SCHEDULER_TABLE,
    MetaData(),
    Column("id", String(191), primary_key=True),
    Column("next_run_time", Float),
)


@dataclass(frozen=True)
class UpsertResult:
    new: int
    changed: int


def default_sqlite_parent(url: str) -> Path | None:
    """The directory a SQLite file URL needs, or None for other databases."""
    u = make_url(url)
    if u.get_backend_name() == "sqlite" and u.database and u.database != ":memory:":
        return Path(u.database).parent
    return None


class Store:
    """A handle on the database. Create with `Store.open(url)`."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @classmethod
    def open(cls, url: str) -> Store:
        """Open (and create if needed) the database at `url`."""
        try:
            parent = default_sqlite_parent(url)
            if parent is not None:
                parent.mkdir(parents=True, exist_ok=True)
            engine = create_engine(url)
            if engine.dialect.name == "sqlite":
                event.listen(engine, "connect", _sqlite_pragmas)
            metadata.create_all(engine)
        except (SQLAlchemyError, OSError) as e:
            raise StoreError(f"cannot open database {_safe(url)}: {e}") from None
        return cls(engine)

    def close(self) -> None:
        self.engine.dispose()

    @contextmanager
    def _tx(self) -> Iterator[Connection]:
        try:
            with self.engine.begin() as conn:
                yield conn
        except SQLAlchemyError as e:
            raise StoreError(f"database error: {e}") from e

    # -- sources -----------------------------------------------------------

    def ensure_source(self, source: Source) -> int:
        """Return the id of `source`, adding it (or renaming it) as needed."""
        with self._tx() as conn:
            row = conn.execute(
                select(sources.c.id, sources.c.name).where(sources.c.key == source.key)
            ).first()
            if row is None:
                return int(
                    conn.execute(
                        sources.insert().values(
                            kind=str(source.kind),
                            key=source.key,
                            name=source.name,
                            last_status="never",
                        )
                    ).inserted_primary_key[0]  # type: ignore[index]
                )
            if row.name != source.name:
                conn.execute(update(sources).where(sources.c.id == row.id).values(name=source.name))
            return int(row.id)

    def record_check(self, source_id: int, when: datetime, error: str | None) -> None:
        """Record the outcome of a scan or fetch of a source."""
        with self._tx() as conn:
            conn.execute(
                update(sources)
                .where(sources.c.id == source_id)
                .values(
                    last_checked=when,
                    last_status="error" if error else "ok",
                    last_error=error,
                )
            )

    def source_statuses(self, configured: Sequence[Source]) -> list[SourceStatus]:
        """Status of each configured source, in the given order."""
        with self._tx() as conn:
            counts: dict[int, int] = dict(
                conn.execute(
                    select(entries.c.source_id, func.count())
                    .where(entries.c.gone.is_(False))
                    .group_by(entries.c.source_id)
                ).all()
            )
            rows = {r.key: r for r in conn.execute(select(sources)).all()}
        out = []
        for s in configured:
            r = rows.get(s.key)
            out.append(
                SourceStatus(
                    source=s,
                    last_checked=r.last_checked if r else None,
                    last_status=r.last_status if r else "never",
                    last_error=r.last_error if r else None,
                    entry_count=int(counts.get(r.id, 0)) if r else 0,
                )
            )
        return out

    # -- entries -----------------------------------------------------------

    def upsert_entries(self, source_id: int, batch: Sequence[Entry], now: datetime) -> UpsertResult:
        """Insert new entries and update changed ones; (source, guid) is the key.

        Re-ingesting the same entries changes nothing. An entry whose content
        hash changed is updated in place and keeps its id and first_seen.
        """
        new = changed = 0
        with self._tx() as conn:
            known = {
                r.guid: (r.id, r.content_hash, r.gone)
                for r in conn.execute(
                    select(
                        entries.c.id, entries.c.guid, entries.c.content_hash, entries.c.gone
                    ).where(entries.c.source_id == source_id)
                ).all()
            }
            seen: set[str] = set()
            for e in batch:
                if e.guid in seen:  # the same guid twice in one batch: first wins
                    continue
                seen.add(e.guid)
                values = _entry_values(e)
                old = known.get(e.guid)
                if old is None:
                    conn.execute(
                        entries.insert().values(source_id=source_id, first_seen=now, **values)
                    )
                    new += 1
                elif old[1] != e.content_hash or old[2]:
                    conn.execute(update(entries).where(entries.c.id == old[0]).values(**values))
                    changed += 1
        return UpsertResult(new=new, changed=changed)

    def mark_gone(self, source_id: int, present: Iterable[str]) -> int:
        """Mark entries of a source whose guid is not in `present` as gone."""
        keep = set(present)
        with self._tx() as conn:
            rows = conn.execute(
                select(entries.c.id, entries.c.guid).where(
                    entries.c.source_id == source_id, entries.c.gone.is_(False)
                )
            ).all()
            ids = [r.id for r in rows if r.guid not in keep]
            if ids:
                conn.execute(update(entries).where(entries.c.id.in_(ids)).values(gone=True))
        return len(ids)

    def dedupe_candidates(self) -> list[DedupeCandidate]:
        """Every visible entry, with the fields dedupe compares."""
        q = (
            select(
                entries.c.id, entries.c.source_id, sources.c.kind, entries.c.canonical_url,
                entries.c.fingerprint, entries.c.published,
            )
            .join(sources, sources.c.id == entries.c.source_id)
            .where(entries.c.gone.is_(False))
        )  # fmt: skip
        with self._tx() as conn:
            return [
                DedupeCandidate(
                    id=r.id, source_id=r.source_id, kind=SourceKind(r.kind),
                    canonical_url=r.canonical_url, fingerprint=r.fingerprint,
                    published=r.published,
                )
                for r in conn.execute(q).all()
            ]  # fmt: skip

    def replace_dupe_links(self, links: Sequence[DupeLink]) -> None:
        """Make `links` the whole set of duplicate links."""
        with self._tx() as conn:
            conn.execute(
                update(entries)
                .where(entries.c.duplicate_of.is_not(None))
                .values(duplicate_of=None, dup_reason=None)
            )
            for link in links:
                conn.execute(
                    update(entries)
                    .where(entries.c.id == link.entry_id)
                    .values(duplicate_of=link.canonical_id, dup_reason=link.reason)
                )

    def visible_entries(
        self, now: datetime, source_keys: Sequence[str] | None = None
    ) -> list[StoredEntry]:
        """Canonical entries to show, newest first: not gone, not duplicates,
        not dated in the future, from the given sources (default: all)."""
        q = (
            select(entries, sources.c.kind, sources.c.key, sources.c.name)
            .join(sources, sources.c.id == entries.c.source_id)
            .where(
                entries.c.gone.is_(False),
                entries.c.duplicate_of.is_(None),
                entries.c.published <= now,
            )
            .order_by(entries.c.published.desc(), entries.c.id.desc())
        )
        if source_keys is not None:
            q = q.where(sources.c.key.in_(list(source_keys)))
        with self._tx() as conn:
            return [_stored(r) for r in conn.execute(q).all()]

    def duplicates_of(self, ids: Sequence[int]) -> dict[int, list[StoredEntry]]:
        """For each canonical id, the visible entries linked to it."""
        if not ids:
            return {}
        q = (
            select(entries, sources.c.kind, sources.c.key, sources.c.name)
            .join(sources, sources.c.id == entries.c.source_id)
            .where(entries.c.duplicate_of.in_(list(ids)), entries.c.gone.is_(False))
            .order_by(entries.c.id)
        )
        out: dict[int, list[StoredEntry]] = {}
        with self._tx() as conn:
            for r in conn.execute(q).all():
                out.setdefault(r.duplicate_of, []).append(_stored(r))
        return out

    def entry_count(self) -> int:
        with self._tx() as conn:
            return int(conn.execute(select(func.count()).select_from(entries)).scalar_one())

    # -- runs, health and housekeeping (the daemon issue) ------------------

    def entry_stats(self, since: datetime) -> tuple[int, int]:
        """(entries stored in all, entries first seen at or after `since`)."""
        with self._tx() as conn:
            total = conn.execute(select(func.count()).select_from(entries)).scalar_one()
            new = conn.execute(
                select(func.count()).select_from(entries).where(entries.c.first_seen >= since)
            ).scalar_one()
        return int(total), int(new)

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

    def optimize(self, *, vacuum: bool) -> None:
        """Refresh the planner's statistics (ANALYZE); VACUUM too if asked.

        VACUUM cannot run inside a transaction, so it gets an autocommit
        connection; on SQLite in WAL mode it also truncates the WAL file.
        """
        try:
            with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.execute(text("ANALYZE"))
                if vacuum:
                    conn.execute(text("VACUUM"))
                    if self.engine.dialect.name == "sqlite":
                        conn.execute(text("PRAGMA wal_checkpoint(TRUNCATE)"))
        except SQLAlchemyError as e:
            raise StoreError(f"database maintenance failed: {e}") from e

    def integrity_check(self) -> str:
        """ "ok", or what SQLite's integrity check found (other databases: "ok")."""
        if self.engine.dialect.name != "sqlite":
            return "ok"
        with self._tx() as conn:
            rows = conn.execute(text("PRAGMA integrity_check")).scalars().all()
        return "; ".join(str(r) for r in rows)

    def scheduled_jobs(self) -> list[ScheduledJob]:
        """The daemon's persistent schedule (empty if it never ran)."""
        with self._tx() as conn:
            if not inspect(conn).has_table(SCHEDULER_TABLE):
                return []
            rows = conn.execute(
                select(_scheduler_jobs.c.id, _scheduler_jobs.c.next_run_time).order_by(
                    _scheduler_jobs.c.next_run_time
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


def _entry_values(e: Entry) -> dict[str, Any]:
    return {
        "guid": e.guid,
        "link": e.link,
        "canonical_url": e.canonical_url,
        "title": e.title,
        "author": e.author,
        "published": e.published,
        "updated": e.updated,
        "content_html": e.content_html,
        "text": e.text,
        "summary": e.summary,
        "tags": list(e.tags),
        "content_hash": e.content_hash,
        "fingerprint": e.fingerprint,
        "gone": False,
    }


def _stored(r: Any) -> StoredEntry:
    tags = r.tags if isinstance(r.tags, list) else json.loads(r.tags or "[]")
    return StoredEntry(
        id=r.id,
        source=Source(kind=SourceKind(r.kind), key=r.key, name=r.name),
        entry=Entry(
            guid=r.guid, title=r.title, link=r.link, canonical_url=r.canonical_url,
            published=r.published, updated=r.updated, author=r.author,
            content_html=r.content_html, text=r.text, summary=r.summary, tags=tuple(tags),
            content_hash=r.content_hash, fingerprint=r.fingerprint,
        ),
        first_seen=r.first_seen,
        duplicate_of=r.duplicate_of,
        dup_reason=r.dup_reason,
    )  # fmt: skip


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=10000")
    cur.close()


def _safe(url: str) -> str:
    """The URL without its password, for messages."""
    return make_url(url).render_as_string(hide_password=True)
