"""The front door: every operation the command line and the daemon perform.

cli.py and daemon.py call these and nothing below them. Each operation opens
nothing itself: the caller hands in the Config and a Store from `open_store`,
so one command (or one daemon job) uses one connection pool throughout.

The jobs (ingest, build, send, housekeeping) are wrapped in a run record:
a row in the store's `runs` table written when a job starts and when it
ends, so `status` and the health endpoint say when each last succeeded,
whoever ran it. A run killed mid-way keeps its start row with no end:
status shows it as interrupted, and `Store.build_pending` makes the next
run rebuild. There is one recorded send, `send`, for cron and daemon alike.

What this module does not do: locking (the caller holds the run lock),
scheduling (daemon.py), printing (cli.py).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Protocol

from aggregator import clock, dedupe, feedlist, newsletter, pipeline
from aggregator import status as status_mod
from aggregator.config import Config, FeedConfig
from aggregator.deliver.files import missing_outputs, remove_stale_temp_files
from aggregator.model import (
    BuildReport,
    DupeCluster,
    IngestReport,
    SendReport,
    SourceStatus,
    Subscriber,
)
from aggregator.newsletter.smtp import Progress as SendProgress
from aggregator.sources.opml import OpmlFeed
from aggregator.status import BUILD, HOUSEKEEPING, INGEST, SEND, VACUUM, Status
from aggregator.store import Store

__all__ = ["BUILD", "HOUSEKEEPING", "INGEST", "SEND", "Status", "Store"]

log = logging.getLogger("aggregator.jobs")


@contextmanager
def open_store(config: Config) -> Iterator[Store]:
    """The database of `config`, created or upgraded, closed when the block ends."""
    store = Store.open(config.database.url)
    try:
        yield store
    finally:
        store.close()


# -- jobs, recorded as runs ----------------------------------------------------


@dataclass
class RunNote:
    """What a job tells its run record before it ends."""

    detail: str | None = None
    changes: int | None = None


@contextmanager
def recorded(store: Store, job: str) -> Iterator[RunNote]:
    """Record a run of `job`: started now, finished when the block ends.

    An exception marks the run failed (with its message) and propagates.
    """
    run_id = store.start_run(job, clock.now())
    note = RunNote()
    try:
        yield note
    except BaseException as e:
        store.finish_run(run_id, clock.now(), error=str(e) or type(e).__name__, detail=note.detail)
        raise
    store.finish_run(run_id, clock.now(), detail=note.detail, changes=note.changes)


def ingest(
    config: Config,
    store: Store,
    *,
    all_feeds: bool = False,
    progress: pipeline.Progress | None = None,
) -> IngestReport:
    """Ingest every due source (every feed with `all_feeds`); log each failure
    with its source."""
    with recorded(store, INGEST) as note:
        report = pipeline.ingest(config, store, clock.now(), all_feeds=all_feeds, progress=progress)
        new = sum(r.new for r in report.results)
        changed = sum(r.changed for r in report.results)
        failed = sum(1 for r in report.results if not r.ok)
        # Links are recomputed from entries each time, so they only change
        # when entries do: new + changed says whether a build is needed.
        note.changes = new + changed
        note.detail = (
            f"{len(report.results)} sources, {new} new, {changed} changed, {failed} failing"
        )
    for f in report.failures:
        log.warning("ingest failure: %s", f, extra={"job": INGEST, "source": f.location})
    log.info("ingest done: %s", note.detail, extra={"job": INGEST, "status": "ok"})
    return report


def build(config: Config, store: Store, *, email_preview: bool = True) -> BuildReport:
    """Render and write every output (and the email preview, unless told not to)."""
    with recorded(store, BUILD) as note:
        report = pipeline.build(config, store, clock.now(), email_preview=email_preview)
        note.changes = len(report.written)
        note.detail = f"{len(report.written)} files written"
    log.info("build done: %s", note.detail, extra={"job": BUILD, "status": "ok"})
    return report


def build_if_due(config: Config, store: Store) -> BuildReport | None:
    """Build when an output of the last build is missing (or none was ever
    written here), an ingest changed something, a build was cut short, or the
    last build is older than [daemon] rebuild_interval; else None."""
    missing = outputs_missing(config)
    if missing:
        log.warning("building: %s", missing, extra={"job": BUILD})
        return build(config, store)
    (last_build,) = store.job_statuses([BUILD])
    stale = last_build.last_ok is None or last_build.last_ok.started < clock.now() - timedelta(
        seconds=config.daemon.rebuild_interval
    )
    if stale or store.build_pending():
        return build(config, store)
    return None


def outputs_missing(config: Config) -> str | None:
    """Why the outputs are not all in place (an empty output directory, a file
    the last build wrote gone), or None when they are."""
    return missing_outputs(config.output.dir)


class NewsletterSend(Protocol):
    """newsletter.send's signature: what `send` runs (the daemon's tests hand in a fake)."""

    def __call__(
        self,
        config: Config,
        store: Store,
        now: datetime,
        *,
        issue_key: str | None = ...,
        dry_run: bool = ...,
        outbox: Path | None = ...,
        resend_uncertain: bool = ...,
        progress: SendProgress | None = ...,
    ) -> SendReport: ...


#: the newsletter's own send: what `send` runs unless handed another
NEWSLETTER_SEND: NewsletterSend = newsletter.send


def send(
    config: Config,
    store: Store,
    *,
    issue_key: str | None = None,
    dry_run: bool = False,
    outbox: Path | None = None,
    resend_uncertain: bool = False,
    progress: SendProgress | None = None,
    sender: NewsletterSend = NEWSLETTER_SEND,
) -> SendReport:
    """The weekly send (see newsletter.send), recorded as a run: the one path
    `aggregator send` and the daemon's weekly job both take."""
    with recorded(store, SEND) as note:
        report = sender(
            config, store, clock.now(), issue_key=issue_key, dry_run=dry_run, outbox=outbox,
            resend_uncertain=resend_uncertain, progress=progress,
        )  # fmt: skip
        note.detail = newsletter.describe_send(report)
    log.info("send done: %s", note.detail, extra={"job": SEND, "status": "ok"})
    return report


