"""The digest as JSON Feed 1.1 (feed.json), https://jsonfeed.org/version/1.1.

No library: JSON Feed is a plain JSON object, built here as a dict and
serialized by `json` (sorted keys, fixed separators), so the same entries
always give the same bytes. It lists the same entries, with the same ids,
as feed.atom's subscription document.

`summary` is plain text and `content_html` the sanitized HTML, as the
format defines them; `url` passes the URL policy again (render/entries.py),
and an entry that cannot be written is left out and reported.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from aggregator.config import SiteConfig
from aggregator.model import DigestEntry, SourceKind
from aggregator.render.atom import entry_id, public_url
from aggregator.render.entries import Rendered, for_readers, skipping_unwritable

JSON_PATH = "feed.json"
VERSION = "https://jsonfeed.org/version/1.1"


def render_json_feed(entries: Sequence[DigestEntry], site: SiteConfig) -> Rendered:
    """Render feed.json from the subscription document's entries."""

    def render(shown: Sequence[DigestEntry]) -> bytes:
        return _json_feed(shown, site)

    data, failures = skipping_unwritable(render, for_readers(entries), JSON_PATH)
    return Rendered({JSON_PATH: data}, failures)


def _json_feed(entries: Sequence[DigestEntry], site: SiteConfig) -> bytes:
    feed: dict[str, Any] = {
        "version": VERSION,
        "title": site.title,
        "description": site.subtitle,
        "home_page_url": site.url(""),
        "feed_url": public_url(site, JSON_PATH),
        "language": site.language,
        "authors": [{"name": site.author}],
        "items": [_item(d) for d in entries],
    }
    text = json.dumps(feed, ensure_ascii=False, indent=2, sort_keys=True) + "\n"
    return text.encode("utf-8")


def _item(d: DigestEntry) -> dict[str, Any]:
    e = d.stored.entry
    item: dict[str, Any] = {
        "id": entry_id(d.stored),
        "url": e.link or None,
        "title": e.title,
        "summary": d.excerpt or e.title,
        "content_html": e.content_html or None,
        "date_published": e.published.isoformat(),
        "date_modified": e.updated.isoformat(),
        "authors": [{"name": e.author or d.stored.source.name}],
        "tags": list(e.tags) or None,
    }
    # JSON Feed has no "source" object: an extension (keys start with "_") says
    # which feed an entry came from and where else the article appears.
    if d.stored.source.kind is SourceKind.FEED or d.also_in:
        item["_aggregator"] = {"source": d.stored.source.name, "also_in": list(d.also_in)}
    return {k: v for k, v in item.items() if v is not None}
