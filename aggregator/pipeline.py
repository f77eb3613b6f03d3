"""The one orchestrator: ingest(), build(), run().

Stages decide; this module moves values between them and the world. Every
per-item problem becomes a Failure in the report, and the run goes on.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime
from functools import partial

from aggregator import dedupe
from aggregator.config import Config
from aggregator.deliver.files import copy_files, write_outputs
from aggregator.digest import (
    DigestSettings,
    also_in_names,
    feed_entries,
    feed_history,
    paginate,
    tags_of,
)
from aggregator.errors import AggregatorError, NormalizeError, SourceError
from aggregator.model import (
    BuildReport,
    Entry,
    Failure,
    FeedMeta,
    IngestReport,
    Page,
    RawItem,
    Source,
    SourceResult,
    StoredEntry,
)
from aggregator.normalize import normalize
from aggregator.render.atom import render_feed, render_tag_feeds
from aggregator.render.email import render_email
from aggregator.render.jsonfeed import render_json_feed
from aggregator.render.pages import render_pages
from aggregator.render.rss import render_rss
from aggregator.sources import content, content_scan, feeds
from aggregator.store import Store

log = logging.getLogger(__name__)


def ingest(config: Config, store: Store, now: datetime) -> IngestReport:
    """Read every source into the store, then dedupe."""
    results = [_ingest_content(config, store, now)]
    results += [_ingest_feed(source, store, now) for source in config.feed_sources]
    links = dedupe.cluster(store.dedupe_candidates())
    store.replace_dupe_links(links)
    return IngestReport(results=tuple(results), linked=len(links))


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


def _ingest_feed(source: Source, store: Store, now: datetime) -> SourceResult:
    source_id = store.ensure_source(source)
    try:
        parsed = feeds.parse(feeds.fetch(source.key))
    except SourceError as e:
        failure = Failure(e.location, e.reason)
        store.record_check(source_id, now, str(failure))
        return SourceResult(source=source, failures=(failure,))
    if parsed.warning:
        log.warning("%s: %s", source.key, parsed.warning)
    store.record_feed_meta(source_id, FeedMeta(parsed.feed_id, parsed.title, parsed.link))
    items = [
        RawItem(**{**i.__dict__, "tags": (*i.tags, *source.tags)}) if source.tags else i
        for i in parsed.items
    ]
    batch, failures = _normalize_all(items, source, source.key, now)
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
    items: list[RawItem], source: Source, base_url: str, now: datetime
) -> tuple[list[Entry], list[Failure]]:
    batch: list[Entry] = []
    failures: list[Failure] = []
    for item in items:
        try:
            batch.append(normalize(item, base_url, now))
        except NormalizeError as e:
            failures.append(Failure(item.location, str(e)))
    return batch, failures


def _summary(failures: list[Failure]) -> str | None:
    if not failures:
        return None
    first = str(failures[0])
    return first if len(failures) == 1 else f"{first} (and {len(failures) - 1} more)"


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
    pages = digest_pages(config, store, now)
    site = config.site
    email = render_email(pages[0].entries, site, web_url=site.url(""))
    outputs = _merge(
        render_site(config, store, now),
        {"email.html": email.html.encode("utf-8"), "email.txt": email.text.encode("utf-8")},
    )
    written = write_outputs(config.output.dir, outputs)
    # Images and other files beside the posts, at the same relative path,
    # which is where the posts' relative links were pointed.
    static = content.static_files(_content_settings(config))
    clashes = sorted(set(static) & set(outputs))
    failures = tuple(
        Failure(str(static[rel]), f"not copied: the output {rel} has that path") for rel in clashes
    )
    written += copy_files(config.output.dir, {k: v for k, v in static.items() if k not in outputs})
    return BuildReport(written=tuple(written), failures=failures)


def _merge(*parts: Mapping[str, bytes]) -> dict[str, bytes]:
    """Join renderers' outputs; two renderers claiming one path is a bug."""
    merged: dict[str, bytes] = {}
    for part in parts:
        for path, data in part.items():
            if path in merged:
                raise AggregatorError(f"two outputs claim the same path: {path}")
            merged[path] = data
    return merged
