"""The store: SQLAlchemy Core schema, upserts and every query.

The only module that writes SQL. Rows go in and come out as model values;
no session or row object leaves this module. Portable between SQLite (the
default, WAL mode) and PostgreSQL: no SQLite-only SQL outside a dialect check.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

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
    create_engine,
    delete,
    event,
    func,
    or_,
    select,
    update,
)
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import SQLAlchemyError

from aggregator.errors import StoreError
from aggregator.model import (
    DedupeCandidate,
    DupeCluster,
    DupeLink,
    Entry,
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
    #: the similarity that confirmed a text match (dedupe "near"), if any
    Column("dup_score", Float),
    #: new, changed or gone since dedupe last looked at it (issue 5)
    Column("dedupe_dirty", Boolean, nullable=False, default=True),
    #: the source no longer has it (a deleted post); kept, but not shown
    Column("gone", Boolean, nullable=False, default=False),
    UniqueConstraint("source_id", "guid", name="uq_entries_source_guid"),
)
Index("ix_entries_canonical_url", entries.c.canonical_url)
Index("ix_entries_fingerprint", entries.c.fingerprint)
Index("ix_entries_published", entries.c.published)
Index("ix_entries_guid", entries.c.guid)
Index("ix_entries_source_link", entries.c.source_id, entries.c.link)
Index("ix_entries_duplicate_of", entries.c.duplicate_of)
Index("ix_entries_dedupe_dirty", entries.c.dedupe_dirty)

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

#: merges the user undid (`aggregator dupes split`): these two entries are
#: different articles, in every later clustering. entry_id < other_id.
dupe_splits = Table(
    "dupe_splits",
    metadata,
    Column("entry_id", Integer, ForeignKey("entries.id"), primary_key=True),
    Column("other_id", Integer, ForeignKey("entries.id"), primary_key=True),
    Column("created", UTCDateTime, nullable=False),
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
                r.guid: (r.id, r.content_hash, r.gone, r.updated)
                for r in conn.execute(
                    select(
                        entries.c.id,
                        entries.c.guid,
                        entries.c.content_hash,
                        entries.c.gone,
                        entries.c.updated,
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
                    if old[1] != e.content_hash and e.updated <= old[3]:
                        # Edited without a newer date from the source: it changed now.
                        values["updated"] = max(now, old[3])
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
                conn.execute(
                    update(entries)
                    .where(entries.c.id.in_(ids))
                    .values(gone=True, dedupe_dirty=True)
                )
        return len(ids)

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
                else [r for chunk in _chunks(ids) for r in conn.execute(
                    q.where(entries.c.id.in_(chunk))).all()]
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
        with self._tx() as conn:
            return list(
                conn.execute(select(entries.c.id).where(entries.c.dedupe_dirty.is_(True))).scalars()
            )

    def clear_dedupe_dirty(self, ids: Iterable[int]) -> None:
        """Dedupe has looked at `ids`."""
        with self._tx() as conn:
            for chunk in _chunks(ids):
                conn.execute(
                    update(entries).where(entries.c.id.in_(chunk)).values(dedupe_dirty=False)
                )

    def entry_texts(self, ids: Iterable[int]) -> dict[int, str]:
        """The plain text of each of `ids`."""
        out: dict[int, str] = {}
        with self._tx() as conn:
            for chunk in _chunks(ids):
                q = select(entries.c.id, entries.c.text).where(entries.c.id.in_(chunk))
                out.update((r.id, r.text) for r in conn.execute(q).all())
        return out

    def replace_lsh_keys(self, ids: Iterable[int], keys: Mapping[int, Sequence[int]]) -> None:
        """Drop the LSH keys of `ids`, then record `keys` (entry id -> band keys)."""
        with self._tx() as conn:
            for chunk in _chunks(ids):
                conn.execute(delete(dedupe_keys).where(dedupe_keys.c.entry_id.in_(chunk)))
            rows = [{"entry_id": i, "key": k} for i, ks in keys.items() for k in ks]
            if rows:
                conn.execute(dedupe_keys.insert(), rows)

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
            for c in candidates:
                if c.link:
                    q = select(entries.c.id).where(
                        entries.c.source_id == c.source_id, entries.c.link == c.link, live
                    )
                    found.update(conn.execute(q.limit(max_group + 1)).scalars())
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
            for chunk in _chunks(ids):
                keys = conn.execute(
                    select(dedupe_keys.c.key).where(dedupe_keys.c.entry_id.in_(chunk)).distinct()
                ).scalars()
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
            for chunk in _chunks(wanted):
                q = select(entries.c.duplicate_of).where(
                    entries.c.id.in_(chunk), entries.c.duplicate_of.is_not(None)
                )
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
            for chunk in _chunks(ids):
                q = select(
                    entries.c.id, entries.c.duplicate_of, entries.c.dup_reason, entries.c.dup_score
                ).where(entries.c.id.in_(chunk))
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


#: ids per IN (...) list: well under every database's bound-parameter limit
_CHUNK = 500


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
        "dedupe_dirty": True,
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
        dup_score=r.dup_score,
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