def housekeeping(config: Config, store: Store) -> None:
    """Prune old run records and stray temp files; ANALYZE, and VACUUM when due."""
    d = config.daemon
    with recorded(store, HOUSEKEEPING) as note:
        now = clock.now()
        pruned = store.prune_runs(now - timedelta(days=d.keep_runs_days))
        temp = remove_stale_temp_files(config.output.dir, timedelta(hours=1))
        (last_vacuum,) = store.job_statuses([VACUUM])
        due = last_vacuum.last_ok is None or last_vacuum.last_ok.started < now - timedelta(
            days=d.vacuum_interval_days
        )
        if due:
            with recorded(store, VACUUM):
                store.optimize(vacuum=True)
        else:
            store.optimize(vacuum=False)
        note.detail = f"{pruned} old run records pruned, {temp} stray temp files removed" + (
            ", vacuumed" if due else ", analyzed"
        )
    log.info("housekeeping done: %s", note.detail, extra={"job": HOUSEKEEPING})


def status(config: Config, store: Store) -> Status:
    """Sources, entries, last runs, the next issue and the schedule, as of now."""
    return status_mod.status(config, store, clock.now())


def health(config: Config, store: Store) -> dict[str, object]:
    """The health endpoint's JSON answer (see status.health): unhealthy while
    the store cannot be read or outputs are missing."""
    return status_mod.health(config, store, clock.now(), outputs_missing=outputs_missing(config))


# -- the feeds followed ----------------------------------------------------------


@dataclass(frozen=True)
class FollowResult:
    """What `follow_feed` did."""

    #: the feed URL followed (the one a web page linked, after discovery)
    url: str
    name: str
    #: False when the feed was already followed
    added: bool
    #: the web page given, when it was one and `url` is the feed it links
    page: str | None = None


