"""One feed body -> entries: parse it and normalize its items. Pure, no IO.

This is what the parser worker processes run (see aggregator/workers.py), so
it imports only what parsing and normalizing need: a worker process starts
by importing this module, and every heavy import here is paid again in each
worker.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from aggregator.errors import NormalizeError, SourceError
from aggregator.model import Entry, Failure, FeedMeta, RawItem, Source
from aggregator.normalize import feed_meta, normalize, refusals_warning, refused_links
from aggregator.sources import schedule
from aggregator.sources.parse import Deadline, ParseSettings, ParseTimeout, parse

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EntrySettings:
    """How items become entries, from config: the same for posts and feed items."""

    #: query parameters dropped from canonical URLs ([dedupe] tracking_params)
    tracking_params: tuple[str, ...]
    #: what stands for a code block in plain text ([content] code_placeholder)
    code_placeholder: str


@dataclass(frozen=True)
class FeedReading:
    """What reading one feed body gave: its entries, or why it gave none."""

    entries: tuple[Entry, ...] = ()
    #: items that could not be normalized (the rest are kept)
    failures: tuple[Failure, ...] = ()
    #: the whole feed failed to parse
    error: str | None = None
    warning: str | None = None
    #: how often the feed asks to be fetched (ttl, sy:update*, Cache-Control)
    interval: timedelta | None = None
    #: what the feed says about itself, for atom:source in our feeds
    meta: FeedMeta | None = None


def read_feed(
    body: bytes,
    headers: dict[str, str],
    url: str,
    source: Source,
    now: datetime,
    settings: ParseSettings,
    entry: EntrySettings,
) -> FeedReading:
    """Parse one feed body and normalize its items.

    Returns values only, never raises for bad input: it runs in a worker
    process, and exceptions do not always survive pickling. The whole read
    (parsing, sanitizing, normalizing) takes at most `settings.timeout`: out
    of time while parsing, the feed fails; while normalizing, the entries
    normalized so far are kept, with a warning.
    """
    deadline = Deadline(settings.timeout)
    entries: list[Entry] = []
    failures: list[Failure] = []
    notes: list[Failure] = []
    late = None
    with deadline:
        try:
            parsed = parse(body, headers, url, settings, deadline)
        except SourceError as e:
            return FeedReading(error=e.reason)
        items = [
            replace(i, tags=(*i.tags, *source.tags)) if source.tags else i for i in parsed.items
        ]
        try:
            normalize_items(items, url, now, entry, deadline, entries, failures, notes)
        except ParseTimeout:
            if not entries:
                return FeedReading(error=f"reading took longer than {settings.timeout:g} s")
            late = (
                f"reading took longer than {settings.timeout:g} s: kept the first "
                f"{len(entries) + len(failures)} of {len(items)} entries"
            )
    interval = schedule.feed_interval(
        parsed.ttl, parsed.update_period, parsed.update_frequency, headers.get("cache-control")
    )
    # Links readers would be shown that the URL policy refuses: left out, and
    # said once for the feed, not once per item.
    meta, refused_channel = feed_meta(parsed.feed_id, parsed.title, parsed.link, url)
    refused = refused_links(items, url) + ([refused_channel] if refused_channel else [])
    warning = (
        "; ".join(
            w
            for w in (parsed.warning, late, refusals_warning(refused), _cut_warning(notes, url))
            if w
        )
        or None
    )
    return FeedReading(tuple(entries), tuple(failures), None, warning, interval, meta)


def normalize_items(
    items: list[RawItem],
    base_url: str,
    now: datetime,
    settings: EntrySettings,
    deadline: Deadline,
    batch: list[Entry],
    failures: list[Failure],
    notes: list[Failure],
) -> None:
    """Normalize each item into `batch`; an item that cannot be is a Failure
    in `failures`, the rest go on; what sanitizing cut goes to `notes`.

    Raises ParseTimeout, checked before each item, once `deadline` has
    passed: the lists hold the items done so far.
    """
    for item in items:
        deadline.check()
        cut: list[str] = []
        try:
            batch.append(
                normalize(
                    item, base_url, now,
                    code_placeholder=settings.code_placeholder,
                    tracking_params=settings.tracking_params,
                    notes=cut,
                )
            )  # fmt: skip
        except NormalizeError as e:
            failures.append(Failure(item.location, str(e)))
        except ParseTimeout:
            raise
        except Exception as e:  # a bug: this item fails, the feed's others go on
            log.error("%s: normalizing failed", item.location, exc_info=e)
            failures.append(Failure(item.location, f"internal error: {e!r}"))
        notes.extend(Failure(item.location, n) for n in cut)


def _cut_warning(notes: list[Failure], url: str) -> str | None:
    """What sanitizing cut from the feed's entries, said once for the feed
    (whose URL heads the warning already): "entry-2: HTML nested..."."""
    if not notes:
        return None
    entries = len({n.location for n in notes})
    first = notes[0]
    more = f" (and in {entries - 1} more entries)" if entries > 1 else ""
    return f"{first.location.removeprefix(url + '#')}: {first.reason}{more}"
