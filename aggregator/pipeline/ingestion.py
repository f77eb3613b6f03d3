"""The one orchestrator: ingest(), build(), run().

Stages decide; this module moves values between them and the world. Every
per-item problem becomes a Failure in the report, and the run goes on.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import secrets
import ssl
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures.process import BrokenProcessPool
from dataclasses import replace
from datetime import datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from aggregator import dedupe, fingerprint, issues
from aggregator.config import Config
from aggregator.deliver import message, smtp
from aggregator.deliver.files import copy_files, remove_stale_outputs, write_outputs
from aggregator.digest import (
    DigestSettings,
    also_in_names,
    feed_entries,
    feed_history,
    paginate,
    tags_of,
)
from aggregator.errors import AggregatorError, DeliveryError, SourceError
from aggregator.model import (
    UNSUBSCRIBE_PLACEHOLDER,
    BuildReport,
    DedupeCandidate,
    DeliveryStatus,
    DigestEntry,
    Failure,
    FeedState,
    IngestReport,
    Issue,
    Page,
    SendReport,
    Source,
    SourceResult,
    StoredEntry,
    Subscriber,
    SubscriberStatus,
)
from aggregator.normalize import normalize
from aggregator.render.atom import render_feed, render_tag_feeds
from aggregator.render.email import render_archive, render_email
from aggregator.render.jsonfeed import render_json_feed
from aggregator.render.pages import render_pages
from aggregator.render.rss import render_rss
from aggregator.sources import content, content_scan, feeds, opml, schedule
from aggregator.sources.feed_entries import EntrySettings, FeedReading, read_feed
from aggregator.sources.fetch import (
    FetchRequest,
    FetchResult,
    FetchSettings,
    FetchStatus,
    fetch_all,
    run_async,
)
from aggregator.sources.parse import ParseSettings
from aggregator.store import Store
from aggregator.workers import discard as discard_pool
from aggregator.workers import parser_pool

# The name log lines have always carried (this was aggregator/pipeline.py).
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


def _content_settings(config: Config) -> content.ContentSettings:
    return content.ContentSettings(
        dir=config.content.dir,
        base_url=config.site.base_url,
        permalink=config.content.permalink,
        timezone=config.site.tz,
        author=config.site.author,
        encoding=config.content.encoding,
        max_size=config.content.max_size,
        code_placeholder=config.content.code_placeholder,
    )


def _ingest_content(
    config: Config, store: Store, now: datetime, workers: int | None = None
) -> SourceResult:
    source = config.content_source
    source_id = store.ensure_source(source)
    settings = _content_settings(config)
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
    scanner = content_scan.Scanner(settings, store.content_files(source_id), finish, workers)
    new = changed = items = 0
    for batch in scanner.batches():
        result = store.upsert_entries(source_id, batch, now)
        new, changed, items = new + result.new, changed + result.changed, items + len(batch)
    out = scanner.outcome
    # A deleted post (or one turned draft) leaves the digest; its row stays.
    # A broken file counts as present under its last good guid, so it keeps
    # its last good version; other deletions still apply.
    if not any(f.location == str(settings.dir) for f in out.failures):
        store.mark_gone(source_id, out.present)
    store.save_content_files(source_id, out.states, out.removed)
    store.record_check(source_id, now, _summary(out.failures))
    for w in out.warnings:
        log.warning("%s", w)
    return SourceResult(
        source=source,
        items=items,
        new=new,
        changed=changed,
        failures=tuple(out.failures),
        warnings=tuple(out.warnings),
    )


# -- feeds (issue 4) ---------------------------------------------------------
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


def fetch_settings(config: Config) -> FetchSettings:
    """The [fetch] section as the fetcher's settings."""
    f = config.fetch
    return FetchSettings(
        concurrency=f.concurrency,
        per_host=f.per_host,
        connect_timeout=f.connect_timeout,
        read_timeout=f.read_timeout,
        total_timeout=f.total_timeout,
        max_bytes=f.max_bytes,
    )


def _schedule_settings(config: Config) -> schedule.ScheduleSettings:
    f = config.fetch
    return schedule.ScheduleSettings(
        min_interval=timedelta(minutes=f.min_interval_minutes),
        max_interval=timedelta(minutes=f.max_interval_minutes),
        backoff_cap=timedelta(minutes=f.backoff_cap_minutes),
    )


