"""The store: SQLAlchemy Core schema, upserts and every query.

The only module that writes SQL. Rows go in and come out as model values;
no session or row object leaves this module. Portable between SQLite (the
default, WAL mode) and PostgreSQL: no SQLite-only SQL outside a dialect check.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from alembic.util import CommandError as AlembicError
from sqlalchemy import (
    JSON,
    BigInteger,
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
    bindparam,
    cast,
    create_engine,
    delete,
    event,
    func,
    insert,
    inspect,
    or_,
    select,
    text,
    true,
    type_coerce,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.sql.elements import ColumnElement

from aggregator import migrations
from aggregator.errors import StoreError
from aggregator.model import (
    ContentFileState,
    DedupeCandidate,
    Delivery,
    DeliveryStatus,
    DupeCluster,
    DupeLink,
    Entry,
    FeedMeta,
    FeedState,
    Issue,
    JobStatus,
    LshIndex,
    Run,
    ScheduledJob,
    Source,
    SourceKind,
    SourceStatus,
    StoredEntry,
    Subscriber,
    SubscriberStatus,
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
    #: what an external feed says about itself (FeedMeta), for atom:source
    Column("feed_id", Text),
    Column("feed_title", Text),
    Column("feed_link", Text),
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
    #: dedupe's MinHash index of the text (model.LshIndex as [version, weight,
    #: keys]), computed where the entry was normalized; NULL: compute from text
    Column("lsh", JSON),
    #: id of the canonical entry this one duplicates; rows are linked, never deleted
    Column("duplicate_of", Integer, ForeignKey("entries.id")),
    Column("dup_reason", Text),
    #: the similarity that confirmed a text match (dedupe "near"), if any
    Column("dup_score", Float),
    #: the source no longer has it (a deleted post); kept, but not shown
    Column("gone", Boolean, nullable=False, default=False),
    UniqueConstraint("source_id", "guid", name="uq_entries_source_guid"),
)
#: what the last content scan saw of each file (issue 3: incremental scan)
content_files = Table(
    "content_files",
    metadata,
    Column("source_id", Integer, ForeignKey("sources.id"), nullable=False),
    Column("path", Text, nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("mtime_ns", BigInteger, nullable=False),
    Column("hash", String(64), nullable=False),
    Column("guid", Text),
    Column("link", Text),
    Column("settings_hash", String(64), nullable=False),
    UniqueConstraint("source_id", "path", name="uq_content_files_source_path"),
)

#: per-feed fetch state (issue 4); the feed list itself lives in config.toml
feed_state = Table(
    "feed_state",
    metadata,
    Column("source_id", Integer, ForeignKey("sources.id"), primary_key=True),
    Column("etag", Text),
    Column("last_modified", Text),
    Column("body_hash", String(64)),
    Column("next_fetch", UTCDateTime),
    Column("consecutive_errors", Integer, nullable=False, default=0),
    Column("disabled_reason", Text),
    Column("moved_to", Text),
    Column("last_success", UTCDateTime),
)

Index("ix_entries_canonical_url", entries.c.canonical_url)
Index("ix_entries_fingerprint", entries.c.fingerprint)
Index("ix_entries_published", entries.c.published)
Index("ix_entries_guid", entries.c.guid)
Index("ix_entries_source_link", entries.c.source_id, entries.c.link)
Index("ix_entries_duplicate_of", entries.c.duplicate_of)

#: LSH buckets of dedupe: one row per (entry, band key); entries sharing a key
#: are near-duplicate candidates. Kept for visible entries only.
dedupe_keys = Table(
    "dedupe_keys",
    metadata,
    Column("entry_id", Integer, ForeignKey("entries.id"), nullable=False),
    Column("key", BigInteger, nullable=False),
)
Index("ix_dedupe_keys_key", dedupe_keys.c.key)
Index("ix_dedupe_keys_entry", dedupe_keys.c.entry_id)

#: entries new, changed or gone since dedupe last looked at them (issue 5). A
#: narrow table of its own, not a flag on the entry: setting or clearing a
#: flag rewrote the whole wide row (html and text, ~6 KB each; 17,000 rows
#: after a first ingest: 0.3 s to clear), a queue row is a few bytes.
dedupe_queue = Table(
    "dedupe_queue",
    metadata,
    Column("entry_id", Integer, ForeignKey("entries.id"), primary_key=True),
)

#: merges the user undid (`aggregator dupes split`): these two entries are
#: different articles, in every later clustering. entry_id < other_id.
dupe_splits = Table(
    "dupe_splits",
    metadata,
    Column("entry_id", Integer, ForeignKey("entries.id"), primary_key=True),
    Column("other_id", Integer, ForeignKey("entries.id"), primary_key=True),
    Column("created", UTCDateTime, nullable=False),
)

# -- the email digest (issue 7) ---------------------------------------------

subscribers = Table(
    "subscribers",
    metadata,
    Column("id", Integer, primary_key=True),
    #: normalized by email-validator; compared case-insensitively via email_key
    Column("email", Text, nullable=False),
    Column("email_key", Text, nullable=False, unique=True),
    Column("name", Text, nullable=False, default=""),
    Column("status", String(16), nullable=False),
    Column("token", String(64), nullable=False, unique=True),
    Column("in_config", Boolean, nullable=False, default=False),
    Column("note", Text, nullable=False, default=""),
    Column("created", UTCDateTime, nullable=False),
    Column("updated", UTCDateTime, nullable=False),
)

issues = Table(
    "issues",
    metadata,
    Column("key", String(32), primary_key=True),
    Column("cutoff", UTCDateTime, nullable=False),
    Column("subject", Text, nullable=False),
    Column("html", Text, nullable=False),
    Column("text", Text, nullable=False),
    Column("archive_html", Text, nullable=False),
    Column("entry_count", Integer, nullable=False),
    Column("shown_count", Integer, nullable=False),
    Column("created", UTCDateTime, nullable=False),
)
Index("ix_issues_cutoff", issues.c.cutoff)

deliveries = Table(
    "deliveries",
    metadata,
    Column("issue", String(32), ForeignKey("issues.key"), primary_key=True),
    Column("subscriber_id", Integer, ForeignKey("subscribers.id"), primary_key=True),
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("error", Text),
    Column("owner", Text),
    Column("claimed_at", UTCDateTime),
    Column("sent_at", UTCDateTime),
    Column("updated", UTCDateTime, nullable=False),
)


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
            elif engine.dialect.name == "postgresql":
                event.listen(engine, "before_cursor_execute", _drop_nul, retval=True)
            # Creates a fresh database, upgrades an older one (StoreError if it cannot).
            migrations.upgrade(engine, _safe(url))
        except (SQLAlchemyError, OSError, AlembicError) as e:
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
        return self.ensure_sources([source])[source.key]

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
        states = self.feed_states([s.key for s in configured])
        out = []
        for s in configured:
            r = rows.get(s.key)
            fs = states.get(s.key, FeedState())
            out.append(
                SourceStatus(
                    source=s,
                    last_checked=r.last_checked if r else None,
                    last_status=r.last_status if r else "never",
                    last_error=r.last_error if r else None,
                    entry_count=int(counts.get(r.id, 0)) if r else 0,
                    disabled_reason=fs.disabled_reason,
                    moved_to=fs.moved_to,
                    next_fetch=fs.next_fetch,
                    consecutive_errors=fs.consecutive_errors,
                )
            )
        return out

    # -- feed state (issue 4) ------------------------------------------------

    def feed_states(self, keys: Sequence[str] | None = None) -> dict[str, FeedState]:
        """The fetch state of each feed that has one, by source key."""
        q = select(feed_state, sources.c.key).join(sources, sources.c.id == feed_state.c.source_id)
        with self._tx() as conn:
            rows = conn.execute(q).all()
        wanted = set(keys) if keys is not None else None
        return {
            r.key: FeedState(
                etag=r.etag,
                last_modified=r.last_modified,
                body_hash=r.body_hash,
                next_fetch=r.next_fetch,
                consecutive_errors=r.consecutive_errors,
                disabled_reason=r.disabled_reason,
                moved_to=r.moved_to,
                last_success=r.last_success,
            )
            for r in rows
            if wanted is None or r.key in wanted
        }

    def save_feed_state(self, source_id: int, state: FeedState) -> None:
        """Replace the fetch state of one feed."""
        with self._tx() as conn:
            _put_feed_state(conn, source_id, state)

    def record_feed_checks(
        self, checks: Sequence[tuple[int, FeedState, str | None]], when: datetime
    ) -> None:
        """For many feeds at once (one transaction): the new fetch state, and the
        outcome of the check as `record_check` records it (error or None)."""
        # One statement per kind of row, not three per feed: an ingest of 500
        # feeds ends here, and every feed's state changes.
        latest = {source_id: (state, error) for source_id, state, error in checks}
        if not latest:
            return
        with self._tx() as conn:
            have: set[int] = set()
            for chunk in _chunks(latest):
                have.update(
                    conn.execute(
                        select(feed_state.c.source_id).where(feed_state.c.source_id.in_(chunk))
                    ).scalars()
                )
            known = [
                {"_id": i, **_feed_state_values(st)} for i, (st, _) in latest.items() if i in have
            ]
            new = [
                {"source_id": i, **_feed_state_values(st)}
                for i, (st, _) in latest.items()
                if i not in have
            ]
            if known:
                conn.execute(
                    update(feed_state).where(feed_state.c.source_id == bindparam("_id")), known
                )
            if new:
                conn.execute(feed_state.insert(), new)
            conn.execute(
                update(sources).where(sources.c.id == bindparam("_id")),
                [
                    {
                        "_id": i,
                        "last_checked": when,
                        "last_status": "error" if error else "ok",
                        "last_error": error,
                    }
                    for i, (_, error) in latest.items()
                ],
            )

    def ensure_sources(self, many: Sequence[Source]) -> dict[str, int]:
        """`ensure_source` for many sources in one transaction: key -> id."""
        out: dict[str, int] = {}
        with self._tx() as conn:
            rows = {
                r.key: r
                for r in conn.execute(select(sources.c.id, sources.c.key, sources.c.name)).all()
            }
            for source in many:
                row = rows.get(source.key)
                if row is None:
                    out[source.key] = int(
                        conn.execute(
                            sources.insert().values(
                                kind=str(source.kind),
                                key=source.key,
                                name=source.name,
                                last_status="never",
                            )
                        ).inserted_primary_key[0]  # type: ignore[index]
                    )
                    continue
                if row.name != source.name:
                    conn.execute(
                        update(sources).where(sources.c.id == row.id).values(name=source.name)
                    )
                out[source.key] = int(row.id)
        return out

    def forget_feed_state(self, key: str) -> None:
        """Drop a feed's fetch state (re-added feed: fetch it afresh, re-enabled)."""
        with self._tx() as conn:
            row = conn.execute(select(sources.c.id).where(sources.c.key == key)).first()
            if row is not None:
                conn.execute(feed_state.delete().where(feed_state.c.source_id == row.id))

    # -- entries -----------------------------------------------------------

    def upsert_entries(self, source_id: int, batch: Sequence[Entry], now: datetime) -> UpsertResult:
        """Insert new entries and update changed ones; (source, guid) is the key.

        Re-ingesting the same entries changes nothing. An entry whose content
        hash changed is updated in place and keeps its id and first_seen.
        """
        with self._tx() as conn:
            return _upsert_entries(conn, source_id, batch, now)

    def upsert_feeds(
        self, feeds: Sequence[tuple[int, Sequence[Entry], FeedMeta | None]], now: datetime
    ) -> list[UpsertResult]:
        """upsert_entries for several feeds, each with what it says about
        itself (record_feed_meta), in one transaction."""
        out = []
        with self._tx() as conn:
            for source_id, batch, meta in feeds:
                out.append(_upsert_entries(conn, source_id, batch, now))
                if meta is not None:
                    _put_feed_meta(conn, source_id, meta)
        return out

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
            for chunk in _chunks(ids):
                conn.execute(update(entries).where(entries.c.id.in_(chunk)).values(gone=True))
            _queue_dedupe(conn, ids)
        return len(ids)

    # -- content scan state ---------------------------------------------------

    def content_files(self, source_id: int) -> dict[str, ContentFileState]:
        """What the last scan of a content source saw, by relative path."""
        with self._tx() as conn:
            rows = conn.execute(
                select(content_files).where(content_files.c.source_id == source_id)
            ).all()
        return {
            r.path: ContentFileState(
                path=r.path, size=r.size, mtime_ns=r.mtime_ns, hash=r.hash, guid=r.guid,
                link=r.link, settings_hash=r.settings_hash,
            )
            for r in rows
        }  # fmt: skip

    def save_content_files(
        self, source_id: int, states: Sequence[ContentFileState], removed: Sequence[str]
    ) -> None:
        """Write the state of new/changed files and forget removed ones, in one transaction."""
        paths = [s.path for s in states] + list(removed)
        if not paths:
            return
        with self._tx() as conn:
            for i in range(0, len(paths), 500):
                conn.execute(
                    delete(content_files).where(
                        content_files.c.source_id == source_id,
                        content_files.c.path.in_(paths[i : i + 500]),
                    )
                )
            if states:
                conn.execute(
                    content_files.insert(),
                    [{"source_id": source_id, **s.__dict__} for s in states],
                )

    def dedupe_candidates(self, ids: Iterable[int] | None = None) -> list[DedupeCandidate]:
        """Visible (not gone) entries with the fields dedupe compares: all of
        them, or those among `ids`."""
        q = (
            select(
                entries.c.id, entries.c.source_id, sources.c.kind, entries.c.canonical_url,
                entries.c.fingerprint, entries.c.published, entries.c.guid, entries.c.link,
            )
            .join(sources, sources.c.id == entries.c.source_id)
            .where(entries.c.gone.is_(False))
        )  # fmt: skip
        with self._tx() as conn:
            rows = (
                conn.execute(q).all()
                if ids is None
                else [r for cond in _id_filters(entries.c.id, ids) for r in conn.execute(
                    q.where(cond)).all()]
            )  # fmt: skip
        return [
            DedupeCandidate(
                id=r.id, source_id=r.source_id, kind=SourceKind(r.kind),
                canonical_url=r.canonical_url, fingerprint=r.fingerprint,
                published=r.published, guid=r.guid, link=r.link,
            )
            for r in rows
        ]  # fmt: skip

    # -- dedupe index and links (issue 5) ----------------------------------

    def dedupe_dirty_ids(self) -> list[int]:
        """Entries new, changed or gone since dedupe last looked at them."""
        q = select(dedupe_queue.c.entry_id).order_by(dedupe_queue.c.entry_id)
        with self._tx() as conn:
            return list(conn.execute(q).scalars())

    def clear_dedupe_dirty(self, ids: Iterable[int]) -> None:
        """Dedupe has looked at `ids`."""
        with self._tx() as conn:
            for cond in _id_filters(dedupe_queue.c.entry_id, ids):
                conn.execute(delete(dedupe_queue).where(cond))

    def entry_texts(self, ids: Iterable[int]) -> dict[int, str]:
        """The plain text of each of `ids`."""
        out: dict[int, str] = {}
        with self._tx() as conn:
            for cond in _id_filters(entries.c.id, ids):
                q = select(entries.c.id, entries.c.text).where(cond)
                out.update((r.id, r.text) for r in conn.execute(q).all())
        return out

    def entry_lsh(self, ids: Iterable[int]) -> dict[int, LshIndex | None]:
        """The stored LSH index of each of `ids` (None where none was stored)."""
        out: dict[int, LshIndex | None] = {}
        with self._tx() as conn:
            for cond in _id_filters(entries.c.id, ids):
                # As text, decoded once by _lsh: the JSON type's own decoding
                # per row cost as much as the query (17,000 new entries).
                q = select(entries.c.id, type_coerce(entries.c.lsh, Text)).where(cond)
                out.update((i, _lsh(value)) for i, value in conn.execute(q))
        return out

    def replace_lsh_keys(self, ids: Iterable[int], keys: Mapping[int, Sequence[int]]) -> None:
        """Drop the LSH keys of `ids`, then record `keys` (entry id -> band keys)."""
        with self._tx() as conn:
            for cond in _id_filters(dedupe_keys.c.entry_id, ids):
                conn.execute(delete(dedupe_keys).where(cond))
            rows = [(i, k) for i, ks in keys.items() for k in ks]
            _insert_plain(conn, dedupe_keys, ("entry_id", "key"), rows)

    def index_stored_lsh(
        self, ids: Iterable[int], version: int, min_weight: float
    ) -> set[int] | None:
        """replace_lsh_keys for `ids` from the index stored with each entry,
        inside the database (no row read out): the keys
        fingerprint.index_keys(index, min_weight) gives, for the visible
        entries whose entries.lsh is of `version`.

        Returns the visible ids whose stored index is missing or of another
        version (the caller computes their keys from the text), or None on
        a database without JSON array functions: nothing was done then.
        """
        dialect = self.engine.dialect.name
        if dialect not in ("sqlite", "postgresql"):
            return None
        lsh = entries.c.lsh
        current = func.coalesce(lsh[0].as_integer(), -1) == version
        if dialect == "sqlite":
            band = func.json_each(lsh, "$[2]").table_valued("value")
            key: ColumnElement[Any] = band.c.value
        else:
            band = func.json_array_elements_text(lsh[2]).table_valued("value")
            key = cast(band.c.value, BigInteger)
        stale: set[int] = set()
        ids = list(ids)
        with self._tx() as conn:
            for kcond in _id_filters(dedupe_keys.c.entry_id, ids):
                conn.execute(delete(dedupe_keys).where(kcond))
            for cond in _id_filters(entries.c.id, ids):
                keys = (
                    select(entries.c.id, key)
                    .select_from(entries.join(band, true()))
                    .where(cond, entries.c.gone.is_(False), current)
                    .where(lsh[1].as_float() >= min_weight)
                )
                conn.execute(insert(dedupe_keys).from_select(["entry_id", "key"], keys))
                q = select(entries.c.id).where(cond, entries.c.gone.is_(False), ~current)
                stale.update(conn.execute(q).scalars())
        return stale

    def dedupe_neighbours(
        self, candidates: Sequence[DedupeCandidate], lsh: Iterable[int], max_group: int
    ) -> set[int]:
        """Visible entries sharing a guid, canonical URL, fingerprint, link
        (within the source) or LSH key with `candidates`.

        Uses the indexes only. A key shared by more than `max_group` entries
        proposes nothing (dedupe skips such groups), so it is not expanded.
        """
        found: set[int] = set()
        live = entries.c.gone.is_(False)
        columns = (
            (entries.c.guid, {c.guid for c in candidates if c.guid}),
            (entries.c.canonical_url, {c.canonical_url for c in candidates if c.canonical_url}),
            (entries.c.fingerprint, {c.fingerprint for c in candidates if c.fingerprint}),
        )
        with self._tx() as conn:
            for col, values in columns:
                for chunk in _chunks(values):
                    small = (
                        select(col)
                        .where(col.in_(chunk), live)
                        .group_by(col)
                        .having(func.count() <= max_group)
                    )
                    found.update(conn.execute(select(entries.c.id).where(col.in_(small))).scalars())
            # Same link within the source: one query per source and chunk of
            # links (not one per entry), at most max_group + 1 ids per link.
            links: dict[int, set[str]] = defaultdict(set)
            for c in candidates:
                if c.link:
                    links[c.source_id].add(c.link)
            for source_id, source_links in links.items():
                for chunk in _chunks(source_links):
                    q = (
                        select(entries.c.id, entries.c.link)
                        .where(entries.c.source_id == source_id, entries.c.link.in_(chunk), live)
                        .order_by(entries.c.id)
                    )
                    per_link: dict[str, int] = defaultdict(int)
                    for entry_id, link in conn.execute(q):
                        per_link[link] += 1
                        if per_link[link] <= max_group + 1:
                            found.add(entry_id)
            for chunk in _chunks(set(lsh)):
                found.update(
                    i for ids in self._buckets(conn, chunk, max_group).values() for i in ids
                )
        return found

    def lsh_buckets(self, ids: Iterable[int] | None, max_group: int) -> dict[int, list[int]]:
        """LSH buckets (key -> entry ids) holding two to `max_group` entries:
        every such bucket, or those holding any of `ids`."""
        with self._tx() as conn:
            if ids is None:
                shared = (
                    select(dedupe_keys.c.key)
                    .group_by(dedupe_keys.c.key)
                    .having(func.count() > 1, func.count() <= max_group)
                )
                out: dict[int, list[int]] = defaultdict(list)
                q = select(dedupe_keys.c.key, dedupe_keys.c.entry_id).where(
                    dedupe_keys.c.key.in_(shared)
                )
                for key, entry_id in conn.execute(q):
                    out[key].append(entry_id)
                return dict(out)
            out = {}
            for cond in _id_filters(dedupe_keys.c.entry_id, ids):
                keys = conn.execute(select(dedupe_keys.c.key).where(cond).distinct()).scalars()
                for kchunk in _chunks(set(keys)):
                    out.update(self._buckets(conn, kchunk, max_group))
            return out

    @staticmethod
    def _buckets(conn: Connection, keys: Sequence[int], max_group: int) -> dict[int, list[int]]:
        small = (
            select(dedupe_keys.c.key)
            .where(dedupe_keys.c.key.in_(keys))
            .group_by(dedupe_keys.c.key)
            .having(func.count() > 1, func.count() <= max_group)
        )
        out: dict[int, list[int]] = defaultdict(list)
        q = select(dedupe_keys.c.key, dedupe_keys.c.entry_id).where(dedupe_keys.c.key.in_(small))
        for key, entry_id in conn.execute(q):
            out[key].append(entry_id)
        return dict(out)

    def cluster_mates(self, ids: Iterable[int]) -> set[int]:
        """`ids` and every entry in the same dedupe cluster as one of them."""
        wanted = set(ids)
        heads: set[int] = set(wanted)
        out: set[int] = set(wanted)
        with self._tx() as conn:
            for cond in _id_filters(entries.c.id, wanted):
                q = select(entries.c.duplicate_of).where(cond, entries.c.duplicate_of.is_not(None))
                heads.update(conn.execute(q).scalars())
            for chunk in _chunks(heads):
                q = select(entries.c.id).where(
                    or_(entries.c.id.in_(chunk), entries.c.duplicate_of.in_(chunk))
                )
                out.update(conn.execute(q).scalars())
        return out

    def linked_ids(self) -> set[int]:
        """Every entry currently linked to a canonical entry."""
        with self._tx() as conn:
            q = select(entries.c.id).where(entries.c.duplicate_of.is_not(None))
            return set(conn.execute(q).scalars())

    def dupe_splits(self, ids: Iterable[int] | None = None) -> set[frozenset[int]]:
        """Pairs the user split apart: all, or those involving any of `ids`."""
        q = select(dupe_splits.c.entry_id, dupe_splits.c.other_id)
        out: set[frozenset[int]] = set()
        with self._tx() as conn:
            if ids is None:
                return {frozenset(r) for r in conn.execute(q)}
            for chunk in _chunks(ids):
                rows = conn.execute(
                    q.where(
                        or_(dupe_splits.c.entry_id.in_(chunk), dupe_splits.c.other_id.in_(chunk))
                    )
                )
                out.update(frozenset(r) for r in rows)
        return out

    def add_dupe_splits(self, entry_id: int, others: Iterable[int], now: datetime) -> None:
        """Record that `entry_id` is a different article from each of `others`."""
        known = self.dupe_splits([entry_id])
        rows = [
            {"entry_id": min(entry_id, o), "other_id": max(entry_id, o), "created": now}
            for o in sorted(set(others) - {entry_id})
            if frozenset((entry_id, o)) not in known
        ]
        if rows:
            with self._tx() as conn:
                conn.execute(dupe_splits.insert(), rows)

    def apply_dupe_links(self, scope: Iterable[int], links: Sequence[DupeLink]) -> int:
        """Make `links` the duplicate links of the entries in `scope`: an entry
        of `scope` with no link becomes canonical. Only rows that differ are
        written. Returns how many entries were newly linked or moved."""
        want = {link.entry_id: (link.canonical_id, link.reason, link.score) for link in links}
        ids = set(scope) | set(want)
        changes: list[dict[str, Any]] = []
        moved = 0
        with self._tx() as conn:
            for cond in _id_filters(entries.c.id, ids):
                q = select(
                    entries.c.id, entries.c.duplicate_of, entries.c.dup_reason, entries.c.dup_score
                ).where(cond)
                for r in conn.execute(q).all():
                    new = want.get(r.id, (None, None, None))
                    if (r.duplicate_of, r.dup_reason, r.dup_score) != new:
                        if new[0] is not None and new[0] != r.duplicate_of:
                            moved += 1
                        changes.append(
                            {"b_id": r.id, "b_dup": new[0], "b_reason": new[1], "b_score": new[2]}
                        )
            if changes:
                conn.execute(
                    update(entries)
                    .where(entries.c.id == bindparam("b_id"))
                    .values(
                        duplicate_of=bindparam("b_dup"),
                        dup_reason=bindparam("b_reason"),
                        dup_score=bindparam("b_score"),
                    ),
                    changes,
                )
        return moved

    def dupe_clusters(self) -> list[DupeCluster]:
        """Every cluster of visible entries: its canonical entry and copies,
        newest canonical first."""
        q = (
            select(entries, sources.c.kind, sources.c.key, sources.c.name)
            .join(sources, sources.c.id == entries.c.source_id)
            .where(entries.c.gone.is_(False))
        )
        with self._tx() as conn:
            copies = [
                _stored(r)
                for r in conn.execute(
                    q.where(entries.c.duplicate_of.is_not(None)).order_by(entries.c.id)
                ).all()
            ]
            head_ids = sorted({c.duplicate_of for c in copies if c.duplicate_of is not None})
            heads = {
                r.id: _stored(r)
                for chunk in _chunks(head_ids)
                for r in conn.execute(q.where(entries.c.id.in_(chunk))).all()
            }  # fmt: skip
        grouped: dict[int, list[StoredEntry]] = defaultdict(list)
        for c in copies:
            if c.duplicate_of is not None and c.duplicate_of in heads:
                grouped[c.duplicate_of].append(c)
        clusters = [DupeCluster(heads[h], tuple(cs)) for h, cs in grouped.items()]
        return sorted(clusters, key=lambda c: (c.canonical.entry.published, c.canonical.id),
                      reverse=True)  # fmt: skip

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

    def record_feed_meta(self, source_id: int, meta: FeedMeta) -> None:
        """Remember what an external feed says about itself (its id, title, link)."""
        with self._tx() as conn:
            _put_feed_meta(conn, source_id, meta)

    def feed_meta(self) -> dict[str, FeedMeta]:
        """FeedMeta of every source that has any, by source key."""
        q = select(sources.c.key, sources.c.feed_id, sources.c.feed_title, sources.c.feed_link)
        with self._tx() as conn:
            return {
                r.key: FeedMeta(id=r.feed_id, title=r.feed_title, link=r.feed_link)
                for r in conn.execute(q).all()
                if r.feed_id or r.feed_title or r.feed_link
            }

    def entry_slots(self) -> list[int]:
        """Every entry id ever stored, in arrival order: the feed archives' slots.

        Ordered by first_seen, so entries that arrive later always come last
        (rows are never deleted, so the list only grows at its end; see
        digest.feed_history); within one ingest, oldest published first, so
        a first import archives the history in date order.
        """
        q = select(entries.c.id).order_by(entries.c.first_seen, entries.c.published, entries.c.id)
        with self._tx() as conn:
            return list(conn.execute(q).scalars())

    def entry_count(self) -> int:
        with self._tx() as conn:
            return int(conn.execute(select(func.count()).select_from(entries)).scalar_one())

    # -- subscribers (issue 7) ----------------------------------------------

    def sync_subscribers(
        self, listed: Sequence[tuple[str, str]], new_token: Callable[[], str], now: datetime
    ) -> None:
        """Make the database agree with config.toml's [[subscribers]] (email, name).

        A listed address is added (active, with a fresh token) or gets its name
        from the config; its status is never changed, so someone who
        unsubscribed stays unsubscribed. An address that leaves config.toml is
        marked unsubscribed ("removed from config.toml"); listed again, it is
        active again. Rows are never deleted: deliveries refer to them.
        """
        wanted = {email.lower(): (email, name) for email, name in listed}
        with self._tx() as conn:
            rows = {r.email_key: r for r in conn.execute(select(subscribers)).all()}
            for key, (email, name) in wanted.items():
                row = rows.get(key)
                if row is None:
                    # DO NOTHING: another process (a second `send`, the daemon)
                    # may add the same address at the same moment.
                    conn.execute(
                        _insert(conn, subscribers).values(
                            email=email, email_key=key, name=name, token=new_token(),
                            status=str(SubscriberStatus.ACTIVE), in_config=True,
                            note="listed in config.toml", created=now, updated=now,
                        ).on_conflict_do_nothing()
                    )  # fmt: skip
                    continue
                values: dict[str, Any] = {}
                if row.name != name:
                    values["name"] = name
                if not row.in_config:
                    values["in_config"] = True
                    if row.note == _REMOVED_FROM_CONFIG:
                        values.update(status=str(SubscriberStatus.ACTIVE), note="listed again")
                if values:
                    conn.execute(
                        update(subscribers)
                        .where(subscribers.c.id == row.id)
                        .values(updated=now, **values)
                    )
            for key, row in rows.items():
                if row.in_config and key not in wanted:
                    values = {"in_config": False, "updated": now}
                    if row.status == SubscriberStatus.ACTIVE:
                        values.update(
                            status=str(SubscriberStatus.UNSUBSCRIBED), note=_REMOVED_FROM_CONFIG
                        )
                    conn.execute(
                        update(subscribers).where(subscribers.c.id == row.id).values(**values)
                    )

    def add_subscriber(self, email: str, name: str, token: str, now: datetime) -> Subscriber:
        """Add a subscriber, or make an existing one active again (an admin's decision)."""
        key = email.lower()
        with self._tx() as conn:
            row = conn.execute(select(subscribers).where(subscribers.c.email_key == key)).first()
            if row is None:
                conn.execute(
                    subscribers.insert().values(
                        email=email, email_key=key, name=name, token=token,
                        status=str(SubscriberStatus.ACTIVE), in_config=False,
                        note="added by admin", created=now, updated=now,
                    )
                )  # fmt: skip
            else:
                conn.execute(
                    update(subscribers)
                    .where(subscribers.c.id == row.id)
                    .values(
                        status=str(SubscriberStatus.ACTIVE),
                        name=name or row.name,
                        note="added by admin",
                        updated=now,
                    )
                )
            new = conn.execute(select(subscribers).where(subscribers.c.email_key == key)).one()
        return _subscriber(new)

    def subscribers(self, status: SubscriberStatus | None = None) -> list[Subscriber]:
        """Subscribers in the order they were added, optionally of one status."""
        q = select(subscribers).order_by(subscribers.c.id)
        if status is not None:
            q = q.where(subscribers.c.status == str(status))
        with self._tx() as conn:
            return [_subscriber(r) for r in conn.execute(q).all()]

    def subscriber_by_token(self, token: str) -> Subscriber | None:
        with self._tx() as conn:
            row = conn.execute(select(subscribers).where(subscribers.c.token == token)).first()
        return _subscriber(row) if row is not None else None

    def subscriber_by_email(self, email: str) -> Subscriber | None:
        with self._tx() as conn:
            row = conn.execute(
                select(subscribers).where(subscribers.c.email_key == email.lower())
            ).first()
        return _subscriber(row) if row is not None else None

    def set_subscriber_status(
        self, subscriber_id: int, status: SubscriberStatus, note: str, now: datetime
    ) -> Subscriber:
        """Change a subscriber's status; the same status again changes nothing."""
        with self._tx() as conn:
            conn.execute(
                update(subscribers)
                .where(subscribers.c.id == subscriber_id, subscribers.c.status != str(status))
                .values(status=str(status), note=note, updated=now)
            )
            row = conn.execute(select(subscribers).where(subscribers.c.id == subscriber_id)).one()
        return _subscriber(row)

    # -- issues (issue 7) ---------------------------------------------------

    def add_issue(self, issue: Issue) -> tuple[Issue, bool]:
        """Store a composed issue unless one with its key exists.

        Returns the stored issue and whether it was this one: two senders
        composing the same week both end up with the first one stored.
        """
        values = {f: getattr(issue, f) for f in _ISSUE_FIELDS}
        with self._tx() as conn:
            # RETURNING, not rowcount: psycopg reports -1 for an INSERT's rowcount.
            added = conn.execute(
                _insert(conn, issues)
                .values(**values)
                .on_conflict_do_nothing()
                .returning(issues.c.key)
            ).first()
            row = conn.execute(select(issues).where(issues.c.key == issue.key)).one()
        return _issue(row), added is not None

    def issue(self, key: str) -> Issue | None:
        with self._tx() as conn:
            row = conn.execute(select(issues).where(issues.c.key == key)).first()
        return _issue(row) if row is not None else None

    def latest_issue(self) -> Issue | None:
        """The issue with the latest cut-off: where the next issue's window starts."""
        with self._tx() as conn:
            row = conn.execute(select(issues).order_by(issues.c.cutoff.desc()).limit(1)).first()
        return _issue(row) if row is not None else None

    def issues(self) -> list[Issue]:
        """Every stored issue, oldest first."""
        with self._tx() as conn:
            return [_issue(r) for r in conn.execute(select(issues).order_by(issues.c.cutoff))]

    # -- deliveries (issue 7): claims that make sending exactly-once --------

    def deliveries(self, issue: str) -> dict[int, Delivery]:
        """Every delivery record of an issue, by subscriber id."""
        with self._tx() as conn:
            rows = conn.execute(select(deliveries).where(deliveries.c.issue == issue)).all()
        return {r.subscriber_id: _delivery(r) for r in rows}

    def claim_delivery(self, issue: str, subscriber_id: int, owner: str, now: datetime) -> bool:
        """Claim a fresh (issue, subscriber) for `owner`; False if anyone has a record.

        The primary key makes this the one race-free decision between two
        senders: exactly one INSERT succeeds.
        """
        with self._tx() as conn:
            added = conn.execute(
                _insert(conn, deliveries)
                .values(
                    issue=issue, subscriber_id=subscriber_id,
                    status=str(DeliveryStatus.CLAIMED), attempts=0, owner=owner,
                    claimed_at=now, updated=now,
                )
                .on_conflict_do_nothing()
                .returning(deliveries.c.issue)
            ).first()  # fmt: skip
        # RETURNING, not rowcount: psycopg reports -1 for an INSERT's rowcount.
        return added is not None

    def take_over_delivery(
        self,
        issue: str,
        subscriber_id: int,
        expected: Delivery,
        owner: str,
        now: datetime,
    ) -> bool:
        """Claim a record left claimed (by a dead sender) or deferred; compare-and-set.

        Succeeds only if the record is still exactly as `expected` was read,
        so two senders taking over the same record cannot both win.
        """
        with self._tx() as conn:
            owner_matches = (
                deliveries.c.owner.is_(None)
                if expected.owner is None
                else deliveries.c.owner == expected.owner
            )
            result = conn.execute(
                update(deliveries)
                .where(
                    deliveries.c.issue == issue,
                    deliveries.c.subscriber_id == subscriber_id,
                    deliveries.c.status == str(expected.status),
                    deliveries.c.attempts == expected.attempts,
                    owner_matches,
                )
                .values(
                    status=str(DeliveryStatus.CLAIMED), owner=owner, claimed_at=now, updated=now
                )
            )
        return bool(result.rowcount == 1)

    def record_delivery(
        self,
        issue: str,
        subscriber_id: int,
        owner: str,
        status: DeliveryStatus,
        now: datetime,
        *,
        error: str | None = None,
        attempted: bool = False,
    ) -> bool:
        """Move a delivery `owner` holds to `status`; False if it no longer holds it."""
        values: dict[str, Any] = {"status": str(status), "error": error, "updated": now}
        if attempted:
            values["attempts"] = deliveries.c.attempts + 1
        if status is DeliveryStatus.SENT:
            values["sent_at"] = now
        if status in (DeliveryStatus.SENT, DeliveryStatus.FAILED, DeliveryStatus.DEFERRED):
            values["owner"] = None
        with self._tx() as conn:
            result = conn.execute(
                update(deliveries)
                .where(
                    deliveries.c.issue == issue,
                    deliveries.c.subscriber_id == subscriber_id,
                    deliveries.c.owner == owner,
                )
                .values(**values)
            )
        return bool(result.rowcount == 1)

    def resolve_uncertain(
        self, issue: str, subscriber_id: int, expected: Delivery, now: datetime
    ) -> bool:
        """Record that a dead sender's in-flight handover is uncertain (compare-and-set)."""
        with self._tx() as conn:
            result = conn.execute(
                update(deliveries)
                .where(
                    deliveries.c.issue == issue,
                    deliveries.c.subscriber_id == subscriber_id,
                    deliveries.c.status == str(expected.status),
                    deliveries.c.owner == expected.owner,
                )
                .values(
                    status=str(DeliveryStatus.UNCERTAIN), owner=None, updated=now,
                    error="the sender stopped while handing the message to the server;"
                    " assumed delivered, not resent",
                )
            )  # fmt: skip
        return bool(result.rowcount == 1)

    def reset_uncertain(self, issue: str, now: datetime) -> int:
        """Make an issue's uncertain deliveries deferred, so the next send resends them."""
        with self._tx() as conn:
            result = conn.execute(
                update(deliveries)
                .where(
                    deliveries.c.issue == issue,
                    deliveries.c.status == str(DeliveryStatus.UNCERTAIN),
                )
                .values(status=str(DeliveryStatus.DEFERRED), owner=None, updated=now)
            )
        return int(result.rowcount)

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


