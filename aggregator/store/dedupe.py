"""Dedupe's tables: the queue of entries to look at, the LSH keys of each
visible entry, the duplicate links on entries, the merges the user split
apart, and the clusters they make.

Which LSH keys index an entry is fingerprint.index_keys's rule, applied here
to the index stored with each entry (index_stored_lsh): the rule is stated
once, in fingerprint.py, not again in SQL. The database only copies an
entry's stored key list where that rule chose the list whole.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Text,
    bindparam,
    cast,
    delete,
    func,
    insert,
    or_,
    select,
    true,
    type_coerce,
    update,
)
from sqlalchemy.engine import Connection
from sqlalchemy.sql import Select
from sqlalchemy.sql.elements import ColumnElement

from aggregator import fingerprint
from aggregator.model import (
    DedupeCandidate,
    DupeCluster,
    DupeLink,
    LshIndex,
    SourceKind,
    StoredEntry,
)
from aggregator.store.base import StoreBase, _chunks, _id_filters, _insert_plain
from aggregator.store.entries import _stored
from aggregator.store.schema import dedupe_keys, dedupe_queue, dupe_splits, entries, sources


class DedupeMixin(StoreBase):
    """The dedupe queue, LSH keys and buckets, duplicate links and splits."""

    # -- the queue and what dedupe compares -----------------------------------

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

    # -- the LSH index --------------------------------------------------------

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

    def index_stored_lsh(self, ids: Iterable[int], version: int, min_weight: float) -> set[int]:
        """replace_lsh_keys for `ids` from the index stored with each entry, in
        one transaction: the keys fingerprint.index_keys(index, min_weight)
        gives, for the visible entries whose stored index is of `version`
        (fingerprint.SIGNATURE_VERSION: the only one index_keys accepts).

        Returns the visible ids whose stored index is missing or of another
        version (the caller computes their keys from the text).
        """
        if version != fingerprint.SIGNATURE_VERSION:
            raise ValueError(
                f"LSH signature version {version} asked for; this code computes"
                f" {fingerprint.SIGNATURE_VERSION}"
            )
        stored_keys = _stored_keys(self.engine.dialect.name)
        stale: set[int] = set()
        #: entries indexed by every key of their stored list
        whole: list[int] = []
        lsh = entries.c.lsh
        ids = list(ids)
        with self._tx() as conn:
            for kcond in _id_filters(dedupe_keys.c.entry_id, ids):
                conn.execute(delete(dedupe_keys).where(kcond))
            for cond in _id_filters(entries.c.id, ids):
                # Two scalars per entry, not its key list: the rule needs no more.
                q = select(entries.c.id, lsh[0].as_integer(), lsh[1].as_float()).where(
                    cond, entries.c.gone.is_(False)
                )
                for i, version, weight in conn.execute(q).all():
                    use = fingerprint.index_use(version, weight, min_weight)
                    if use is None:
                        stale.add(i)
                    elif use:
                        whole.append(i)
            if stored_keys is not None:
                # The keys are copied inside the database, never read out: an
                # executemany of a first ingest's 170,000 keys made the
                # whole-store dedupe a fifth slower.
                for cond in _id_filters(entries.c.id, whole):
                    conn.execute(
                        insert(dedupe_keys).from_select(
                            ["entry_id", "key"], stored_keys.where(cond)
                        )
                    )
            else:
                rows: list[tuple[int, int]] = []
                for cond in _id_filters(entries.c.id, whole):
                    q = select(entries.c.id, type_coerce(lsh, Text)).where(cond)
                    for i, value in conn.execute(q).all():
                        index = _lsh(value)
                        rows.extend((i, k) for k in (index.keys if index else ()))
                _insert_plain(conn, dedupe_keys, ("entry_id", "key"), rows)
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

    # -- links, splits and clusters -------------------------------------------

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


def _stored_keys(dialect: str) -> Select[Any] | None:
    """(entry id, key) for every key of the LSH index stored with an entry
    (entries.lsh's third item), expanded by the database's JSON array
    function; None on a database without one."""
    if dialect == "sqlite":
        band = func.json_each(entries.c.lsh, "$[2]").table_valued("value")
        key: ColumnElement[Any] = band.c.value
    elif dialect == "postgresql":
        band = func.json_array_elements_text(entries.c.lsh[2]).table_valued("value")
        key = cast(band.c.value, BigInteger)
    else:
        return None
    return select(entries.c.id, key).select_from(entries.join(band, true()))


def _lsh(value: Any) -> LshIndex | None:
    """A stored entries.lsh value ([version, weight, keys], as JSON text or
    decoded) as an LshIndex; None if there is none."""
    if isinstance(value, str):
        value = json.loads(value)
    if not isinstance(value, list) or len(value) != 3:
        return None
    version, weight, keys = value
    return LshIndex(int(version), float(weight), tuple(map(int, keys)))