def entry_settings(config: Config) -> EntrySettings:
    """How items become entries, from config."""
    return EntrySettings(
        tracking_params=config.dedupe.tracking_params,
        code_placeholder=config.content.code_placeholder,
    )


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
        self.sched = _schedule_settings(config)
        self.entry_settings = entry_settings(config)
        self.parse_settings = ParseSettings(
            timeout=config.fetch.parse_timeout, max_entries=config.fetch.max_entries
        )
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
            async for fetched in fetch_all(requests, fetch_settings(self.config)):
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
        """Decide the feed's new state from the outcome, and record it."""
        key = fetched.request.key
        source = self.due[key]
        source_id = self.ids[key]
        old = self.states.get(key, FeedState())
        now, sched = self.now, self.sched
        moved = fetched.moved_to or old.moved_to
        if fetched.moved_to and fetched.moved_to != old.moved_to:
            log.warning("%s: moved permanently to %s; fetching from there", key, fetched.moved_to)
        error: str | None = None
        retry_after = None
        fetch_note = ""
        if fetched.status is FetchStatus.GONE:
            error = f"{fetched.error}: the feed is gone, fetching stopped"
            state = replace(old, disabled_reason=error, next_fetch=None)
        elif fetched.status is FetchStatus.ERROR or (parsed is not None and parsed.error):
            error = fetched.error if fetched.status is FetchStatus.ERROR else parsed.error  # type: ignore[union-attr]
            retry_after = schedule.parse_retry_after(fetched.retry_after, now)
            errors = old.consecutive_errors + 1
            state = replace(
                old,
                consecutive_errors=errors,
                moved_to=moved,
                next_fetch=schedule.next_after_error(now, errors, retry_after, sched),
            )
            if errors > 1:
                error = f"{error} ({errors} failures in a row)"
        else:
            interval = parsed.interval if parsed is not None else None
            # Not parsed (304, or the same body again): the response's own
            # Cache-Control is the hint there is.
            if parsed is None:
                interval = schedule.feed_interval(
                    cache_control=fetched.headers.get("cache-control")
                )
            state = FeedState(
                etag=fetched.headers.get("etag", old.etag if parsed is None else None),
                last_modified=fetched.headers.get(
                    "last-modified", old.last_modified if parsed is None else None
                ),
                body_hash=digest or old.body_hash,
                next_fetch=schedule.next_after_success(now, interval, sched),
                moved_to=moved,
                last_success=now,
            )
            if parsed is None:
                fetch_note = (
                    "not modified" if fetched.status is FetchStatus.NOT_MODIFIED else "unchanged"
                )
        if parsed is not None and parsed.error is None:
            if parsed.warning:
                log.warning("%s: %s", key, parsed.warning)
            self.unstored.append((key, state, parsed))
            self.unstored_entries += len(parsed.entries)
            if self.unstored_entries >= STORE_BATCH:
                self._store()
        else:
            failures = (Failure(fetched.url or key, error),) if error else ()
            self.checks.append((source_id, state, str(failures[0]) if failures else None))
            self._done(SourceResult(source=source, failures=failures, fetch=fetch_note))

    def _store(self) -> None:
        """Write the feeds read so far, in one transaction."""
        batch, self.unstored, self.unstored_entries = self.unstored, [], 0
        if not batch:
            return
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
                )
            )

    def _done(self, result: SourceResult) -> None:
        self.results.append(result)
        if self.progress:
            self.progress(len(self.results), len(self.due), result)


def _internal_error(fetched: FetchResult, error: Exception) -> FeedReading:
    """A bug met while reading one feed: logged with its traceback, and the
    feed fails with a message saying so."""
    log.error("%s: reading the feed failed", fetched.url, exc_info=error)
    return FeedReading(error=f"internal error while reading this feed: {error!r}")


def find_feed(config: Config, url: str) -> tuple[str, str | None]:
    """The feed at `url`, or the one the web page at `url` links: (feed URL, its title)."""
    found, parsed = feeds.find_feed(url, fetch_settings(config))
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