_REMOVED_FROM_CONFIG = "removed from config.toml"
_ISSUE_FIELDS = (
    "key", "cutoff", "subject", "html", "text", "archive_html", "entry_count", "shown_count",
    "created",
)  # fmt: skip


def _insert(conn: Connection, table: Table) -> Any:
    """The dialect's INSERT, which has on_conflict_do_nothing on sqlite and postgresql."""
    if conn.dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


def _subscriber(r: Any) -> Subscriber:
    return Subscriber(
        id=r.id, email=r.email, name=r.name, status=SubscriberStatus(r.status), token=r.token,
        in_config=bool(r.in_config), note=r.note,
    )  # fmt: skip


def _issue(r: Any) -> Issue:
    return Issue(**{f: getattr(r, f) for f in _ISSUE_FIELDS})


def _delivery(r: Any) -> Delivery:
    return Delivery(
        issue=r.issue, subscriber_id=r.subscriber_id, status=DeliveryStatus(r.status),
        attempts=r.attempts, error=r.error, owner=r.owner, claimed_at=r.claimed_at,
        sent_at=r.sent_at,
    )  # fmt: skip


def _feed_state_values(state: FeedState) -> dict[str, Any]:
    return {
        "etag": state.etag,
        "last_modified": state.last_modified,
        "body_hash": state.body_hash,
        "next_fetch": state.next_fetch,
        "consecutive_errors": state.consecutive_errors,
        "disabled_reason": state.disabled_reason,
        "moved_to": state.moved_to,
        "last_success": state.last_success,
    }


