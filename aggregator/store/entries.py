"""Entries: the idempotent upsert keyed by (source, guid), entries gone from
their source, and the reads the digest and the feeds' archives make.

Every write of an entry that dedupe should look at again also puts it in
the dedupe queue (dedupe.py reads and clears that queue)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, func, select, update
from sqlalchemy.engine import Connection

from aggregator.model import Entry, FeedMeta, GuidRow, Source, SourceKind, StoredEntry
from aggregator.store.base import StoreBase, _chunks, _driver_mark, _id_filters, _insert
from aggregator.store.schema import dedupe_queue, entries, sources
from aggregator.store.sources import _put_feed_meta


@dataclass(frozen=True)
class UpsertResult:
    new: int
    changed: int


class EntriesMixin(StoreBase):
    """Entries: upserts, gone entries, and the visible ones with their copies."""

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
        itself (its FeedMeta), in one transaction."""
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

    def link_less_entries(self, source_id: int, titles: Iterable[str]) -> list[GuidRow]:
        """The entries of a source with no link and one of `titles`, as the
        guid upgrade looks at them (normalize.adopt_guids)."""
        out: list[GuidRow] = []
        with self._tx() as conn:
            for chunk in _chunks(list(dict.fromkeys(titles))):
                q = select(
                    entries.c.id, entries.c.guid, entries.c.title, entries.c.text,
                    entries.c.published, entries.c.fingerprint,
                ).where(
                    entries.c.source_id == source_id,
                    entries.c.link == "",
                    entries.c.title.in_(chunk),
                )  # fmt: skip
                rows = conn.execute(q).all()
                out += [
                    GuidRow(r.id, r.guid, r.title, r.text, r.published, r.fingerprint) for r in rows
                ]
        return out

    def rekey_entries(self, renames: Sequence[tuple[int, str]], gone: Sequence[int]) -> None:
        """Give entries new guids ((id, guid) pairs) and mark others gone, in
        one transaction; dedupe looks at all of them again."""
        with self._tx() as conn:
            if renames:
                conn.execute(
                    update(entries).where(entries.c.id == bindparam("_id")),
                    [{"_id": i, "guid": g} for i, g in renames],
                )
            for chunk in _chunks(list(gone)):
                conn.execute(update(entries).where(entries.c.id.in_(chunk)).values(gone=True))
            _queue_dedupe(conn, [i for i, _ in renames] + list(gone))

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

    def entry_texts(self, ids: Iterable[int]) -> dict[int, str]:
        """The plain text of each of `ids`."""
        out: dict[int, str] = {}
        with self._tx() as conn:
            for cond in _id_filters(entries.c.id, ids):
                q = select(entries.c.id, entries.c.text).where(cond)
                out.update((r.id, r.text) for r in conn.execute(q).all())
        return out

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

    def entry_stats(self, since: datetime) -> tuple[int, int]:
        """(entries stored in all, entries first seen at or after `since`)."""
        with self._tx() as conn:
            total = conn.execute(select(func.count()).select_from(entries)).scalar_one()
            new = conn.execute(
                select(func.count()).select_from(entries).where(entries.c.first_seen >= since)
            ).scalar_one()
        return int(total), int(new)


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


def _stored(r: Any) -> StoredEntry:
    """An entries row joined with its source's kind, key and name, as a StoredEntry."""
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