# -- dedupe (issue 5) --------------------------------------------------------


def dedupe_settings(config: Config) -> dedupe.DedupeSettings:
    """The dedupe stage's settings from config [dedupe]."""
    return dedupe.DedupeSettings(
        near_threshold=config.dedupe.near_threshold,
        near_min_words=config.dedupe.near_min_words,
    )


def dedupe_changed(config: Config, store: Store) -> int:
    """Incremental dedupe: index the entries new, changed or gone since the
    last time, and re-judge only their neighbourhood (entries sharing a key
    or an LSH bucket with them, and the clusters those belong to).

    Returns how many entries were newly linked to a canonical entry.
    """
    return dedupe_incremental(store, dedupe_settings(config))


#: dirty entries judged per round: bounds memory when a first ingest brings many
DEDUPE_BATCH = 5_000
#: a dirty set at least this share of the stored entries is judged in one
#: whole-store pass (dedupe_full: one grouped query finds every shared
#: bucket) rather than by looking up its keys and their buckets, which costs
#: more past this point (a first ingest of 17,306 entries: 3.8 s by lookups)
WHOLE_STORE_SHARE = 0.25
#: ... and of at least this many entries: smaller rounds stay incremental,
#: cheap either way, and leave every other cluster as it is
WHOLE_STORE_MIN = 1_000


def dedupe_incremental(
    store: Store,
    settings: dedupe.DedupeSettings,
    whole_store_share: float = WHOLE_STORE_SHARE,
    whole_store_min: int = WHOLE_STORE_MIN,
) -> int:
    """dedupe_changed with explicit settings (tests, benchmark).

    A dirty set of at least `whole_store_min` entries and `whole_store_share`
    of the store is judged by a full re-cluster instead, which gives the same
    clusters (tests: the corpus both ways) for less work.
    """
    dirty_all = store.dedupe_dirty_ids()
    if dirty_all and len(dirty_all) >= max(
        whole_store_min, whole_store_share * store.entry_count()
    ):
        return _dedupe_whole_store(store, settings, dirty_all)
    linked = 0
    for start in range(0, len(dirty_all), DEDUPE_BATCH):
        linked += _dedupe_batch(store, settings, dirty_all[start : start + DEDUPE_BATCH])
    return linked


def _dedupe_batch(store: Store, settings: dedupe.DedupeSettings, dirty: list[int]) -> int:
    # Earlier batches are indexed already, so a later entry still finds them.
    live = store.dedupe_candidates(dirty)
    keys, texts = _index_keys(store, [c.id for c in live], settings)
    store.replace_lsh_keys(dirty, keys)
    lsh = {k for ks in keys.values() for k in ks}
    scope = store.dedupe_neighbours(live, lsh, settings.max_group) | set(dirty)
    scope = store.cluster_mates(scope)
    linked = _recluster_scope(store, scope, settings, texts)
    store.clear_dedupe_dirty(dirty)
    return linked


def _index_keys(
    store: Store, ids: list[int], settings: dedupe.DedupeSettings
) -> tuple[dict[int, list[int]], dict[int, str]]:
    """The LSH keys of `ids`: from the index stored with each entry (computed
    by normalize in the parsing workers), else from its text. Also returns
    the texts it had to read."""
    keys: dict[int, list[int]] = {}
    missing = []
    for i, index in store.entry_lsh(ids).items():
        found = fingerprint.index_keys(index, settings.near_min_words)
        if found is None:
            missing.append(i)
        else:
            keys[i] = found
    texts = store.entry_texts(missing)
    keys.update((i, fingerprint.lsh_keys(t, settings.near_min_words)) for i, t in texts.items())
    return keys, texts


def dedupe_all(config: Config, store: Store) -> int:
    """Full re-cluster of every visible entry (`aggregator dupes --recluster`).

    Indexes any entries not yet indexed first. Never all pairs: only
    entries sharing a key or an LSH bucket are compared.
    """
    return dedupe_full(store, dedupe_settings(config))


def dedupe_full(store: Store, settings: dedupe.DedupeSettings) -> int:
    """dedupe_all with explicit settings (tests, benchmark)."""
    return _dedupe_whole_store(store, settings, store.dedupe_dirty_ids())