def _put_feed_state(conn: Connection, source_id: int, state: FeedState) -> None:
    values = _feed_state_values(state)
    done = conn.execute(
        update(feed_state).where(feed_state.c.source_id == source_id).values(**values)
    )
    if done.rowcount == 0:
        conn.execute(feed_state.insert().values(source_id=source_id, **values))


#: ids per IN (...) list: well under every database's bound-parameter limit
_CHUNK = 500


def _upsert_entries(
    conn: Connection, source_id: int, batch: Sequence[Entry], now: datetime
) -> UpsertResult:
    """Store.upsert_entries within the transaction `conn`."""
    inserts: list[dict[str, Any]] = []
    updates: list[dict[str, Any]] = []
    # Only the guids of this batch: a batch of 500 never loads 10,000 rows.
    guids = list(dict.fromkeys(e.guid for e in batch))
    known: dict[str, Any] = {}
    for i in range(0, len(guids), 500):
        known.update(
            (r.guid, r)
            for r in conn.execute(
                select(
                    entries.c.id,
                    entries.c.guid,
                    entries.c.content_hash,
                    entries.c.gone,
                    entries.c.updated,
                ).where(
                    entries.c.source_id == source_id,
                    entries.c.guid.in_(guids[i : i + 500]),
                )
            ).all()
        )
    seen: set[str] = set()
    for e in batch:
        if e.guid in seen:  # the same guid twice in one batch: first wins
            continue
        seen.add(e.guid)
        values = _entry_values(e)
        old = known.get(e.guid)
        if old is None:
            inserts.append({"source_id": source_id, "first_seen": now, **values})
        elif old.content_hash != e.content_hash or old.gone:
            if old.content_hash != e.content_hash and e.updated <= old.updated:
                # Edited without a newer date from the source: it changed now.
                values["updated"] = max(now, old.updated)
            updates.append({"_id": old.id, **values})
    # executemany: one round trip per kind, not one per row
    if inserts:
        conn.execute(entries.insert(), inserts)
    if updates:
        # the SET clause comes from the parameter keys
        conn.execute(update(entries).where(entries.c.id == bindparam("_id")), updates)
        _queue_dedupe(conn, [u["_id"] for u in updates])
    _queue_new(conn, source_id, [i["guid"] for i in inserts])
    return UpsertResult(new=len(inserts), changed=len(updates))


