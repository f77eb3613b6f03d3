"""Sources and what the store keeps about them: check outcomes, the fetch
state of each feed, what each feed says about itself (FeedMeta), and the
files the last content scan saw."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, delete, func, select, update
from sqlalchemy.engine import Connection

from aggregator.model import ContentFileState, FeedMeta, FeedState, Source, SourceStatus
from aggregator.store.base import StoreBase, _chunks
from aggregator.store.schema import content_files, entries, feed_state, sources


class SourcesMixin(StoreBase):
    """Sources, their check outcomes, feed state and content scan state."""

    # -- sources --------------------------------------------------------------

    def ensure_source(self, source: Source) -> int:
        """Return the id of `source`, adding it (or renaming it) as needed."""
        return self.ensure_sources([source])[source.key]

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

    def feed_meta(self) -> dict[str, FeedMeta]:
        """FeedMeta of every source that has any, by source key."""
        q = select(sources.c.key, sources.c.feed_id, sources.c.feed_title, sources.c.feed_link)
        with self._tx() as conn:
            return {
                r.key: FeedMeta(id=r.feed_id, title=r.feed_title, link=r.feed_link)
                for r in conn.execute(q).all()
                if r.feed_id or r.feed_title or r.feed_link
            }

    # -- feed state -----------------------------------------------------------

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

    def forget_feed_state(self, key: str) -> None:
        """Drop a feed's fetch state (re-added feed: fetch it afresh, re-enabled)."""
        with self._tx() as conn:
            row = conn.execute(select(sources.c.id).where(sources.c.key == key)).first()
            if row is not None:
                conn.execute(feed_state.delete().where(feed_state.c.source_id == row.id))

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


def _put_feed_meta(conn: Connection, source_id: int, meta: FeedMeta) -> None:
    """Remember what an external feed says about itself (its id, title, link)."""
    conn.execute(
        update(sources)
        .where(sources.c.id == source_id)
        .values(feed_id=meta.id, feed_title=meta.title, feed_link=meta.link)
    )
