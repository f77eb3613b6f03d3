"""The one orchestrator: ingest(), build(), run().

Stages decide; this module moves values between them and the world. Every
per-item problem becomes a Failure in the report, and the run goes on.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import datetime

from aggregator import dedupe, fingerprint
from aggregator.config import Config
from aggregator.deliver.files import write_outputs
from aggregator.digest import DigestSettings, also_in_names, paginate
from aggregator.errors import AggregatorError, NormalizeError, SourceError
from aggregator.model import (
    BuildReport,
    Entry,
    Failure,
    IngestReport,
    Page,
    RawItem,
    Source,
    SourceResult,
)
from aggregator.normalize import normalize
from aggregator.render.atom import render_feed
from aggregator.render.email import render_email
from aggregator.render.pages import render_pages
from aggregator.sources import content, feeds
from aggregator.store import Store

log = logging.getLogger(__name__)


def ingest(config: Config, store: Store, now: datetime) -> IngestReport:
    """Read every source into the store, then dedupe."""
    results = [_ingest_content(config, store, now)]
    results += [
        _ingest_feed(source, store, now, config.dedupe.tracking_params)
        for source in config.feed_sources
    ]
    linked = dedupe_changed(config, store)
    return IngestReport(results=tuple(results), linked=linked)


def _content_settings(config: Config) -> content.ContentSettings:
    return content.ContentSettings(
        dir=config.content.dir,
        base_url=config.site.base_url,
        permalink=config.content.permalink,
        timezone=config.site.tz,
        author=config.site.author,
    )


def _ingest_content(config: Config, store: Store, now: datetime) -> SourceResult:
    source = config.content_source
    source_id = store.ensure_source(source)
    scan = content.scan(_content_settings(config))
    published = [i for i in scan.items if not i.draft]
    batch, failures = _normalize_all(
        published, source, config.site.base_url, now, config.dedupe.tracking_params
    )
    failures = list(scan.failures) + failures
    result = store.upsert_entries(source_id, batch, now)
    # A post deleted (or turned into a draft) leaves the digest; its row stays.
    # While any post is unreadable we cannot tell which entry it was, so
    # nothing is marked gone: a broken file must not hide its last good version.
    if not failures:
        store.mark_gone(source_id, {e.guid for e in batch})
    store.record_check(source_id, now, _summary(failures))
    return SourceResult(
        source=source,
        items=len(batch),
        new=result.new,
        changed=result.changed,
        failures=tuple(failures),
    )


def _ingest_feed(
    source: Source, store: Store, now: datetime, tracking_params: Sequence[str] = ()
) -> SourceResult:
    source_id = store.ensure_source(source)
    try:
        parsed = feeds.parse(feeds.fetch(source.key))
    except SourceError as e:
        failure = Failure(e.location, e.reason)
        store.record_check(source_id, now, str(failure))
        return SourceResult(source=source, failures=(failure,))
    if parsed.warning:
        log.warning("%s: %s", source.key, parsed.warning)
    items = [
        RawItem(**{**i.__dict__, "tags": (*i.tags, *source.tags)}) if source.tags else i
        for i in parsed.items
    ]
    batch, failures = _normalize_all(items, source, source.key, now, tracking_params)
    result = store.upsert_entries(source_id, batch, now)
    store.record_check(source_id, now, _summary(failures))
    return SourceResult(
        source=source,
        items=len(batch),
        new=result.new,
        changed=result.changed,
        failures=tuple(failures),
    )


def _normalize_all(
    items: list[RawItem],
    source: Source,
    base_url: str,
    now: datetime,
    tracking_params: Sequence[str] = (),
) -> tuple[list[Entry], list[Failure]]:
    batch: list[Entry] = []
    failures: list[Failure] = []
    for item in items:
        try:
            batch.append(normalize(item, base_url, now, tracking_params=tracking_params))
        except NormalizeError as e:
            failures.append(Failure(item.location, str(e)))
    return batch, failures


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


def dedupe_incremental(store: Store, settings: dedupe.DedupeSettings) -> int:
    """dedupe_changed with explicit settings (tests, benchmark)."""
    dirty_all = store.dedupe_dirty_ids()
    linked = 0
    for start in range(0, len(dirty_all), DEDUPE_BATCH):
        linked += _dedupe_batch(store, settings, dirty_all[start : start + DEDUPE_BATCH])
    return linked


def _dedupe_batch(store: Store, settings: dedupe.DedupeSettings, dirty: list[int]) -> int:
    # Earlier batches are indexed already, so a later entry still finds them.
    live = store.dedupe_candidates(dirty)
    texts = store.entry_texts([c.id for c in live])
    keys = {c.id: fingerprint.lsh_keys(texts[c.id], settings.near_min_words) for c in live}
    store.replace_lsh_keys(dirty, keys)
    lsh = {k for ks in keys.values() for k in ks}
    scope = store.dedupe_neighbours(live, lsh, settings.max_group) | set(dirty)
    scope = store.cluster_mates(scope)
    linked = _recluster_scope(store, scope, settings, texts)
    store.clear_dedupe_dirty(dirty)
    return linked


def dedupe_all(config: Config, store: Store) -> int:
    """Full re-cluster of every visible entry (`aggregator dupes --recluster`).

    Indexes any entries not yet indexed first. Never all pairs: only
    entries sharing a key or an LSH bucket are compared.
    """
    return dedupe_full(store, dedupe_settings(config))


def dedupe_full(store: Store, settings: dedupe.DedupeSettings) -> int:
    """dedupe_all with explicit settings (tests, benchmark)."""
    dirty = store.dedupe_dirty_ids()
    if dirty:
        live = store.dedupe_candidates(dirty)
        texts = store.entry_texts([c.id for c in live])
        store.replace_lsh_keys(
            dirty,
            {c.id: fingerprint.lsh_keys(texts[c.id], settings.near_min_words) for c in live},
        )
    candidates = store.dedupe_candidates()
    buckets = store.lsh_buckets(None, settings.max_group)
    pairs = dedupe.propose(candidates, buckets, settings)
    texts = store.entry_texts(dedupe.texts_needed(pairs))
    edges = dedupe.judge(pairs, {c.id: c for c in candidates}, texts, settings)
    links = dedupe.build_clusters({c.id: c for c in candidates}, edges, store.dupe_splits())
    # Every entry linked now or before: the rest stay canonical as they are.
    linked = store.apply_dupe_links(store.linked_ids(), links)
    store.clear_dedupe_dirty(dirty)
    return linked


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


def digest_pages(config: Config, store: Store, now: datetime) -> list[Page]:
    """The digest as pages of entries, newest first, each article once."""
    visible = store.visible_entries(now, [s.key for s in config.sources])
    copies = store.duplicates_of([s.id for s in visible])
    also_in = {s.id: also_in_names(s, copies.get(s.id, [])) for s in visible}
    d = config.digest
    settings = DigestSettings(
        page_size=d.page_size,
        excerpt_length=d.excerpt_length,
        lead_count=d.lead_count,
        lead_excerpt_length=d.lead_excerpt_length,
        ellipsis=d.ellipsis,
    )
    return paginate(visible, also_in, settings)


def build(config: Config, store: Store, now: datetime) -> BuildReport:
    """Render every output from the store and write it atomically."""
    pages = digest_pages(config, store, now)
    site = config.site
    email = render_email(pages[0].entries, site, web_url=site.url(""))
    outputs = _merge(
        render_feed(pages, site, now),
        render_pages(pages, site),
        {"email.html": email.html.encode("utf-8"), "email.txt": email.text.encode("utf-8")},
    )
    written = write_outputs(config.output.dir, outputs)
    return BuildReport(written=tuple(written))


def _merge(*parts: Mapping[str, bytes]) -> dict[str, bytes]:
    """Join renderers' outputs; two renderers claiming one path is a bug."""
    merged: dict[str, bytes] = {}
    for part in parts:
        for path, data in part.items():
            if path in merged:
                raise AggregatorError(f"two outputs claim the same path: {path}")
            merged[path] = data
    return merged
