"""The digest as RSS 2.0 (rss.xml, feedgen) for old readers.

It lists the same entries as feed.atom's subscription document, with the
same ids (as non-permalink guids). RSS has no archives: history is in Atom.
Nothing depends on the wall clock: lastBuildDate is the newest entry's
update, so a rebuild with nothing new gives byte-identical files.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from feedgen.feed import FeedGenerator

from aggregator import PROJECT_URL, __version__
from aggregator.config import SiteConfig
from aggregator.model import DigestEntry, FeedMeta, SourceKind
from aggregator.render.atom import EPOCH, entry_id, public_url

RSS_PATH = "rss.xml"


def render_rss(
    entries: Sequence[DigestEntry], site: SiteConfig, feeds: Mapping[str, FeedMeta]
) -> dict[str, bytes]:
    """Render rss.xml from the subscription document's entries; return {path: bytes}."""
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
        fe.link(href=e.link)
        fe.pubDate(e.published)
        fe.updated(e.updated)
        fe.description(d.excerpt or e.title)
        if e.content_html:
            fe.content(e.content_html, type="CDATA")
        fe.dc.dc_creator(e.author or d.stored.source.name)
        for tag in e.tags:
            fe.category(term=tag)
        source = d.stored.source
        if source.kind is SourceKind.FEED and source.key.startswith(("http://", "https://")):
            meta = feeds.get(source.key)
            fe.source(url=source.key, title=(meta.title if meta else None) or source.name)
    xml: bytes = fg.rss_str(pretty=True, encoding="UTF-8")
    return {RSS_PATH: xml}
