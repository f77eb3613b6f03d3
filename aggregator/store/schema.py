"""The schema: every table and index of the store, as SQLAlchemy Core.

`metadata` is what the migrations compare with (migrations/env.py imports
it from here, and nothing else of the store), so a change to a table here
needs a revision: `python -m aggregator.store.migrations "what changed"`.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Dialect,
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

# -- sources and feed state ---------------------------------------------------

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

# -- entries ------------------------------------------------------------------

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
#: what the last content scan saw of each file (the incremental content scan)
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

#: per-feed fetch state; the feed list itself lives in config.toml
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

# -- dedupe: LSH keys, queue, splits ------------------------------------------

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

#: entries new, changed or gone since dedupe last looked at them. A narrow
#: table of its own, not a flag on the entry: setting or clearing a flag
#: rewrote the whole wide row (html and text, ~6 KB each; 17,000 rows after
#: a first ingest: 0.3 s to clear), a queue row is a few bytes.
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

# -- the newsletter: subscribers, issues, deliveries --------------------------

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

# -- runs and the daemon's schedule -------------------------------------------

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
#: so `status` can list the schedule without starting a scheduler. Not in
#: `metadata`: the migrations leave it alone (migrations.FOREIGN_TABLES).
SCHEDULER_TABLE = "apscheduler_jobs"
scheduler_jobs = Table(
    SCHEDULER_TABLE,
    MetaData(),
    Column("id", String(191), primary_key=True),
    Column("next_run_time", Float),
)