def _dedupe_whole_store(store: Store, settings: dedupe.DedupeSettings, dirty: list[int]) -> int:
    candidates = store.dedupe_candidates()
    if dirty:
        _index_all(store, dirty, candidates, settings)
    buckets = store.lsh_buckets(None, settings.max_group)
    pairs = dedupe.propose(candidates, buckets, settings)
    texts = store.entry_texts(dedupe.texts_needed(pairs))
    edges = dedupe.judge(pairs, {c.id: c for c in candidates}, texts, settings)
    links = dedupe.build_clusters({c.id: c for c in candidates}, edges, store.dupe_splits())
    # Every entry linked now or before: the rest stay canonical as they are.
    linked = store.apply_dupe_links(store.linked_ids(), links)
    store.clear_dedupe_dirty(dirty)
    return linked


def _index_all(
    store: Store,
    dirty: list[int],
    candidates: list[DedupeCandidate],
    settings: dedupe.DedupeSettings,
) -> None:
    """Index the LSH keys of `dirty` (visible ones: `candidates`) for a
    whole-store pass: the database copies the keys normalize stored with
    each entry (none read out), the rest are computed from their text."""
    stale = store.index_stored_lsh(dirty, fingerprint.SIGNATURE_VERSION, settings.near_min_words)
    if stale is None:  # a database that cannot: every index read out
        wanted = set(dirty)
        live = [c.id for c in candidates if c.id in wanted]
        store.replace_lsh_keys(dirty, _index_keys(store, live, settings)[0])
    elif stale:
        texts = store.entry_texts(stale)
        keys = {i: fingerprint.lsh_keys(t, settings.near_min_words) for i, t in texts.items()}
        store.replace_lsh_keys(stale, keys)


def split_duplicate(config: Config, store: Store, entry_id: int, now: datetime) -> list[int]:
    """Undo a wrong merge: `entry_id` leaves its cluster and stays apart from
    every other member in later ingests. Returns the ids it was parted from."""
    mates = sorted(store.cluster_mates([entry_id]) - {entry_id})
    if not store.dedupe_candidates([entry_id]):
        raise AggregatorError(f"no visible entry with id {entry_id} (see: aggregator dupes)")
    if not mates:
        raise AggregatorError(f"entry {entry_id} is not linked to any other entry")
    store.add_dupe_splits(entry_id, mates, now)
    _recluster_scope(store, {entry_id, *mates}, dedupe_settings(config), {})
    return mates


def _recluster_scope(
    store: Store, scope: set[int], settings: dedupe.DedupeSettings, texts: dict[int, str]
) -> int:
    """Cluster the entries of `scope` among themselves and record the links."""
    candidates = store.dedupe_candidates(scope)
    by_id = {c.id: c for c in candidates}
    pairs = dedupe.propose(candidates, store.lsh_buckets(scope, settings.max_group), settings)
    need = dedupe.texts_needed(pairs) - texts.keys()
    texts = {**texts, **store.entry_texts(need)}
    edges = dedupe.judge(pairs, by_id, texts, settings)
    links = dedupe.build_clusters(by_id, edges, store.dupe_splits(scope))
    return store.apply_dupe_links(scope, links)


def _digest_settings(config: Config) -> DigestSettings:
    d = config.digest
    return DigestSettings(
        page_size=d.page_size,
        excerpt_length=d.excerpt_length,
        lead_count=d.lead_count,
        lead_excerpt_length=d.lead_excerpt_length,
        ellipsis=d.ellipsis,
    )


def _visible(
    config: Config, store: Store, now: datetime
) -> tuple[list[StoredEntry], dict[int, tuple[str, ...]]]:
    """The entries to show, newest first, each article once; and their "also in"."""
    visible = store.visible_entries(now, [s.key for s in config.sources])
    copies = store.duplicates_of([s.id for s in visible])
    also_in = {s.id: also_in_names(s, copies.get(s.id, [])) for s in visible}
    return visible, also_in


def digest_pages(config: Config, store: Store, now: datetime) -> list[Page]:
    """The digest as pages of entries, newest first, each article once."""
    visible, also_in = _visible(config, store, now)
    return paginate(visible, also_in, _digest_settings(config))


