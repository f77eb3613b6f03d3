"""What one fetch of a feed does to its remembered state. Pure: no IO, no logging,
`now` is always an argument.

The fetcher (fetch.py) says how a fetch went; the parser (feed_entries.py)
says whether the body read; this module decides, from those and the feed's
old FeedState, the state to remember and what to tell the person running it.
The shell (pipeline/ingestion.py) logs, stores and reports what it decides.

The transitions:

- 410 Gone: the feed is disabled ("HTTP 410 Gone: the feed is gone,
  fetching stopped") and has no next fetch; the rest of its state is kept.
- An error (the fetch failed, or the body did not parse): one more
  consecutive error; the next fetch backs off exponentially from the minimum
  interval up to `backoff_cap`, or later when a Retry-After (429, 503) asks
  for it, up to the same cap. The validators are kept (a parse error leaves
  the body hash alone, so the same body is read again next time). From the
  second error on, the message says "(N failures in a row)".
- 304 Not Modified, or a 200 whose body is the one already read
  ("unchanged"): nothing to parse; the validators are kept unless the
  response sends new ones, and the response's Cache-Control steers the next
  fetch.
- A 200 with a new body that parsed: the validators are the response's (an
  old one it does not repeat is dropped), the body hash is the new one, and
  the feed's own hints (ttl, sy:update*, Cache-Control) steer the next fetch.
- Every answer (200 or 304) resets the error count and sets last_success;
  its interval is held between min_interval and max_interval.
- A permanent redirect (301, 308 on every hop) sets moved_to, and the feed
  is fetched from there from then on; a later answer without a redirect
  keeps it. A 410 keeps the feed's state as it was, moved_to included.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING

from aggregator.model import FeedState
from aggregator.sources import schedule

if TYPE_CHECKING:  # only its fields are read: no parser imported with the decider
    from aggregator.sources.feed_entries import FeedReading


class Status(StrEnum):
    """How a fetch went; the values of fetch.FetchStatus, without importing httpx."""

    OK = "ok"  #: a body to parse
    NOT_MODIFIED = "not modified"  #: 304
    GONE = "gone"  #: 410: the feed is gone for good
    ERROR = "error"  #: anything else: counts toward backoff


@dataclass(frozen=True)
class FetchOutcome:
    """The parts of one fetch's result (fetch.FetchResult) that decide the feed's state."""

    status: Status
    #: response headers, lower-cased: etag, last-modified, cache-control are read
    headers: Mapping[str, str] = field(default_factory=dict)
    #: the new address when every redirect on the way was permanent
    moved_to: str | None = None
    #: a message for a person when status is ERROR or GONE
    error: str | None = None
    #: the raw Retry-After header of a 429 or 503
    retry_after: str | None = None


@dataclass(frozen=True)
class FeedDecision:
    """The feed's new state, and what to say about this fetch."""

    state: FeedState
    #: why this fetch failed, for the report (None when it did not)
    error: str | None = None
    #: "not modified" (304), "unchanged" (the same body again), or "" (a body was read, or an error)
    note: str = ""
    #: the new address when this fetch found the feed moved (not already known): worth a log line
    newly_moved_to: str | None = None


def decide_feed_state(
    old: FeedState,
    outcome: FetchOutcome,
    reading: FeedReading | None,
    digest: str | None,
    now: datetime,
    settings: schedule.ScheduleSettings,
) -> FeedDecision:
    """The feed's state after `outcome`.

    `reading` is what parsing the body gave, or None when it was not parsed
    (a 304, the same body again, a failed fetch); `digest` is the hash of the
    body fetched (None when there was none).
    """
    newly_moved = outcome.moved_to if outcome.moved_to != old.moved_to else None
    moved = outcome.moved_to or old.moved_to
    if outcome.status is Status.GONE:
        error = f"{outcome.error}: the feed is gone, fetching stopped"
        state = replace(old, disabled_reason=error, next_fetch=None)
        return FeedDecision(state, error, newly_moved_to=newly_moved)
    if outcome.status is Status.ERROR:
        failure = outcome.error
    else:
        failure = reading.error if reading is not None else None
    if outcome.status is Status.ERROR or failure:
        errors = old.consecutive_errors + 1
        retry_after = schedule.parse_retry_after(outcome.retry_after, now)
        state = replace(
            old,
            consecutive_errors=errors,
            moved_to=moved,
            next_fetch=schedule.next_after_error(now, errors, retry_after, settings),
        )
        if errors > 1:
            failure = f"{failure} ({errors} failures in a row)"
        return FeedDecision(state, failure, newly_moved_to=newly_moved)
    headers = outcome.headers
    if reading is None:
        # Not parsed (304, or the same body again): the response's own
        # Cache-Control is the hint there is, and the old validators stand
        # unless it sends new ones.
        interval = schedule.feed_interval(cache_control=headers.get("cache-control"))
        etag = headers.get("etag", old.etag)
        last_modified = headers.get("last-modified", old.last_modified)
        note = "not modified" if outcome.status is Status.NOT_MODIFIED else "unchanged"
    else:
        interval = reading.interval
        etag, last_modified = headers.get("etag"), headers.get("last-modified")
        note = ""
    state = FeedState(
        etag=etag,
        last_modified=last_modified,
        body_hash=digest or old.body_hash,
        next_fetch=schedule.next_after_success(now, interval, settings),
        moved_to=moved,
        last_success=now,
    )
    return FeedDecision(state, None, note, newly_moved)
