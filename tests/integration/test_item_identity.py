"""Items with no id, no link and no date, read from a real local server into a
real SQLite file: each stays one entry, shown once, however its feed changes
around it, and rows an older version stored for it are taken over."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from aggregator.normalize import is_derived
from tests.integration.feedkit import ingest, make_config, opened

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="session")
def httpserver_listen_address() -> tuple[str, int]:
    return ("127.0.0.1", 0)


def item(name: str, enclosure: str | None = None) -> str:
    """An RSS item with a title and a description, and no guid, link or date."""
    extra = f'<enclosure url="{enclosure}" length="1" type="audio/mpeg"/>' if enclosure else ""
    return (
        f"<item><title>{name}</title>"
        f"<description>&lt;p&gt;What {name} says, in a few words.&lt;/p&gt;</description>"
        f"{extra}</item>"
    )


def channel(items: list[str]) -> str:
    return (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>Plain</title>'
        f"<link>https://plain.example/</link>{''.join(items)}</channel></rss>"
    )


class ChangingFeed:
    """A feed whose body the test replaces between ingests."""

    def __init__(self, server: HTTPServer) -> None:
        self.body = ""
        server.expect_request("/plain.rss").respond_with_handler(self.respond)
        self.url = server.url_for("/plain.rss")

    def respond(self, request: Request) -> Response:
        return Response(self.body, content_type="application/rss+xml")


def shown(config: object, now: datetime) -> Counter[str]:
    with opened(config) as store:  # type: ignore[arg-type]
        return Counter(s.entry.title for s in store.visible_entries(now))


def test_id_less_items_stay_one_entry_as_the_feed_changes_around_them(
    httpserver: HTTPServer, tmp_path: Path, database_url: str
) -> None:
    feed = ChangingFeed(httpserver)
    config = make_config(tmp_path, [feed.url], database_url=database_url)
    ep1 = item("Episode", "https://cdn.plain.example/ep1.mp3")
    ep2 = item("Episode", "https://cdn.plain.example/ep2.mp3")
    versions = [
        [item("A"), item("B"), item("C"), ep1],
        # reordered, new items before, between and after them
        [item("X"), item("C"), item("Y"), item("A"), ep2, item("Z"), ep1, item("B")],
        # some gone from the feed, one back, the same item twice
        [item("B"), item("W"), item("A"), item("A"), ep2],
        [ep1, item("C"), item("B"), item("A"), item("X")],
    ]
    for i, items in enumerate(versions):
        feed.body = channel(items)
        report = ingest(config, NOW + timedelta(hours=i), all_feeds=True)
        assert report.failures == ()
    later = NOW + timedelta(days=1)
    assert shown(config, later) == {
        "A": 1, "B": 1, "C": 1, "X": 1, "Y": 1, "Z": 1, "W": 1,
        "Episode": 2,  # two episodes, told apart by their enclosures
    }  # fmt: skip
    with opened(config) as store:
        assert store.entry_count() == 9  # one row per item, nothing hidden behind
        first = {s.entry.title: s.first_seen for s in store.visible_entries(later)}
    assert first["A"] == NOW and first["W"] == NOW + timedelta(hours=2)


def v1_guid(title: str, published: datetime, text: str) -> str:
    parts = ["guid", title, published.isoformat(), text]
    return hashlib.sha256(json.dumps(parts, ensure_ascii=False).encode()).hexdigest()[:32]


def test_rows_stored_by_the_old_derivation_are_taken_over_not_shown_twice(
    httpserver: HTTPServer, tmp_path: Path, database_url: str
) -> None:
    feed = ChangingFeed(httpserver)
    config = make_config(tmp_path, [feed.url], database_url=database_url)
    feed.body = channel([item("A"), item("B"), item("C")])
    ingest(config, NOW, all_feeds=True)
    # Turn the store into what version 1 left: each item under its old guid,
    # A and B stored twice more (read again at later times), as in the
    # report (3 items, 7 rows).
    with opened(config) as store:
        rows = store.visible_entries(NOW)
        (source_id,) = store.ensure_sources([rows[0].source]).values()
        with store.engine.begin() as conn:
            conn.exec_driver_sql("DELETE FROM dedupe_queue")
            conn.exec_driver_sql("DELETE FROM entries")
        for hours, names in ((0, "ABC"), (1, "AB"), (2, "AB")):
            when = NOW + timedelta(hours=hours)
            old = [
                replace(s.entry, guid=v1_guid(s.entry.title, when, s.entry.text), published=when,
                        updated=when)
                for s in rows
                if s.entry.title in names
            ]  # fmt: skip
            store.upsert_entries(source_id, old, when)
        assert Counter(s.entry.title for s in store.visible_entries(NOW + timedelta(days=1))) == {
            "A": 3, "B": 3, "C": 1,
        }  # fmt: skip
        ids = {s.entry.title: s.id for s in store.visible_entries(NOW + timedelta(days=1))}
    # The upgraded ingest reads the feed (changed: a new item D, C moved).
    feed.body = channel([item("C"), item("D"), item("A"), item("B")])
    ingest(config, NOW + timedelta(hours=3), all_feeds=True)
    later = NOW + timedelta(days=1)
    assert shown(config, later) == {"A": 1, "B": 1, "C": 1, "D": 1}
    with opened(config) as store:
        visible = {s.entry.title: s for s in store.visible_entries(later)}
        assert store.entry_count() == 8  # 7 old rows (4 hidden) and D: nothing deleted
    assert all(is_derived(s.entry.guid) for s in visible.values())
    # A and B keep their first row (its id, first_seen, place in the archives).
    assert visible["A"].first_seen == NOW and visible["B"].first_seen == NOW
    assert visible["C"].id == ids["C"]
    # Read again: nothing changes.
    ingest(config, NOW + timedelta(hours=4), all_feeds=True)
    assert shown(config, later) == {"A": 1, "B": 1, "C": 1, "D": 1}