def _queue_dedupe(conn: Connection, ids: Sequence[int]) -> None:
    """Put `ids` in the dedupe queue (those already there stay, once)."""
    for chunk in _chunks(ids):
        conn.execute(
            _insert(conn, dedupe_queue)
            .values([{"entry_id": i} for i in chunk])
            .on_conflict_do_nothing()
        )


def _queue_new(conn: Connection, source_id: int, guids: Sequence[str]) -> None:
    """Put the entries of `source_id` just inserted as `guids` in the dedupe
    queue: their ids, straight from the (source, guid) index. One executemany
    handed to the driver, as _insert_plain: a statement through SQLAlchemy
    per feed cost more than the database's work (500 feeds)."""
    if not guids:
        return
    mark = _driver_mark(conn)
    if mark is None:
        for chunk in _chunks(guids):
            new_ids = select(entries.c.id).where(
                entries.c.source_id == source_id, entries.c.guid.in_(chunk)
            )
            conn.execute(
                _insert(conn, dedupe_queue)
                .from_select(["entry_id"], new_ids)
                .on_conflict_do_nothing()
            )
        return
    q = conn.dialect.identifier_preparer
    e, queue = q.format_table(entries), q.format_table(dedupe_queue)
    # ON CONFLICT DO NOTHING: SQLite (3.24+) and PostgreSQL alike; the WHERE
    # keeps SQLite from reading ON as a join's.
    sql = (
        f"INSERT INTO {queue} ({q.quote('entry_id')}) SELECT {q.quote('id')} FROM {e}"
        f" WHERE {q.quote('source_id')} = {mark} AND {q.quote('guid')} = {mark}"
        " ON CONFLICT DO NOTHING"
    )
    conn.exec_driver_sql(sql, [(source_id, g) for g in guids])