def _paginate(
    config: Config, store: Store, visible: Sequence[StoredEntry], page_size: int
) -> list[Page]:
    """Pages of `page_size` entries with their "also in" (the email's one page)."""
    copies = store.duplicates_of([s.id for s in visible])
    also_in = {s.id: also_in_names(s, copies.get(s.id, [])) for s in visible}
    return paginate(visible, also_in, replace(_digest_settings(config), page_size=page_size))


def render_site(config: Config, store: Store, now: datetime) -> dict[str, bytes]:
    """Every feed and web page, as {path under the output dir: bytes}."""
    visible, also_in = _visible(config, store, now)
    settings = _digest_settings(config)
    site = config.site
    feeds = store.feed_meta()
    pages = paginate(visible, also_in, settings)
    history = feed_history(
        store.entry_slots(), visible, also_in, settings, config.output.archive_size
    )
    tags = tags_of(visible)
    tag_pages = [(t, paginate(t.entries, also_in, settings)) for t in tags]
    return _merge(
        render_feed(history, site, feeds),
        render_rss(history.current, site, feeds),
        render_json_feed(history.current, site),
        render_tag_feeds(
            [(t, feed_entries(t.entries, also_in, settings)) for t in tags], site, feeds
        ),
        render_pages(pages, site, tag_pages, settings.lead_count),
    )


def build(config: Config, store: Store, now: datetime) -> BuildReport:
    """Render every output from the store and write it atomically."""
    outputs = _merge(
        render_site(config, store, now),
        _email_preview(config, store, now),
        _archive_pages(store),
    )
    written = write_outputs(config.output.dir, outputs)
    # Images and other files beside the posts, at the same relative path,
    # which is where the posts' relative links were pointed.
    static = content.static_files(_content_settings(config))
    clashes = sorted(set(static) & set(outputs))
    failures = tuple(
        Failure(str(static[rel]), f"not copied: the output {rel} has that path") for rel in clashes
    )
    copied = {k: v for k, v in static.items() if k not in outputs}
    written += copy_files(config.output.dir, copied)
    # Only now that every new file is in place: remove what the last build
    # produced and this one does not (see deliver/files.py).
    removed = remove_stale_outputs(config.output.dir, {**outputs, **copied})
    return BuildReport(written=tuple(written), failures=failures, removed=tuple(removed))


def _merge(*parts: Mapping[str, bytes]) -> dict[str, bytes]:
    """Join renderers' outputs; two renderers claiming one path is a bug."""
    merged: dict[str, bytes] = {}
    for part in parts:
        for path, data in part.items():
            if path in merged:
                raise AggregatorError(f"two outputs claim the same path: {path}")
            merged[path] = data
    return merged


# -- the email digest (issue 7) -----------------------------------------------


def archive_path(key: str) -> str:
    """Where an issue's web archive page is written, relative to the output dir."""
    return f"issues/{key}.html"


def _archive_pages(store: Store) -> dict[str, bytes]:
    return {archive_path(i.key): i.archive_html.encode("utf-8") for i in store.issues()}


def _email_preview(config: Config, store: Store, now: datetime) -> dict[str, bytes]:
    """public/email.html and email.txt: the next issue, as it would be sent now."""
    issue = next_issue(config, store, now)
    return {
        "email.html": message.personalize(issue.html, "preview").encode("utf-8"),
        "email.txt": message.personalize(issue.text, "preview").encode("utf-8"),
    }


def unsubscribe_base(config: Config) -> str:
    """The one-click unsubscribe URL without its token: [email] unsubscribe_url,
    default <base_url>unsubscribe/. The daemon's web endpoint serves
    POST (RFC 8058 one-click) and GET (a confirmation page) at base + token."""
    return config.email.unsubscribe_url or config.site.url("unsubscribe/")


def list_headers(config: Config) -> message.ListHeaders:
    """From, List-Id and the unsubscribe addresses every message carries."""
    e = config.email
    if not e.from_:
        raise DeliveryError(f"{config.path}: set 'email.from' to send the email digest")
    sender = message.sender_address(e.from_)
    host = urlsplit(config.site.base_url).hostname or sender.domain
    return message.ListHeaders(
        sender=e.from_,
        list_id=e.list_id or f"{config.site.title} <digest.{host}>",
        unsubscribe_mailto=e.unsubscribe_mailto or sender.addr_spec,
        unsubscribe_url=unsubscribe_base(config),
    )


