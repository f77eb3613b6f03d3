"""Ingest: the content directory and the feeds into the store, then dedupe.

ingest() and the feed-management helpers (find_feed, read_opml, export_opml).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures.process import BrokenProcessPool
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any

from aggregator import settings
from aggregator.config import Config
from aggregator.errors import SourceError
from aggregator.model import (
    Entry,
    Failure,
    FeedState,
    IngestReport,
    Source,
    SourceResult,
)
from aggregator.normalize import adopt_guids, is_derived, normalize
from aggregator.pipeline.deduplication import dedupe_changed
from aggregator.sources import content_scan, feeds, opml, schedule
from aggregator.sources.feed_entries import FeedReading, read_feed
from aggregator.sources.feed_state import FetchOutcome, Status, decide_feed_state
from aggregator.sources.fetch import (
    FetchRequest,
    FetchResult,
    FetchStatus,
    fetch_all,
    run_async,
)
from aggregator.store import Store
from aggregator.workers import discard as discard_pool
from aggregator.workers import parser_pool

# The name log lines have always carried (log filters select on it).
log = logging.getLogger("aggregator.pipeline")


#: called with (feeds done, feeds to fetch, the latest result or None at the start)
Progress = Callable[[int, int, SourceResult | None], None]


def ingest(
    config: Config,
    store: Store,
    now: datetime,
    *,
    all_feeds: bool = False,
    progress: Progress | None = None,
) -> IngestReport:
    """Read the content directory and the feeds that are due into the store, then dedupe.

    A feed is due when its schedule says so (see sources/schedule.py);
    `all_feeds` fetches every feed that is not disabled. The daemon calls this
    every minute or so: feeds not due cost one database read.
    """
    results = [_ingest_content(config, store, now)]
    results += _ingest_feeds(config, store, now, all_feeds, progress)
    linked = dedupe_changed(config, store)
    return IngestReport(results=tuple(results), linked=linked)


def _ingest_content(
    config: Config, store: Store, now: datetime, workers: int | None = None
) -> SourceResult:
    source = config.content_source
    source_id = store.ensure_source(source)
    scan_settings = settings.content_settings(config)
    # normalize runs in the scan's worker processes: a partial of a module
    # function pickles, and keeps sources from importing another stage.
    finish = partial(
        normalize,
        base_url=config.site.base_url,
        now=now,
        allow_future=True,
        code_placeholder=config.content.code_placeholder,
        tracking_params=config.dedupe.tracking_params,
    )
    scanner = content_scan.Scanner(scan_settings, store.content_files(source_id), finish, workers)
    new = changed = items = 0
    for batch in scanner.batches():
        result = store.upsert_entries(source_id, batch, now)
        new, changed, items = new + result.new, changed + result.changed, items + len(batch)
    out = scanner.outcome
    # A deleted post (or one turned draft) leaves the digest; its row stays.
    # A broken file (or one under a folder that cannot be listed) counts as
    # present under its last good guid, so it keeps its last good version;
    # other deletions still apply. A missing or unreadable content directory
    # says nothing about its posts: they all stay (the scan's failure says so).
    gone = 0
    if not out.root_failed:
        gone = store.mark_gone(source_id, out.present)
        if gone and not out.present:
            out.warnings.append(_emptied(scan_settings.dir, gone))
    store.save_content_files(source_id, out.states, out.removed)
    store.record_check(source_id, now, _summary(out.failures))
    for w in out.warnings:
        log.warning("%s", w)
    return SourceResult(
        source=source,
        items=items,
        new=new,
        # A post that left the digest changed it: the daemon rebuilds for it.
        changed=changed + gone,
        failures=tuple(out.failures),
        warnings=tuple(out.warnings),
    )


def _emptied(folder: Path, gone: int) -> Failure:
    """The warning when the content directory now yields no post at all."""
    if gone == 1:
        them = "the 1 post published from it left the digest (kept in the database: it"
        them += " comes back with its file)"
    else:
        them = f"the {gone} posts published from it left the digest (kept in the database:"
        them += " they come back with their files)"
    return Failure(
        str(folder),
        f"no posts in the content directory now: {them}. If it should not be empty, check"
        " [content] dir in config.toml, or the volume mounted there",
    )


# -- feeds --------------------------------------------------------------------
# Fetch concurrently (asyncio + httpx), and as each body arrives parse and
# normalize it in a pool of worker processes (feedparser and the HTML work
# hold the GIL; processes use every core; the pool is kept across ingests, see
# workers.py). The store is written here, in the main process, as results come
# back, in transactions of about STORE_BATCH entries.

#: below this many feeds to fetch, parse in this process: starting workers costs more
POOL_MIN_FEEDS = 4
#: entries read from feeds are stored in transactions of about this many (one
#: commit per feed cost more than the inserts themselves)
STORE_BATCH = 1000


def _ingest_feeds(
    config: Config, store: Store, now: datetime, all_feeds: bool, progress: Progress | None
) -> list[SourceResult]:
    configured = config.feed_sources
    states = store.feed_states([s.key for s in configured])
    results: dict[str, SourceResult] = {}
    due: list[Source] = []
    for s in configured:
        st = states.get(s.key, FeedState())
        if st.disabled_reason:
            results[s.key] = SourceResult(source=s, fetch="disabled")
        elif all_feeds or schedule.is_due(st.next_fetch, now):
            due.append(s)
        else:
            results[s.key] = SourceResult(source=s, fetch="not due")
    if due:
        run = _FeedRun(config, store, now, due, states, progress)
        if run.use_pool:
            # Before the event loop starts its threads: the workers can be forked.
            parser_pool(run.workers)
        for r in run_async(run.go):
            results[r.source.key] = r
    return [results[s.key] for s in configured]


class _FeedRun:
    """One concurrent fetch-and-parse of the due feeds; the shell around the pure parts."""

    def __init__(
        self,
        config: Config,
        store: Store,
        now: datetime,
        due: Sequence[Source],
        states: Mapping[str, FeedState],
        progress: Progress | None,
    ) -> None:
        self.config, self.store, self.now = config, store, now
        self.due = {s.key: s for s in due}
        self.states = states
        self.progress = progress
        self.ids = store.ensure_sources(due)
        self.sched = settings.schedule_settings(config)
        self.entry_settings = settings.entry_settings(config)
        self.parse_settings = settings.parse_settings(config)
        self.results: list[SourceResult] = []
        #: feed states and checks written together at the end (one transaction)
        self.checks: list[tuple[int, FeedState, str | None]] = []
        #: feeds read but not yet stored: (key, new state, reading)
        self.unstored: list[tuple[str, FeedState, FeedReading]] = []
        self.unstored_entries = 0
        # Parsing here can be cut short by a timer only in a main thread.
        in_main = threading.current_thread() is threading.main_thread()
        self.use_pool = len(self.due) >= POOL_MIN_FEEDS or not in_main
        self.workers = config.fetch.parse_workers or os.cpu_count() or 1

    async def go(self) -> list[SourceResult]:
        requests = []
        for s in self.due.values():
            st = self.states.get(s.key, FeedState())
            requests.append(FetchRequest(s.key, st.moved_to or s.key, st.etag, st.last_modified))
        if self.progress:
            self.progress(0, len(requests), None)
        pending: set[asyncio.Task[None]] = set()
        try:
            async for fetched in fetch_all(requests, settings.fetch_settings(self.config)):
                st = self.states.get(fetched.request.key, FeedState())
                ok = fetched.status is FetchStatus.OK
                digest = hashlib.sha256(fetched.body).hexdigest() if ok else None
                if ok and digest != st.body_hash:
                    if self.use_pool:
                        task = asyncio.ensure_future(self._read_in_pool(fetched, digest))
                        pending.add(task)
                        task.add_done_callback(pending.discard)
                    else:
                        self._finish(fetched, digest, self._read_here(fetched))
                else:
                    self._finish(fetched, digest, None)
            if pending:
                await asyncio.gather(*pending)
            self._store()
        finally:
            for task in pending:
                task.cancel()
            # Feeds read but not stored (an interruption) keep their old
            # state, so the next run fetches them again.
            self.store.record_feed_checks(self.checks, self.now)
        return self.results

    def _read_args(self, fetched: FetchResult) -> tuple[Any, ...]:
        source = self.due[fetched.request.key]
        return (
            fetched.body, fetched.headers, fetched.url, source, self.now, self.parse_settings,
            self.entry_settings,
        )  # fmt: skip

    def _read_here(self, fetched: FetchResult) -> FeedReading:
        try:
            return read_feed(*self._read_args(fetched))
        except Exception as e:  # a bug: this feed fails, the run goes on
            return _internal_error(fetched, e)

    async def _read_in_pool(self, fetched: FetchResult, digest: str | None) -> None:
        pool = parser_pool(self.workers)
        loop = asyncio.get_running_loop()
        try:
            reading = await loop.run_in_executor(pool, read_feed, *self._read_args(fetched))
        except BrokenProcessPool:
            # A worker died (killed for memory?): this feed fails, the rest go
            # on in a fresh pool.
            discard_pool(pool)
            reading = FeedReading(error="the parser process died while reading this feed")
        except Exception as e:  # a bug: this feed fails, the run goes on
            reading = _internal_error(fetched, e)
        self._finish(fetched, digest, reading)

    def _finish(self, fetched: FetchResult, digest: str | None, parsed: FeedReading | None) -> None:
        """Record the feed's new state, as decide_feed_state decides it from the outcome."""
        key = fetched.request.key
        outcome = FetchOutcome(
            status=Status(fetched.status.value),
            headers=fetched.headers,
            moved_to=fetched.moved_to,
            error=fetched.error,
            retry_after=fetched.retry_after,
        )
        old = self.states.get(key, FeedState())
        decision = decide_feed_state(old, outcome, parsed, digest, self.now, self.sched)
        if decision.newly_moved_to:
            log.warning(
                "%s: moved permanently to %s; fetching from there", key, decision.newly_moved_to
            )
        if parsed is not None and parsed.error is None:
            if parsed.warning:
                log.warning("%s: %s", key, parsed.warning)
            self.unstored.append((key, decision.state, parsed))
            self.unstored_entries += len(parsed.entries)
            if self.unstored_entries >= STORE_BATCH:
                self._store()
        else:
            error = decision.error
            failures = (Failure(fetched.url or key, error),) if error else ()
            self.checks.append(
                (self.ids[key], decision.state, str(failures[0]) if failures else None)
            )
            self._done(SourceResult(source=self.due[key], failures=failures, fetch=decision.note))

    def _store(self) -> None:
        """Write the feeds read so far, in one transaction."""
        batch, self.unstored, self.unstored_entries = self.unstored, [], 0
        if not batch:
            return
        for key, _, reading in batch:
            _adopt_guids(self.store, self.ids[key], key, reading.entries)
        upserted = self.store.upsert_feeds(
            [(self.ids[key], reading.entries, reading.meta) for key, _, reading in batch], self.now
        )
        for (key, state, reading), up in zip(batch, upserted, strict=True):
            self.checks.append((self.ids[key], state, _summary(list(reading.failures))))
            self._done(
                SourceResult(
                    source=self.due[key],
                    items=len(reading.entries),
                    new=up.new,
                    changed=up.changed,
                    failures=reading.failures,
                    warnings=(Failure(key, reading.warning),) if reading.warning else (),
                )
            )

    def _done(self, result: SourceResult) -> None:
        self.results.append(result)
        if self.progress:
            self.progress(len(self.results), len(self.due), result)