def _put_feed_meta(conn: Connection, source_id: int, meta: FeedMeta) -> None:
    conn.execute(
        update(sources)
        .where(sources.c.id == source_id)
        .values(feed_id=meta.id, feed_title=meta.title, feed_link=meta.link)
    )


def _chunks(values: Iterable[Any], size: int = _CHUNK) -> Iterator[list[Any]]:
    """`values` in lists of at most `size`, for IN (...) queries."""
    batch: list[Any] = []
    for v in values:
        batch.append(v)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


#: consecutive ids from which _id_filters uses one BETWEEN rather than listing them
_MIN_RUN = 16


def _id_filters(col: ColumnElement[int], ids: Iterable[int]) -> Iterator[ColumnElement[bool]]:
    """Conditions on `col` that together select exactly `ids`, one statement each.

    A run of consecutive ids (a first ingest's entries are one run) becomes
    one BETWEEN, the rest IN lists of at most _CHUNK: binding every value
    of big IN lists cost more than the queries themselves (17,000 new
    entries: about 35 statements of 500 values for each read or write).
    """
    values = sorted(set(ids))
    ranges: list[tuple[int, int]] = []
    singles: list[int] = []
    start = 0
    for i in range(1, len(values) + 1):
        if i == len(values) or values[i] != values[i - 1] + 1:
            if i - start >= _MIN_RUN:
                ranges.append((values[start], values[i - 1]))
            else:
                singles.extend(values[start:i])
            start = i
    for rchunk in _chunks(ranges, _CHUNK // _MIN_RUN):
        yield or_(*(col.between(lo, hi) for lo, hi in rchunk))
    for chunk in _chunks(singles):
        yield col.in_(chunk)


def _driver_mark(conn: Connection) -> str | None:
    """The driver's positional placeholder ("?" or "%s") for SQL handed to it
    directly; None for a driver whose placeholders are named (use SQLAlchemy)."""
    style = conn.dialect.paramstyle
    if style == "qmark":
        return "?"
    return "%s" if style in ("format", "pyformat") else None


def _insert_plain(
    conn: Connection, table: Table, columns: Sequence[str], rows: Sequence[tuple[Any, ...]]
) -> None:
    """INSERT `rows` (plain values needing no type conversion, in `columns`
    order) in one executemany handed straight to the driver: SQLAlchemy's
    per-row parameter processing took as long as the database's own insert
    (173,000 LSH keys after a first ingest)."""
    if not rows:
        return
    mark = _driver_mark(conn)
    if mark is None:
        conn.execute(table.insert(), [dict(zip(columns, r, strict=True)) for r in rows])
        return
    quote = conn.dialect.identifier_preparer
    sql = (
        f"INSERT INTO {quote.format_table(table)} ({', '.join(quote.quote(c) for c in columns)})"
        f" VALUES ({', '.join(mark for _ in columns)})"
    )
    conn.exec_driver_sql(sql, list(rows))


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
        "lsh": [e.lsh.version, e.lsh.weight, list(e.lsh.keys)] if e.lsh else None,
        "gone": False,
    }


