"""Build: render every site output (and, unless asked not to, the email
preview) from the store, and write them."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime

from aggregator import newsletter, settings
from aggregator.config import Config
from aggregator.deliver.files import (
    BUILD_TEMP_AGE,
    copy_files,
    remove_stale_outputs,
    remove_stale_temp_files,
    write_outputs,
)
from aggregator.digest import feed_entries, feed_history, paginate, tags_of
from aggregator.errors import AggregatorError
from aggregator.model import BuildReport, Failure
from aggregator.pipeline.deduplication import dedupe_changed
from aggregator.pipeline.paging import visible
from aggregator.render.atom import render_feed, render_tag_feeds
from aggregator.render.entries import Rendered, merge
from aggregator.render.jsonfeed import render_json_feed
from aggregator.render.pages import render_not_found, render_pages
from aggregator.render.posts import render_posts
from aggregator.render.rss import render_rss
from aggregator.sources import content
from aggregator.store import Store

log = logging.getLogger("aggregator.pipeline")


def render_site(config: Config, store: Store, now: datetime) -> Rendered:
    """Every feed and web page, as {path under the output dir: bytes}, and the
    entries left out because they could not be written (one Failure each)."""
    shown, also_in = visible(config, store, now)
    digest = settings.digest_settings(config)
    site = config.site
    feeds = store.feed_meta()
    pages = paginate(shown, also_in, digest)
    history = feed_history(store.entry_slots(), shown, also_in, digest, config.output.archive_size)
    tags = tags_of(shown)
    tag_pages = [(t, paginate(t.entries, also_in, digest)) for t in tags]
    others = _merge_rendered(
        render_feed(history, site, feeds),
        render_rss(history.current, site, feeds),
        render_json_feed(history.current, site),
        render_tag_feeds(
            [(t, feed_entries(t.entries, also_in, digest)) for t in tags], site, feeds
        ),
        render_pages(pages, site, tag_pages, digest.lead_count),
        render_not_found(site),
    )
    return _merge_rendered(others, _without_clashes(render_posts(pages, site), others))


def _without_clashes(posts: Rendered, others: Rendered) -> Rendered:
    """Post pages whose permalink names a file another output is written to
    (a slug "tags" under permalink "/{slug}/") are left out and reported."""
    clashes = sorted(set(posts.files) & set(others.files))
    if not clashes:
        return posts
    kept = {k: v for k, v in posts.files.items() if k not in others.files}
    failures = tuple(
        Failure(rel, "no post page: another output of the site is written to that path")
        for rel in clashes
    )
    return Rendered(kept, posts.failures + failures)


def build(
    config: Config, store: Store, now: datetime, *, email_preview: bool = True
) -> BuildReport:
    """Render every output from the store and write it atomically.

    With `email_preview`, the next issue is composed (not stored, not sent)
    to write public/email.html and email.txt; the report names it. Stored
    issues' archive pages are written either way.
    """
    # Entries an ingest stored but was killed before judging (the dedupe
    # queue) are judged first, so a copy never shows twice; an empty queue
    # costs one query.
    dedupe_changed(config, store)
    # Temp files of a build that was killed mid-write (never one being
    # written: see BUILD_TEMP_AGE).
    stray = remove_stale_temp_files(config.output.dir, BUILD_TEMP_AGE)
    if stray:
        log.info("%d stray temp files of an interrupted build removed", stray)
    preview: dict[str, bytes] = {}
    previewed = None
    if email_preview:
        issue = newsletter.next_issue(config, store, now)
        preview, previewed = newsletter.preview_files(issue), issue.key
    site = render_site(config, store, now)
    outputs = _merge(site.files, preview, newsletter.archive_pages(store))
    written = write_outputs(config.output.dir, outputs)
    # Images and other files beside the posts, at the same relative path,
    # which is where the posts' relative links were pointed.
    static = content.static_files(settings.content_settings(config))
    clashes = sorted(set(static) & set(outputs))
    failures = site.failures + tuple(
        Failure(str(static[rel]), f"not copied: the output {rel} has that path") for rel in clashes
    )
    copied = {k: v for k, v in static.items() if k not in outputs}
    written += copy_files(config.output.dir, copied)
    # Only now that every new file is in place: remove what the last build
    # produced and this one does not (see deliver/files.py).
    removed = remove_stale_outputs(config.output.dir, {**outputs, **copied})
    return BuildReport(
        written=tuple(written), failures=failures, removed=tuple(removed),
        email_preview=previewed,
    )  # fmt: skip


def _merge_rendered(*parts: Rendered) -> Rendered:
    """Join renderers' outputs and the entries they left out."""
    try:
        return merge(*parts)
    except ValueError as e:  # two renderers claiming one path: a bug
        raise AggregatorError(str(e)) from None


def _merge(*parts: Mapping[str, bytes]) -> dict[str, bytes]:
    """Join renderers' outputs; two renderers claiming one path is a bug."""
    merged: dict[str, bytes] = {}
    for part in parts:
        for path, data in part.items():
            if path in merged:
                raise AggregatorError(f"two outputs claim the same path: {path}")
            merged[path] = data
    return merged
