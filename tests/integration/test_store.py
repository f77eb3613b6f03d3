"""The store against a real database file (or $AGGREGATOR_TEST_DATABASE_URL)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone

import pytest

from aggregator.model import DupeLink, FeedState, SourceKind
from aggregator.store import Store
from tests.factories import T0, entry, source


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    s = Store.open(database_url)
    yield s
    s.close()


def test_upsert_is_idempotent_and_detects_edits(store: Store) -> None:
    sid = store.ensure_source(source())
    first = store.upsert_entries(sid, [entry(guid="a"), entry(guid="b")], T0)
    assert (first.new, first.changed) == (2, 0)
    again = store.upsert_entries(sid, [entry(guid="a"), entry(guid="b")], T0)
    assert (again.new, again.changed) == (0, 0)
    edited = store.upsert_entries(
        sid, [entry(guid="a", title="New", content_hash="h2")], T0 + timedelta(1)
    )
    assert (edited.new, edited.changed) == (0, 1)
    assert store.entry_count() == 2
    (a,) = [s for s in store.visible_entries(T0 + timedelta(2)) if s.entry.guid == "a"]
    assert a.entry.title == "New"
    assert a.first_seen == T0


def test_same_guid_in_two_sources_is_two_entries(store: Store) -> None:
    s1 = store.ensure_source(source(key="one"))
    s2 = store.ensure_source(source(key="two"))
    store.upsert_entries(s1, [entry(guid="x")], T0)
    store.upsert_entries(s2, [entry(guid="x")], T0)
    assert store.entry_count() == 2


def test_gone_entries_and_duplicates_are_hidden_but_kept(store: Store) -> None:
    mine = store.ensure_source(source(SourceKind.CONTENT, "/content", "Mine"))
    theirs = store.ensure_source(source(key="feed", name="Theirs"))
    store.upsert_entries(mine, [entry(guid="p1"), entry(guid="p2")], T0)
    store.upsert_entries(theirs, [entry(guid="copy")], T0)
    ids = {s.entry.guid: s.id for s in store.visible_entries(T0 + timedelta(1))}
    store.apply_dupe_links([], [DupeLink(ids["copy"], ids["p1"], "url")])
    assert store.mark_gone(mine, {"p1"}) == 1
    visible = store.visible_entries(T0 + timedelta(1))
    assert [s.entry.guid for s in visible] == ["p1"]
    assert visible[0].source.name == "Mine"
    copies = store.duplicates_of([ids["p1"]])
    assert [c.entry.guid for c in copies[ids["p1"]]] == ["copy"]
    assert store.entry_count() == 3


def test_future_entries_wait_for_their_time(store: Store) -> None:
    sid = store.ensure_source(source())
    store.upsert_entries(sid, [entry(guid="later", published=T0 + timedelta(days=3))], T0)
    assert store.visible_entries(T0) == []
    assert len(store.visible_entries(T0 + timedelta(days=3))) == 1


def test_source_status_records_errors(store: Store) -> None:
    src = source(key="https://down.example/feed")
    sid = store.ensure_source(src)
    store.record_check(sid, T0, "https://down.example/feed: HTTP 500")
    (status,) = store.source_statuses([src])
    assert status.last_status == "error"
    assert status.last_error and "HTTP 500" in status.last_error
    store.record_check(sid, T0, None)
    (status,) = store.source_statuses([src])
    assert (status.last_status, status.last_error) == ("ok", None)


def test_values_come_back_as_stored_on_every_backend(store: Store) -> None:
    """Dates are aware UTC whatever zone went in; tags keep their order and script."""
    sid = store.ensure_source(source())
    shanghai = timezone(timedelta(hours=8))
    published = datetime(2026, 11, 1, 20, 30, 15, 123456, tzinfo=shanghai)
    store.upsert_entries(
        sid, [entry(guid="z", published=published, updated=published, tags=("数学", "LaTeX"))], T0
    )
    (got,) = store.visible_entries(T0 + timedelta(days=1))
    assert got.entry.published == published and got.entry.published.tzinfo == UTC
    assert got.entry.tags == ("数学", "LaTeX")
    assert got.first_seen == T0 and got.first_seen.tzinfo == UTC


def test_a_nul_byte_never_stops_a_write(store: Store) -> None:
    """PostgreSQL's text cannot hold NUL (SQLite's can): it is dropped there."""
    sid = store.ensure_source(source(name="Fe\x00ed"))
    result = store.upsert_entries(sid, [entry(guid="n\x00", title="Ti\x00tle")], T0)
    assert result.new == 1
    (got,) = store.visible_entries(T0)
    assert got.entry.title.replace("\x00", "") == "Title"


def test_feed_state_is_replaced_not_duplicated(store: Store) -> None:
    src = source(key="https://f.example/feed")
    sid = store.ensure_source(src)
    store.save_feed_state(sid, FeedState(etag='"a"', next_fetch=T0))
    store.save_feed_state(sid, FeedState(etag='"b"', consecutive_errors=2, last_success=T0))
    assert store.feed_states() == {
        src.key: FeedState(etag='"b"', consecutive_errors=2, last_success=T0)
    }


def test_housekeeping_maintenance_runs_on_this_database(store: Store) -> None:
    """The daemon's housekeeping: prune old runs, ANALYZE, VACUUM, integrity check."""
    sid = store.ensure_source(source())
    store.upsert_entries(sid, [entry(guid="a"), entry(guid="b")], T0)
    old = store.start_run("ingest", T0 - timedelta(days=100))
    store.finish_run(old, T0 - timedelta(days=100), changes=2)
    recent = store.start_run("ingest", T0)
    store.finish_run(recent, T0, error="one feed failed")
    assert store.prune_runs(T0 - timedelta(days=30)) == 1
    store.optimize(vacuum=False)
    store.optimize(vacuum=True)
    assert store.integrity_check() == "ok"
    assert store.entry_count() == 2
    (status,) = store.job_statuses(["ingest"])
    assert status.last is not None and status.last.error == "one feed failed"
    assert status.last_ok is None
