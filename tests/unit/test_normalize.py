from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from aggregator.normalize import normalize
from tests.factories import T0, raw_item

NOW = datetime(2026, 11, 22, tzinfo=UTC)
BASE = "https://friend.example.net/feed.atom"


def test_dates_become_utc_and_future_is_clamped() -> None:
    shanghai = timezone(timedelta(hours=8))
    e = normalize(raw_item(published=datetime(2026, 11, 1, 8, 0, tzinfo=shanghai)), BASE, NOW)
    assert e.published == datetime(2026, 11, 1, 0, 0, tzinfo=UTC)
    assert e.updated == e.published
    future = normalize(raw_item(published=NOW + timedelta(days=3)), BASE, NOW)
    assert future.published == NOW


def test_missing_dates_fall_back_to_updated_then_now() -> None:
    assert normalize(raw_item(published=None, updated=T0), BASE, NOW).published == T0
    assert normalize(raw_item(published=None, updated=None), BASE, NOW).published == NOW


def test_guid_falls_back_to_link_then_a_hash() -> None:
    assert normalize(raw_item(guid=None), BASE, NOW).guid == raw_item().link
    a = normalize(raw_item(guid=None, link=None), BASE, NOW)
    b = normalize(raw_item(guid=None, link=None), BASE, NOW)
    assert a.guid == b.guid and a.guid.startswith("derived:2:")


def test_missing_title_takes_first_words_of_content() -> None:
    e = normalize(raw_item(title=None), BASE, NOW)
    assert e.title.startswith("Hello world")


def test_content_is_sanitized_and_hash_tracks_edits() -> None:
    a = normalize(raw_item(content_html="<p>x<script>bad()</script></p>"), BASE, NOW)
    assert "script" not in a.content_html
    b = normalize(raw_item(content_html="<p>x, edited</p>"), BASE, NOW)
    assert a.content_hash != b.content_hash
    assert (
        normalize(raw_item(), BASE, NOW).content_hash
        == normalize(raw_item(), BASE, NOW).content_hash
    )


def test_tracking_parameters_do_not_change_canonical_url() -> None:
    a = normalize(raw_item(link="https://Blog.Example.org/p/x/?utm_source=rss#top"), BASE, NOW)
    b = normalize(raw_item(link="https://blog.example.org/p/x"), BASE, NOW)
    assert a.canonical_url == b.canonical_url


def test_fingerprint_ignores_whitespace_and_case_but_not_short_texts() -> None:
    long = "<p>" + "Syndicated words travel far. " * 5 + "</p>"
    a = normalize(raw_item(content_html=long), BASE, NOW)
    b = normalize(raw_item(content_html=long.upper().replace(" ", "  \n")), BASE, NOW)
    assert a.fingerprint and a.fingerprint == b.fingerprint
    assert normalize(raw_item(content_html="<p>Link</p>"), BASE, NOW).fingerprint == ""