def _adopt_guids(store: Store, source_id: int, key: str, batch: Sequence[Entry]) -> None:
    """Rows stored under an older derived guid take the guid their item has now
    (normalize.adopt_guids), before the batch is stored: one item, one row.
    Its own transaction: a crash after it leaves rows the upsert then finds."""
    titles = [e.title for e in batch if is_derived(e.guid)]
    if not titles:
        return
    plan = adopt_guids(batch, store.link_less_entries(source_id, titles))
    if plan.renames or plan.gone:
        store.rekey_entries(plan.renames, plan.gone)
        log.info(
            "%s: %d entries took their item's new guid, %d older copies hidden",
            key, len(plan.renames), len(plan.gone), extra={"source": key},
        )  # fmt: skip


def _internal_error(fetched: FetchResult, error: Exception) -> FeedReading:
    """A bug met while reading one feed: logged with its traceback, and the
    feed fails with a message saying so."""
    log.error("%s: reading the feed failed", fetched.url, exc_info=error)
    return FeedReading(error=f"internal error while reading this feed: {error!r}")


def find_feed(config: Config, url: str) -> tuple[str, str | None]:
    """The feed at `url`, or the one the web page at `url` links: (feed URL, its title)."""
    found, parsed = feeds.find_feed(
        url, settings.fetch_settings(config), settings.parse_settings(config)
    )
    return found, parsed.title


def read_opml(path: Path) -> list[opml.OpmlFeed]:
    """The feeds listed in an OPML file; SourceError naming the file if unreadable."""
    try:
        data = path.read_bytes()
    except OSError as e:
        raise SourceError(str(path), f"cannot read: {e.strerror}") from None
    return opml.read(data, str(path))


def export_opml(config: Config, now: datetime) -> bytes:
    """The configured feeds as an OPML 2.0 document."""
    return opml.write(
        [opml.OpmlFeed(url=s.key, title=s.name, tags=s.tags) for s in config.feed_sources],
        f"{config.site.title}: feeds",
        now,
    )


def _summary(failures: list[Failure]) -> str | None:
    if not failures:
        return None
    first = str(failures[0])
    return first if len(failures) == 1 else f"{first} (and {len(failures) - 1} more)"