def _issue_entries(
    config: Config, store: Store, now: datetime, previous_cutoff: datetime | None
) -> list[DigestEntry]:
    visible = store.visible_entries(now, [s.key for s in config.sources])
    max_age = timedelta(days=config.email.max_age_days)
    chosen = issues.window(visible, previous_cutoff, now, max_age)
    return list(_paginate(config, store, chosen, max(1, len(chosen)))[0].entries)


def compose_issue(config: Config, store: Store, now: datetime, key: str | None = None) -> Issue:
    """The issue cut at `now`: entries first seen since the latest stored issue's
    cut-off, rendered and sized to fit. Not stored: `send` stores it."""
    key = key or issues.issue_key(now, config.site.tz)
    previous = store.latest_issue()
    entries = _issue_entries(config, store, now, previous.cutoff if previous else None)
    return _render_issue(config, key, entries, now)


def next_issue(config: Config, store: Store, now: datetime) -> Issue:
    """The issue the next `send` would compose (for previews)."""
    key = issues.issue_key(now, config.site.tz)
    if store.issue(key) is not None:  # this week's is out; the next is next week's
        key = issues.issue_key(now + timedelta(days=7), config.site.tz)
    return compose_issue(config, store, now, key)


def _render_issue(config: Config, key: str, entries: list[DigestEntry], now: datetime) -> Issue:
    site = config.site
    web_url = site.url(archive_path(key))
    # The placeholder is as long as a real token, so the size measured is the size sent.
    unsubscribe = message.placeholder_url(unsubscribe_base(config))
    rendered: dict[int, tuple[str, str]] = {}

    def render(n: int) -> tuple[str, str]:
        if n not in rendered:
            body = render_email(
                entries[:n], site, web_url, issue_key=key, total=len(entries),
                unsubscribe_url=unsubscribe,
            )  # fmt: skip
            rendered[n] = (body.html, body.text)
        return rendered[n]

    limit = config.email.max_html_kb * 1024
    shown = issues.fit(len(entries), lambda n: message.encoded_html_size(render(n)[0]), limit)
    html, text = render(shown)
    return Issue(
        key=key,
        cutoff=now,
        subject=issues.subject(
            config.email.subject, title=site.title, count=len(entries), issue=key
        ),
        html=html,
        text=text,
        archive_html=render_archive(entries, site, web_url, issue_key=key),
        entry_count=len(entries),
        shown_count=shown,
        created=now,
    )


def new_token() -> str:
    """An unsubscribe token: 192 random bits, URL-safe, 32 characters."""
    token = secrets.token_urlsafe(24)
    assert len(token) == len(UNSUBSCRIBE_PLACEHOLDER)  # keeps size measuring exact
    return token


def sync_subscribers(config: Config, store: Store, now: datetime) -> None:
    """Bring config.toml's [[subscribers]] into the database (see Store.sync_subscribers)."""
    listed = [(s.email, s.name) for s in config.subscribers]
    store.sync_subscribers(
        [(message.normalize_address(email), name) for email, name in listed], new_token, now
    )


def add_subscriber(
    config: Config, store: Store, email: str, name: str, now: datetime
) -> Subscriber:
    """Add (or reactivate) a subscriber; DeliveryError for an invalid address."""
    sync_subscribers(config, store, now)
    return store.add_subscriber(message.normalize_address(email), name, new_token(), now)


def remove_subscriber(config: Config, store: Store, email: str, now: datetime) -> Subscriber | None:
    """Mark a subscriber unsubscribed by the admin; None if unknown. Rows stay for history."""
    sync_subscribers(config, store, now)
    sub = store.subscriber_by_email(email.strip())
    if sub is None:
        return None
    return store.set_subscriber_status(
        sub.id, SubscriberStatus.UNSUBSCRIBED, "removed by admin", now
    )