def _lsh(value: Any) -> LshIndex | None:
    if isinstance(value, str):
        value = json.loads(value)
    if not isinstance(value, list) or len(value) != 3:
        return None
    version, weight, keys = value
    return LshIndex(int(version), float(weight), tuple(map(int, keys)))


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
        dup_score=r.dup_score,
    )  # fmt: skip


#: 0.05 s apart: about 10 s, as long as busy_timeout
_WAL_TRIES = 200


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    # First: switching a fresh file to WAL needs a lock a second process may hold.
    cur.execute("PRAGMA busy_timeout=10000")
    # Switching a fresh file to WAL answers "database is locked" at once, without
    # waiting out busy_timeout, while another process is creating the schema:
    # so wait here, a bounded while (the daemon and a cron run starting together).
    for attempt in range(_WAL_TRIES):
        try:
            cur.execute("PRAGMA journal_mode=WAL")
            break
        except sqlite3.OperationalError as e:
            if "locked" not in str(e) or attempt == _WAL_TRIES - 1:
                raise
            time.sleep(0.05)
    # WAL + NORMAL: still crash-safe, but a commit no longer waits for fsync
    # (ingesting 500 feeds commits at least once per feed).
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


def _drop_nul(
    _conn: Connection,
    _cursor: Any,
    statement: str,
    parameters: Any,
    _context: Any,
    executemany: bool,
) -> tuple[str, Any]:
    """PostgreSQL's text cannot hold NUL (SQLite's can): drop it from every
    string parameter rather than fail the write. A NUL in a feed's title or
    a subscriber's name means nothing a reader could see."""
    if executemany:
        return statement, [_no_nul(p) for p in parameters]
    return statement, _no_nul(parameters)


def _no_nul(params: Any) -> Any:
    if isinstance(params, dict):
        return {k: _strip_nul(v) for k, v in params.items()}
    if isinstance(params, list | tuple):
        return type(params)(_strip_nul(v) for v in params)
    return params


def _strip_nul(value: Any) -> Any:
    return value.replace("\x00", "") if isinstance(value, str) and "\x00" in value else value


def _safe(url: str) -> str:
    """The URL without its password, for messages."""
    return make_url(url).render_as_string(hide_password=True)
