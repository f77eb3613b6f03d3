"""The per-feed state machine: what one fetch does to a feed's remembered state.

Each case is what a person running the aggregator would notice: when the feed
is fetched next, whether it is disabled and why, how many failures in a row,
which validators are sent next time, where the feed is fetched from, and the
message in the report.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from aggregator.model import FeedState
from aggregator.sources import schedule
from aggregator.sources.feed_entries import FeedReading
from aggregator.sources.feed_state import (
    FeedDecision,
    FetchOutcome,
    Status,
    decide_feed_state,
)
from aggregator.sources.fetch import FetchStatus

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
MIN, MAX, CAP = timedelta(minutes=30), timedelta(days=1), timedelta(hours=6)
SETTINGS = schedule.ScheduleSettings(min_interval=MIN, max_interval=MAX, backoff_cap=CAP)
H = timedelta(hours=1)

FEED = "https://old.example/feed"
NEW = "https://new.example/feed"
OLD_ETAG, OLD_LM = '"v1"', "Sat, 21 Nov 2026 10:00:00 GMT"
NEW_ETAG, NEW_LM = '"v2"', "Sun, 22 Nov 2026 11:00:00 GMT"
#: a feed fetched before: validators, a body hash, a last success
OLD = FeedState(
    etag=OLD_ETAG,
    last_modified=OLD_LM,
    body_hash="h1",
    next_fetch=NOW,
    last_success=NOW - 2 * H,
)
PARSED = FeedReading()  # a body that read, with no interval hint of its own


def decide(
    status: Status,
    *,
    old: FeedState = OLD,
    reading: FeedReading | None = None,
    digest: str | None = None,
    **outcome: Any,
) -> FeedDecision:
    return decide_feed_state(old, FetchOutcome(status, **outcome), reading, digest, NOW, SETTINGS)


def test_the_statuses_are_the_fetchers() -> None:
    assert [(s.name, s.value) for s in Status] == [(s.name, s.value) for s in FetchStatus]


# -- 304 Not Modified ----------------------------------------------------------


@pytest.mark.parametrize(
    ("cache_control", "next_in"),
    [
        (None, MIN),
        ("max-age=7200", 2 * H),
        ("public, max-age=3600", H),
        ("max-age=60", MIN),  # more often than min_interval: held at the minimum
        ("max-age=604800", MAX),  # a week: held at max_interval
        ("no-cache, max-age=7200", MIN),  # no-cache says nothing about polling
    ],
)
def test_not_modified_keeps_the_validators_and_follows_cache_control(
    cache_control: str | None, next_in: timedelta
) -> None:
    headers = {"cache-control": cache_control} if cache_control else {}
    d = decide(Status.NOT_MODIFIED, old=replace(OLD, consecutive_errors=2), headers=headers)
    assert d.note == "not modified"
    assert d.error is None
    s = d.state
    assert (s.etag, s.last_modified, s.body_hash) == (OLD_ETAG, OLD_LM, "h1")
    assert s.next_fetch == NOW + next_in
    assert s.consecutive_errors == 0
    assert s.last_success == NOW
    assert s.disabled_reason is None


def test_not_modified_with_a_new_etag_sends_the_new_one_next_time() -> None:
    d = decide(Status.NOT_MODIFIED, headers={"etag": NEW_ETAG})
    assert (d.state.etag, d.state.last_modified) == (NEW_ETAG, OLD_LM)


# -- 200 -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "etag", "last_modified"),
    [
        ({"etag": NEW_ETAG, "last-modified": NEW_LM}, NEW_ETAG, NEW_LM),
        ({"etag": NEW_ETAG}, NEW_ETAG, None),
        ({"last-modified": NEW_LM}, None, NEW_LM),
        ({}, None, None),  # a validator the new response does not repeat is dropped
    ],
)
def test_a_new_body_replaces_the_validators(
    headers: dict[str, str], etag: str | None, last_modified: str | None
) -> None:
    d = decide(Status.OK, reading=PARSED, digest="h2", headers=headers)
    assert (d.state.etag, d.state.last_modified) == (etag, last_modified)


def test_a_new_body_resets_the_errors_and_records_the_success() -> None:
    old = replace(OLD, consecutive_errors=4, next_fetch=NOW + CAP)
    d = decide(Status.OK, old=old, reading=PARSED, digest="h2", headers={"etag": NEW_ETAG})
    assert d.error is None
    assert d.note == ""  # entries to store: the report counts them, not a note
    s = d.state
    assert s.body_hash == "h2"
    assert s.consecutive_errors == 0
    assert s.last_success == NOW
    assert s.next_fetch == NOW + MIN


def test_the_first_fetch_of_a_feed() -> None:
    d = decide(Status.OK, old=FeedState(), reading=PARSED, digest="h1", headers={"etag": OLD_ETAG})
    assert d.state == FeedState(
        etag=OLD_ETAG, body_hash="h1", next_fetch=NOW + MIN, last_success=NOW
    )
    assert (d.error, d.note, d.newly_moved_to) == (None, "", None)


@pytest.mark.parametrize(
    ("hints", "next_in"),
    [
        ({}, MIN),
        ({"ttl": "120"}, 2 * H),
        ({"ttl": "5"}, MIN),  # below min_interval
        ({"ttl": "10080"}, MAX),  # a week, above max_interval
        ({"update_period": "hourly", "update_frequency": "2"}, MIN),
        ({"update_period": "weekly"}, MAX),
        ({"cache_control": "max-age=10800"}, 3 * H),
        ({"cache_control": "max-age=1"}, MIN),
        ({"ttl": "60", "cache_control": "max-age=14400"}, 4 * H),  # the longest hint wins
    ],
)
def test_the_feeds_own_interval_is_held_between_min_and_max(
    hints: dict[str, str], next_in: timedelta
) -> None:
    reading = FeedReading(interval=schedule.feed_interval(**hints))
    d = decide(Status.OK, reading=reading, digest="h2")
    assert d.state.next_fetch == NOW + next_in


@pytest.mark.parametrize(
    ("headers", "etag", "next_in"),
    [
        ({}, OLD_ETAG, MIN),
        ({"etag": NEW_ETAG, "cache-control": "max-age=7200"}, NEW_ETAG, 2 * H),
    ],
)
def test_the_same_body_again_is_unchanged(
    headers: dict[str, str], etag: str, next_in: timedelta
) -> None:
    # Not parsed again (reading None): the old validators stand unless new
    # ones come, and the response's Cache-Control is the hint.
    d = decide(Status.OK, old=replace(OLD, consecutive_errors=1), digest="h1", headers=headers)
    assert d.note == "unchanged"
    assert d.error is None
    s = d.state
    assert (s.etag, s.last_modified, s.body_hash) == (etag, OLD_LM, "h1")
    assert s.next_fetch == NOW + next_in
    assert (s.consecutive_errors, s.last_success) == (0, NOW)


# -- moved permanently (301, 308) ------------------------------------------------


@pytest.mark.parametrize(
    ("status", "reading", "digest"),
    [(Status.OK, PARSED, "h2"), (Status.OK, None, "h1"), (Status.NOT_MODIFIED, None, None)],
    ids=["new body", "same body", "not modified"],
)
def test_a_permanent_redirect_moves_the_feed(
    status: Status, reading: FeedReading | None, digest: str | None
) -> None:
    d = decide(status, reading=reading, digest=digest, moved_to=NEW)
    assert d.state.moved_to == NEW
    assert d.newly_moved_to == NEW  # worth one log line
    assert d.error is None


@pytest.mark.parametrize(
    ("status", "moved_to", "reading"),
    [
        (Status.OK, None, PARSED),  # fetched from the new address: no redirect any more
        (Status.OK, NEW, PARSED),  # an old URL still redirecting
        (Status.NOT_MODIFIED, None, None),
        (Status.ERROR, None, None),
    ],
    ids=["new body", "redirect again", "not modified", "error"],
)
def test_a_moved_feed_stays_moved(
    status: Status, moved_to: str | None, reading: FeedReading | None
) -> None:
    old = replace(OLD, moved_to=NEW)
    d = decide(status, old=old, reading=reading, digest="h2", moved_to=moved_to, error="boom")
    assert d.state.moved_to == NEW
    assert d.newly_moved_to is None  # said once, when it moved


def test_a_second_move_replaces_the_first() -> None:
    newer = "https://newer.example/feed"
    d = decide(Status.OK, old=replace(OLD, moved_to=NEW), reading=PARSED, moved_to=newer)
    assert (d.state.moved_to, d.newly_moved_to) == (newer, newer)


def test_an_error_behind_a_permanent_redirect_still_moves_the_feed() -> None:
    d = decide(Status.ERROR, moved_to=NEW, error="HTTP 500 Internal Server Error")
    assert d.state.moved_to == NEW
    assert d.state.consecutive_errors == 1


# -- 410 Gone --------------------------------------------------------------------


@pytest.mark.parametrize("old", [OLD, replace(OLD, consecutive_errors=3, moved_to=NEW)])
def test_gone_disables_the_feed(old: FeedState) -> None:
    d = decide(Status.GONE, old=old, error="HTTP 410 Gone")
    message = "HTTP 410 Gone: the feed is gone, fetching stopped"
    assert d.error == message
    assert d.state.disabled_reason == message
    assert d.state.next_fetch is None
    assert d.note == ""
    # The rest is as it was (errors are not counted: it is not a failure to retry).
    assert d.state == replace(old, disabled_reason=message, next_fetch=None)


# -- errors, backoff, Retry-After --------------------------------------------------


@pytest.mark.parametrize(
    ("errors_before", "next_in", "message"),
    [
        (0, MIN, "cannot connect: refused"),
        (1, 2 * MIN, "cannot connect: refused (2 failures in a row)"),
        (2, 4 * MIN, "cannot connect: refused (3 failures in a row)"),
        (3, 8 * MIN, "cannot connect: refused (4 failures in a row)"),
        (4, CAP, "cannot connect: refused (5 failures in a row)"),  # 16 * 30 min > 6 h
        (5, CAP, "cannot connect: refused (6 failures in a row)"),
        (99, CAP, "cannot connect: refused (100 failures in a row)"),
    ],
)
def test_errors_back_off_exponentially_up_to_the_cap(
    errors_before: int, next_in: timedelta, message: str
) -> None:
    old = replace(OLD, consecutive_errors=errors_before)
    d = decide(Status.ERROR, old=old, error="cannot connect: refused")
    assert d.error == message
    assert d.note == ""
    s = d.state
    assert s.consecutive_errors == errors_before + 1
    assert s.next_fetch == NOW + next_in
    # Nothing else changes: the same validators next time, the last success stands.
    assert (s.etag, s.last_modified, s.body_hash) == (OLD_ETAG, OLD_LM, "h1")
    assert s.last_success == OLD.last_success
    assert s.disabled_reason is None


@pytest.mark.parametrize(
    ("retry_after", "next_in"),
    [
        ("7200", 2 * H),  # longer than the backoff: honoured
        (" 3600 ", H),
        ("60", MIN),  # shorter than the backoff: the backoff stands
        ("86400", CAP),  # a day: held at backoff_cap
        ("Sun, 22 Nov 2026 15:00:00 GMT", 3 * H),  # an HTTP date
        ("Mon, 23 Nov 2026 12:00:00 GMT", CAP),
        ("Sun, 22 Nov 2026 11:00:00 GMT", MIN),  # already past
        ("soon", MIN),  # unreadable: ignored
        (None, MIN),
    ],
)
@pytest.mark.parametrize("error", ["HTTP 429 Too Many Requests", "HTTP 503 Service Unavailable"])
def test_retry_after_is_honoured_within_the_cap(
    error: str, retry_after: str | None, next_in: timedelta
) -> None:
    d = decide(Status.ERROR, error=error, retry_after=retry_after)
    assert d.error == error
    assert d.state.consecutive_errors == 1
    assert d.state.next_fetch == NOW + next_in


def test_retry_after_shorter_than_a_long_backoff_does_not_shorten_it() -> None:
    old = replace(OLD, consecutive_errors=3)  # the 4th failure waits 4 h
    d = decide(Status.ERROR, old=old, error="HTTP 503 Service Unavailable", retry_after="3600")
    assert d.state.next_fetch == NOW + 8 * MIN


@pytest.mark.parametrize(
    ("errors_before", "message"),
    [(0, "not a feed: syntax error"), (2, "not a feed: syntax error (3 failures in a row)")],
)
def test_a_parse_error_counts_as_an_error(errors_before: int, message: str) -> None:
    old = replace(OLD, consecutive_errors=errors_before)
    reading = FeedReading(error="not a feed: syntax error")
    headers = {"etag": NEW_ETAG, "last-modified": NEW_LM, "cache-control": "max-age=7200"}
    d = decide(Status.OK, old=old, reading=reading, digest="h2", headers=headers)
    assert d.error == message
    assert d.note == ""
    s = d.state
    assert s.consecutive_errors == errors_before + 1
    assert s.next_fetch == NOW + schedule.backoff(errors_before + 1, SETTINGS)
    # Not a success: the old validators and body hash stay, so the same body
    # is fetched and read again next time.
    assert (s.etag, s.last_modified, s.body_hash) == (OLD_ETAG, OLD_LM, "h1")
    assert s.last_success == OLD.last_success


def test_a_success_after_errors_starts_the_count_again() -> None:
    failed = decide(Status.ERROR, error="HTTP 500 Internal Server Error").state
    failed = decide(Status.ERROR, old=failed, error="HTTP 500 Internal Server Error").state
    assert failed.consecutive_errors == 2
    ok = decide(Status.OK, old=failed, reading=PARSED, digest="h2").state
    assert (ok.consecutive_errors, ok.next_fetch, ok.last_success) == (0, NOW + MIN, NOW)
    again = decide(Status.ERROR, old=ok, error="HTTP 500 Internal Server Error")
    assert again.error == "HTTP 500 Internal Server Error"
    assert again.state.next_fetch == NOW + MIN


def test_now_is_the_argument() -> None:
    # No clock read: the same inputs at another `now` give the same answer shifted.
    later = NOW + timedelta(days=400)
    d = decide_feed_state(OLD, FetchOutcome(Status.OK), PARSED, "h2", later, SETTINGS)
    assert (d.state.next_fetch, d.state.last_success) == (later + MIN, later)
