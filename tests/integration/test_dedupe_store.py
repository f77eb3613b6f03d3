"""Dedupe through a real database: incremental and full clustering agree with
the pure path on the labeled corpus; updates, gone entries and splits."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest

from aggregator import pipeline
from aggregator.fingerprint import text_identity
from aggregator.model import DupeLink, LshIndex, SourceKind
from aggregator.store import Store, UpsertResult
from tests.databases import Databases
from tests.dedupe_corpus import (
    NOW,
    SETTINGS,
    Case,
    cluster_case,
    entries_of,
    judge_case,
    load_cases,
)
from tests.factories import T0, entry, source


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    s = Store.open(database_url)
    yield s
    s.close()


#: how ingest_case runs dedupe: after each entry, once (by key lookups), or
#: once as a whole-store pass (what a first ingest of many entries gets)
MODES = ("one at a time", "all at once", "whole store")


def ingest_case(store: Store, case: Case, mode: str) -> dict[int, int]:
    """Store the case's entries, dedupe as `mode` says; map index -> id."""
    ids: dict[int, int] = {}
    for src, e in entries_of(case):
        kind = SourceKind.CONTENT if src == "content" else SourceKind.FEED
        sid = store.ensure_source(source(kind, key=f"{case.name}/{src}", name=src))
        store.upsert_entries(sid, [e], NOW)
        if mode == "one at a time":
            pipeline.dedupe_incremental(store, SETTINGS)
    if mode == "all at once":
        pipeline.dedupe_incremental(store, SETTINGS)
    elif mode == "whole store":
        pipeline.dedupe_incremental(store, SETTINGS, whole_store_share=0.0, whole_store_min=0)
    by_key = {(c.guid, c.link): c.id for c in store.dedupe_candidates()}
    for i, (_, e) in enumerate(entries_of(case)):
        ids[i] = by_key[(e.guid, e.link)]
    return ids


def links_by_index(store: Store, ids: dict[int, int]) -> list[DupeLink]:
    """The stored links, renumbered 1..n like the pure path's."""
    back = {v: k + 1 for k, v in ids.items()}
    out = []
    for c in store.dupe_clusters():
        for copy in c.copies:
            out.append(
                DupeLink(back[copy.id], back[c.canonical.id], copy.dup_reason or "", copy.dup_score)
            )
    return sorted(out, key=lambda link: link.entry_id)


@pytest.mark.slow
def test_corpus_through_the_store_incremental_and_full(databases: Databases) -> None:
    for n, case in enumerate(load_cases()):
        if case.tracking_params:
            continue  # tracking params come from config; the pure test covers them
        expected = cluster_case(case, SETTINGS)
        for m, mode in enumerate(MODES):
            store = Store.open(databases.new(f"c{n}-{m}"))
            try:
                ids = ingest_case(store, case, mode)
                got = links_by_index(store, ids)
                assert got == expected, (case.name, mode)
                assert not judge_case(case, got).problems, case.name
                pipeline.dedupe_full(store, SETTINGS)
                assert links_by_index(store, ids) == expected, (case.name, "full")
            finally:
                store.close()


def test_an_edit_under_the_same_guid_updates_in_place_and_its_time(store: Store) -> None:
    sid = store.ensure_source(source())
    store.upsert_entries(sid, [entry(guid="a")], T0)
    later = T0 + timedelta(days=2)
    result = store.upsert_entries(sid, [entry(guid="a", content_hash="h2", title="B")], later)
    assert (result.new, result.changed) == (0, 1)
    (a,) = store.visible_entries(later)
    assert a.entry.title == "B" and a.entry.updated == later and a.first_seen == T0


def mine_and_copy(store: Store) -> tuple[int, int]:
    text = " ".join(f"word{i}" for i in range(80))
    mine = store.ensure_source(source(SourceKind.CONTENT, "/content", "Mine"))
    theirs = store.ensure_source(source(key="feed", name="Theirs"))
    store.upsert_entries(mine, [entry(guid="p", text=text, fingerprint="fp")], T0)
    store.upsert_entries(
        theirs,
        [
            entry(
                guid="c", link="https://f.example/c", canonical_url="x", text=text, fingerprint="fp"
            )
        ],
        T0,
    )
    pipeline.dedupe_incremental(store, SETTINGS)
    ids = {c.guid: c.id for c in store.dedupe_candidates()}
    return ids["p"], ids["c"]


