"""Build: render every site output and the email preview from the store, and write them."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from aggregator.config import Config
from aggregator.deliver.files import copy_files, remove_stale_outputs, write_outputs
from aggregator.digest import (
    feed_entries,
    feed_history,
    paginate,
    tags_of,
)
from aggregator.errors import AggregatorError
from aggregator.model import (
    BuildReport,
    Failure,
)
from aggregator.pipeline.ingestion import _content_settings
from aggregator.pipeline.mailing import _archive_pages, _email_preview
from aggregator.pipeline.paging import _digest_settings, _visible
from aggregator.render.atom import render_feed, render_tag_feeds
from aggregator.render.jsonfeed import render_json_feed
from aggregator.render.pages import render_pages
from aggregator.render.rss import render_rss
from aggregator.sources import content
from aggregator.store import Store


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
