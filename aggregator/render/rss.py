"""The digest as RSS 2.0 (rss.xml, feedgen) for old readers.

It lists the same entries as feed.atom's subscription document, with the
same ids (as non-permalink guids). RSS has no archives: history is in Atom.
Nothing depends on the wall clock: lastBuildDate is the newest entry's
update, so a rebuild with nothing new gives byte-identical files.

RSS says nothing of what its text is, and readers treat `<description>` as
HTML: the plain-text excerpt is HTML-escaped before it goes there, so a post
that shows `<img onerror=...>` as text stays text. The sanitized content goes
in content:encoded. Links pass the URL policy again (render/entries.py), and
an entry that cannot be written is left out and reported.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence

from feedgen.feed import FeedGenerator

from aggregator import PROJECT_URL, __version__
from aggregator.config import SiteConfig
from aggregator.model import DigestEntry, FeedMeta, SourceKind
from aggregator.render.atom import EPOCH, entry_id, public_url
from aggregator.render.entries import (
    Rendered,
    for_readers,
    meta_for_readers,
    skipping_unwritable,
)
from aggregator.urls import public_url as reader_url

RSS_PATH = "rss.xml"


def render_rss(
    entries: Sequence[DigestEntry], site: SiteConfig, feeds: Mapping[str, FeedMeta]
) -> Rendered:
    """Render rss.xml from the subscription document's entries."""
    feeds = meta_for_readers(feeds)

    def render(shown: Sequence[DigestEntry]) -> bytes:
        return _rss(shown, site, feeds)

    xml, failures = skipping_unwritable(render, for_readers(entries), RSS_PATH)
    return Rendered({RSS_PATH: xml}, failures)


def _rss(entries: Sequence[DigestEntry], site: SiteConfig, feeds: Mapping[str, FeedMeta]) -> bytes:
    fg = FeedGenerator()
    fg.load_extension("dc", atom=False, rss=True)
    fg.title(site.title)
    fg.description(site.subtitle or site.title)
    fg.link(href=site.url(""), rel="alternate")
    fg.link(href=public_url(site, RSS_PATH), rel="self")
    fg.language(site.language)
    fg.generator("aggregator", version=__version__, uri=PROJECT_URL)
    # feedgen defaults lastBuildDate to now(); the newest entry's date keeps the file stable.
    fg.lastBuildDate(max((d.stored.entry.updated for d in entries), default=EPOCH))
    for d in entries:
        e = d.stored.entry
        fe = fg.add_entry(order="append")
        fe.guid(entry_id(d.stored), permalink=False)
        fe.title(e.title)
        if e.link:
            fe.link(href=e.link)
        fe.pubDate(e.published)
        fe.updated(e.updated)
        # Plain text, escaped as HTML: readers unescape the XML, then read HTML.
        fe.description(html.escape(d.excerpt or e.title, quote=False))
        if e.content_html:
            # CDATA cannot carry "]]>"; sanitized HTML never has it, escaped text reads the same.
            cdata = "]]>" not in e.content_html
            fe.content(e.content_html, type="CDATA" if cdata else None)
        fe.dc.dc_creator(e.author or d.stored.source.name)
        for tag in e.tags:
            fe.category(term=tag)
        source = d.stored.source
        url = reader_url(source.key) if source.kind is SourceKind.FEED else None
        if url:  # a feed on the web, not a file on our disk
            meta = feeds.get(source.key)
            fe.source(url=url, title=(meta.title if meta else None) or source.name)
    xml: bytes = fg.rss_str(pretty=True, encoding="UTF-8")
    return xml