def test_when_the_canonical_entry_goes_its_copy_shows(store: Store) -> None:
    p, c = mine_and_copy(store)
    assert [s.id for s in store.visible_entries(T0 + timedelta(1))] == [p]
    store.mark_gone(store.ensure_source(source(SourceKind.CONTENT, "/content", "Mine")), [])
    pipeline.dedupe_incremental(store, SETTINGS)
    assert [s.id for s in store.visible_entries(T0 + timedelta(1))] == [c]


def test_a_split_holds_when_both_entries_change_and_on_full_recluster(store: Store) -> None:
    p, c = mine_and_copy(store)
    assert store.dupe_splits() == set()
    store.add_dupe_splits(c, [p], T0)
    pipeline.dedupe_full(store, SETTINGS)
    assert store.dupe_clusters() == []
    # Both entries edited: dirty again, judged again, still apart.
    mine = store.ensure_source(source(SourceKind.CONTENT, "/content", "Mine"))
    store.upsert_entries(mine, [entry(guid="p", content_hash="h9", fingerprint="fp")], T0)
    pipeline.dedupe_incremental(store, SETTINGS)
    assert store.dupe_clusters() == []
    assert len(store.visible_entries(T0 + timedelta(1))) == 2


def test_a_whole_store_pass_indexes_stale_and_missing_indexes_from_the_text(store: Store) -> None:
    # Four copies of one text in four feeds: the stored index current, of an
    # older version (its keys wrong), missing, and current but of a text
    # too light to judge. The pass must index the first three alike.
    text = " ".join(f"word{i}" for i in range(80))
    fp, index = text_identity(text)
    stale = LshIndex(index.version - 1, index.weight, (1, 2, 3))
    light = LshIndex(index.version, 3.0, index.keys)
    for n, lsh in enumerate((index, stale, None, light)):
        sid = store.ensure_source(source(key=f"feed{n}", name=f"F{n}"))
        store.upsert_entries(sid, [entry(guid=f"g{n}", text=text, fingerprint=fp, lsh=lsh)], T0)
    pipeline.dedupe_incremental(store, SETTINGS, whole_store_share=0.0, whole_store_min=0)
    ids = sorted(c.id for c in store.dedupe_candidates())
    buckets = store.lsh_buckets(None, SETTINGS.max_group)
    assert sorted(buckets) == sorted(index.keys)
    assert all(sorted(members) == ids[:3] for members in buckets.values())
    assert store.dedupe_dirty_ids() == []


def test_dedupe_looks_at_new_edited_gone_and_returning_entries_only(store: Store) -> None:
    sid = store.ensure_source(source(key="feed", name="F"))
    posts = [entry(guid=f"p{n}", text=f"post {n}") for n in range(3)]
    assert store.upsert_feeds([(sid, posts, None)], T0) == [UpsertResult(3, 0)]
    p0, p1, p2 = sorted(c.id for c in store.dedupe_candidates())
    assert store.dedupe_dirty_ids() == [p0, p1, p2]
    store.clear_dedupe_dirty([p0, p2])
    assert store.dedupe_dirty_ids() == [p1]
    store.clear_dedupe_dirty([p1, p1])
    assert store.dedupe_dirty_ids() == []

    store.upsert_entries(sid, posts, T0)  # the same again: nothing to look at
    assert store.dedupe_dirty_ids() == []
    edited = entry(guid="p2", text="post 2, edited", content_hash="h2")
    store.upsert_entries(sid, [edited, *posts[:2]], T0)
    store.upsert_entries(sid, [edited], T0)  # queued once, however often
    assert store.dedupe_dirty_ids() == [p2]
    store.clear_dedupe_dirty([p2])

    assert store.mark_gone(sid, ["p0", "p2"]) == 1
    assert store.dedupe_dirty_ids() == [p1]
    store.clear_dedupe_dirty([p1])
    store.upsert_entries(sid, [posts[1]], T0)  # back in the feed
    assert store.dedupe_dirty_ids() == [p1]
    assert {c.id for c in store.dedupe_candidates()} == {p0, p1, p2}