def follow_feed(
    config: Config, url: str, *, name: str = "", tags: tuple[str, ...] = (), check: bool = True
) -> FollowResult:
    """Follow a feed (written into config.toml); given a web page with `check`,
    the feed it links. The feed is fetched at the next ingest, re-enabled if
    it had been disabled."""
    feedlist.ensure_editable(config.path)
    url = feedlist.relative_to_config(config, url)
    page = None
    if check and url.startswith(("http://", "https://")):
        found, title = pipeline.find_feed(config, url)
        if found != url:
            page, url = url, found
        name = name or (title or "")
    added = feedlist.add_feeds(config.path, [FeedConfig(url=url, name=name, tags=tags)])
    if added:
        fresh = feedlist.reload(config)
        key = feedlist.source_key(fresh, url)
        with open_store(fresh) as store:
            store.forget_feed_state(key)
    return FollowResult(url=url, name=name, added=bool(added), page=page)


def unfollow_feed(config: Config, url: str) -> FeedConfig | None:
    """Stop following a feed (removed from config.toml; its entries are kept,
    hidden); None if no feed matches."""
    return feedlist.remove_feed(config.path, url)


def import_feeds(config: Config, opml_path: Path) -> tuple[list[OpmlFeed], list[FeedConfig]]:
    """Follow every feed of an OPML file: (the feeds listed, those newly added)."""
    listed = pipeline.read_opml(opml_path)
    added = feedlist.add_feeds(
        config.path, [FeedConfig(url=f.url, name=f.title, tags=f.tags) for f in listed]
    )
    return listed, added


def export_feeds(config: Config) -> bytes:
    """The feeds followed, as an OPML 2.0 document."""
    return pipeline.export_opml(config, clock.now())


def feed_statuses(config: Config, store: Store) -> list[SourceStatus]:
    """Every followed feed with its fetch state."""
    return store.source_statuses(config.feed_sources)


# -- subscribers -------------------------------------------------------------------


def subscribers(config: Config, store: Store) -> list[Subscriber]:
    """Every subscriber (config.toml's brought in first), with their status."""
    return newsletter.all_subscribers(config, store, clock.now())


def add_subscriber(config: Config, store: Store, email: str, name: str) -> Subscriber:
    """Add (or reactivate) a subscriber."""
    return newsletter.add_subscriber(config, store, email, name, clock.now())


def remove_subscriber(config: Config, store: Store, email: str) -> Subscriber | None:
    """Stop sending to a subscriber (kept, unsubscribed); None if unknown."""
    return newsletter.remove_subscriber(config, store, email, clock.now())


def unsubscribe(config: Config, store: Store, token_or_email: str) -> Subscriber | None:
    """The admin's unsubscribe, by token or address; None if neither is known."""
    return newsletter.unsubscribe_token_or_email(config, store, token_or_email, clock.now())


def unsubscribe_by_token(config: Config, store: Store, token: str, now: datetime) -> str | None:
    """The web endpoint's one-click unsubscribe: the address, or None for an unknown token."""
    sub = newsletter.unsubscribe(config, store, token, now)
    return sub.email if sub is not None else None


def preview(config: Config, store: Store, issue_key: str | None) -> list[Path]:
    """Write an issue's email HTML and text (default: the next issue); their paths."""
    return newsletter.preview(config, store, clock.now(), issue_key)


# -- duplicates --------------------------------------------------------------------


def recluster(config: Config, store: Store) -> int:
    """Re-judge every entry from scratch; the number of entries linked anew."""
    return pipeline.dedupe_all(config, store)


def dupe_clusters(store: Store) -> list[DupeCluster]:
    """Articles carried by several entries, each with its copies."""
    return store.dupe_clusters()


def split_duplicate(config: Config, store: Store, entry_id: int) -> list[int]:
    """Undo a wrong merge: `entry_id` leaves its cluster for good; the ids it left."""
    return pipeline.split_duplicate(config, store, entry_id, clock.now())


def describe_link(reason: str | None, score: float | None) -> str:
    """Why a copy was linked, in a word or two (guid, url, near: 0.93 ...)."""
    return dedupe.describe(reason, score)
