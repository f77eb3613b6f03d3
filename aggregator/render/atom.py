"""The digest as Atom 1.0 feeds (feedgen).

feed.atom holds the newest page; older pages follow as feed/page-N.atom,
linked with rel="next".
"""

from __future__ import annotations

import html
import uuid
from collections.abc import Sequence
from datetime import datetime

from feedgen.feed import FeedGenerator

from aggregator import PROJECT_URL, __version__
from aggregator.config import SiteConfig
from aggregator.model import DigestEntry, Page, StoredEntry


def entry_id(stored: StoredEntry) -> str:
    """A stable URI naming one entry forever: from its source and guid."""
    return uuid.uuid5(uuid.NAMESPACE_URL, f"{stored.source.key}\n{stored.entry.guid}").urn


def feed_path(number: int) -> str:
    """Where page `number` of the Atom feed is written, relative to the output dir."""
    return "feed.atom" if number == 1 else f"feed/page-{number}.atom"


def render_feed(pages: Sequence[Page], site: SiteConfig, built: datetime) -> dict[str, bytes]:
    """Render every page of the Atom feed; return {path: bytes}."""
    return {feed_path(p.number): _render_page(p, site, built) for p in pages}


def _render_page(page: Page, site: SiteConfig, built: datetime) -> bytes:
    fg = FeedGenerator()
    fg.id(site.url(""))
    fg.title(site.title)
    fg.subtitle(site.subtitle)
    fg.author({"name": site.author})
    fg.language(site.language)
    fg.generator("aggregator", version=__version__, uri=PROJECT_URL)
    fg.link(href=site.url(""), rel="alternate", type="text/html")
    fg.link(href=site.url(feed_path(page.number)), rel="self", type="application/atom+xml")
    if page.number < page.total:
        fg.link(
            href=site.url(feed_path(page.number + 1)),
            rel="next",
            type="application/atom+xml",
        )
    if page.number > 1:
        fg.link(href=site.url(feed_path(1)), rel="first", type="application/atom+xml")
    # atom:updated is the newest entry's update, so an unchanged digest gives the same file.
    newest = max((d.stored.entry.updated for d in page.entries), default=built)
    fg.updated(newest)
    for d in page.entries:
        _add_entry(fg, d)
    xml: bytes = fg.atom_str(pretty=True, encoding="UTF-8")
    return xml


def _add_entry(fg: FeedGenerator, d: DigestEntry) -> None:
    e = d.stored.entry
    fe = fg.add_entry(order="append")
    fe.id(entry_id(d.stored))
    fe.title(e.title)
    if e.link:
        fe.link(href=e.link, rel="alternate", type="text/html")
    fe.published(e.published)
    fe.updated(e.updated)
    fe.author({"name": e.author or d.stored.source.name})
    for tag in e.tags:
        fe.category(term=tag)
    fe.summary(d.excerpt or e.title)
    if e.content_html:
        fe.content(e.content_html, type="html")
    elif not e.link:
        # Atom needs a link or a content element; a feed item may have neither
        # (found by feedparser's corpus, issue 4).
        fe.content(f"<p>{html.escape(e.title)}</p>", type="html")