def unsubscribe(config: Config, store: Store, token: str, now: datetime) -> Subscriber | None:
    """Unsubscribe the holder of `token` (idempotent); None for an unknown token.

    What the daemon's one-click POST (RFC 8058) and the admin command call.
    """
    sub = store.subscriber_by_token(token.strip())
    if sub is None:
        return None
    return store.set_subscriber_status(
        sub.id, SubscriberStatus.UNSUBSCRIBED, "unsubscribe link", now
    )


def smtp_settings(config: Config, tls_context: ssl.SSLContext | None = None) -> smtp.SmtpSettings:
    e = config.email
    return smtp.SmtpSettings(
        host=e.smtp_host, port=e.smtp_port, user=e.smtp_user, password=e.smtp_password(),
        starttls=e.starttls, implicit_tls=e.implicit_tls, timeout=e.timeout,
        rate_limit=e.rate_limit, retries=e.retries, retry_backoff=e.retry_backoff,
        tls_context=tls_context,
    )  # fmt: skip


def send(
    config: Config,
    store: Store,
    now: datetime,
    *,
    issue_key: str | None = None,
    dry_run: bool = False,
    outbox: Path | None = None,
    resend_uncertain: bool = False,
    progress: smtp.Progress | None = None,
    tls_context: ssl.SSLContext | None = None,
) -> SendReport:
    """Send this week's issue (or `issue_key`) to every active subscriber who
    has not had it, exactly once each; compose and store it first if needed.

    An issue with no entries is not composed or sent unless email.send_empty.
    `dry_run` writes one .eml per recipient into `outbox` (default
    <output>/outbox) and records nothing. Running it again resumes.
    """
    headers = list_headers(config)
    sync_subscribers(config, store, now)
    current = issues.issue_key(now, config.site.tz)
    key = issue_key or current
    if not issues.valid_key(key):
        raise DeliveryError(f"not an issue key: {key!r} (like {current})")
    issue = store.issue(key)
    composed = False
    if issue is None:
        if key != current:
            known = ", ".join(i.key for i in store.issues()[-5:]) or "none yet"
            raise DeliveryError(f"no issue {key} (stored issues: {known})")
        issue = compose_issue(config, store, now, key)
        if issue.entry_count == 0 and not config.email.send_empty:
            return SendReport(issue=None, empty=True, dry_run=dry_run)
        if not dry_run:
            issue, composed = store.add_issue(issue)
    if not dry_run:
        write_outputs(config.output.dir, {archive_path(key): issue.archive_html.encode("utf-8")})
    recipients = store.subscribers(SubscriberStatus.ACTIVE)
    if dry_run:
        box = outbox or config.output.dir / "outbox"
        sent_before = {
            sid for sid, d in store.deliveries(key).items() if d.status is DeliveryStatus.SENT
        }
        todo = [s for s in recipients if s.id not in sent_before]
        written = smtp.write_outbox(box, issue, todo, headers, now)
        return SendReport(
            issue=key, sent=len(written), already=len(recipients) - len(todo), dry_run=True,
            written=tuple(written), composed=composed,
        )  # fmt: skip
    if resend_uncertain:
        store.reset_uncertain(key, now)
    sender = smtp.Sender(store, smtp_settings(config, tls_context), headers, progress=progress)
    out = sender.send(issue, recipients)
    return SendReport(
        issue=key, sent=len(out.sent), already=len(out.already), busy=len(out.busy),
        failures=tuple(out.failures), uncertain=tuple(out.uncertain), composed=composed,
    )  # fmt: skip


def preview(
    config: Config, store: Store, now: datetime, issue_key: str | None = None
) -> list[Path]:
    """Write an issue's email HTML and text into the output directory; return the paths.

    Without a key: the next issue (public/email.html, email.txt, as build does).
    With a key: that stored issue, as sent (email-<key>.html, email-<key>.txt).
    """
    if issue_key is None:
        files = _email_preview(config, store, now)
    else:
        issue = store.issue(issue_key)
        if issue is None:
            raise DeliveryError(f"no issue {issue_key} in the database")
        files = {
            f"email-{issue_key}.html": message.personalize(issue.html, "preview").encode("utf-8"),
            f"email-{issue_key}.txt": message.personalize(issue.text, "preview").encode("utf-8"),
        }
    write_outputs(config.output.dir, files)
    return [config.output.dir / name for name in sorted(files)]
