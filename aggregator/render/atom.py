"""The digest as Atom 1.0 feeds (feedgen), archived per RFC 5005 section 4.

feed.atom is the subscription document: the newest entries and a
rel="prev-archive" link. Older entries sit in archive documents,
feed/archive-N.atom (1 is the oldest), each marked fh:archive and linked
prev-archive / next-archive / current, so a reader can backfill the whole
history. Per-tag feeds are tags/<slug>.atom (not archived).

feedgen 1.0.0 does most of the work; its gaps are filled through its own
extension mechanism (`_FeedHistory`, `_EntryLinks` below):
- an entry's `updated` defaults to now(): we always set it, from the entry;
- entry links lose rel/type/length (a bug in FeedEntry.atom_entry), so every
  entry link is written by `_EntryLinks` instead of `FeedEntry.link`;
- atom:source carries only title and link: `_EntryLinks` writes the whole
  element (id, title, links, updated).
Nothing in a document depends on the wall clock, so a rebuild with nothing
new gives byte-identical files.

Links from outside (an entry's alternate, a feed's via and atom:source links)
pass the URL policy again here (render/entries.py), and an entry that cannot
be written is left out of its document and reported, not the build's end.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from feedgen.ext.base import BaseEntryExtension, BaseExtension
from feedgen.feed import FeedGenerator
from lxml import etree

from aggregator import PROJECT_URL, __version__
from aggregator.config import SiteConfig
from aggregator.digest import FeedHistory, Tag
from aggregator.model import DigestEntry, FeedMeta, SourceKind, StoredEntry
from aggregator.render.entries import (
    Rendered,
    for_readers,
    merge,
    meta_for_readers,
    skipping_unwritable,
)
from aggregator.render.words import words
from aggregator.urls import public_url as reader_url

ATOM_NS = "http://www.w3.org/2005/Atom"
#: RFC 5005's namespace for fh:archive
FH_NS = "http://purl.org/syndication/history/1.0"
ATOM_TYPE = "application/atom+xml"
#: atom:updated of a document with no entries: fixed, so it never churns
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

FEED_PATH = "feed.atom"


def entry_id(stored: StoredEntry) -> str:
    """A stable URI naming one entry forever: from its source and guid."""
    return uuid.uuid5(uuid.NAMESPACE_URL, f"{stored.source.key}\n{stored.entry.guid}").urn


def archive_path(number: int) -> str:
    """Where archive document `number` (1 = oldest) is written."""
    return f"feed/archive-{number}.atom"


def tag_feed_path(slug: str) -> str:
    """Where the Atom feed of one tag is written."""
    return f"tags/{slug}.atom"


def public_url(site: SiteConfig, path: str) -> str:
    """The absolute URL a file at `path` (relative to the output dir) is served at."""
    return site.url(quote(path, safe="/"))


def tag_page_url(site: SiteConfig, slug: str) -> str:
    """The canonical URL of a tag's web page."""
    return public_url(site, f"tags/{slug}/")


def render_feed(history: FeedHistory, site: SiteConfig, feeds: Mapping[str, FeedMeta]) -> Rendered:
    """Render the subscription document and every archive.

    `feeds` gives each external source's own id, title and link (atom:source).
    """
    feeds = meta_for_readers(feeds)
    newest = len(history.archives)
    current_links = [("current", FEED_PATH)]
    if newest:
        current_links.append(("prev-archive", archive_path(newest)))
    parts = [_document(site, FEED_PATH, site.title, history.current, feeds, current_links)]
    for archive in history.archives:
        n = archive.number
        links = [("current", FEED_PATH)]
        if n > 1:
            links.append(("prev-archive", archive_path(n - 1)))
        if n < newest:
            links.append(("next-archive", archive_path(n + 1)))
        parts.append(
            _document(
                site, archive_path(n), site.title, archive.entries, feeds, links, archive=True
            )
        )
    return merge(*parts)


def render_tag_feeds(
    tags: Sequence[tuple[Tag, Sequence[DigestEntry]]],
    site: SiteConfig,
    feeds: Mapping[str, FeedMeta],
) -> Rendered:
    """Render one Atom feed per tag, of the given entries."""
    feeds = meta_for_readers(feeds)
    parts = []
    for tag, entries in tags:
        path = tag_feed_path(tag.slug)
        doc = _document(
            site,
            path,
            f"{site.title}: {tag.name}",
            entries,
            feeds,
            [],
            feed_id=public_url(site, path),
            alternate=tag_page_url(site, tag.slug),
        )
        parts.append(doc)
    return merge(*parts)


def _document(
    site: SiteConfig,
    path: str,
    title: str,
    entries: Sequence[DigestEntry],
    feeds: Mapping[str, FeedMeta],
    links: Sequence[tuple[str, str]],
    *,
    archive: bool = False,
    feed_id: str | None = None,
    alternate: str | None = None,
) -> Rendered:
    """One Atom document at `path`; an entry that cannot be written is left out."""

    def render(shown: Sequence[DigestEntry]) -> bytes:
        return _atom(site, path, title, shown, feeds, links, archive, feed_id, alternate)

    xml, failures = skipping_unwritable(render, for_readers(entries), path)
    return Rendered({path: xml}, failures)


def _atom(
    site: SiteConfig,
    path: str,
    title: str,
    entries: Sequence[DigestEntry],
    feeds: Mapping[str, FeedMeta],
    links: Sequence[tuple[str, str]],
    archive: bool,
    feed_id: str | None,
    alternate: str | None,
) -> bytes:
    fg = FeedGenerator()
    fg.register_extension("history", _FeedHistory, _EntryLinks, atom=True, rss=False)
    fg.history.archive = archive
    # The subscription document and its archives are one logical feed: one id.
    fg.id(feed_id or site.url(""))
    fg.title(title)
    fg.subtitle(site.subtitle)
    fg.author({"name": site.author})
    fg.language(site.language)
    fg.generator("aggregator", version=__version__, uri=PROJECT_URL)
    fg.link(href=alternate or site.url(""), rel="alternate", type="text/html")
    fg.link(href=public_url(site, path), rel="self", type=ATOM_TYPE)
    for rel, target in links:
        fg.link(href=public_url(site, target), rel=rel, type=ATOM_TYPE)
    # atom:updated is the newest entry's update, so an unchanged digest gives the same file.
    fg.updated(max((d.stored.entry.updated for d in entries), default=EPOCH))
    for d in entries:
        _add_entry(fg, d, site, feeds)
    xml: bytes = fg.atom_str(pretty=True, encoding="UTF-8")
    return xml


def _add_entry(
    fg: FeedGenerator, d: DigestEntry, site: SiteConfig, feeds: Mapping[str, FeedMeta]
) -> None:
    e = d.stored.entry
    source = d.stored.source
    fe = fg.add_entry(order="append")
    fe.id(entry_id(d.stored))
    fe.title(e.title)
    fe.published(e.published)
    fe.updated(e.updated)
    fe.author({"name": e.author or source.name})
    for tag in e.tags:
        fe.category(term=tag, label=tag)
    fe.summary(_summary(d, words(site.language)["also_in"]))
    # feedgen needs content or an alternate link it can see; ours come from
    # the extension, so the content is always given (the excerpt at least).
    fe.content(e.content_html or _paragraph(d.excerpt or e.title), type="html")
    ext: _EntryLinks = fe.history
    if e.link:
        ext.links.append({"rel": "alternate", "type": "text/html", "href": e.link})
    if source.kind is SourceKind.FEED:
        meta = feeds.get(source.key, FeedMeta(id=None, title=None, link=None))
        via = meta.link or reader_url(source.key)
        if via:
            ext.links.append({"rel": "via", "type": "text/html", "href": via})
        ext.source = _source(source.key, source.name, meta, e.updated)


def _summary(d: DigestEntry, also_in: str) -> str:
    """The excerpt, and the other sources carrying the same article ("Also in: ",
    in [site] language, as the pages say it)."""
    text = d.excerpt or d.stored.entry.title
    if d.also_in:
        text += f" ({also_in}{', '.join(d.also_in)})"
    return text


def _paragraph(text: str) -> str:
    return "<p>" + text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;") + "</p>"


def _source(key: str, name: str, meta: FeedMeta, updated: datetime) -> dict[str, Any]:
    """atom:source for an entry from an external feed (RFC 4287 section 4.2.11)."""
    links = []
    if meta.link:
        links.append({"rel": "alternate", "type": "text/html", "href": meta.link})
    self_url = reader_url(key)  # not a file: path on our disk
    if self_url:
        links.append({"rel": "self", "type": ATOM_TYPE, "href": self_url})
    return {
        # A feed without an id of its own is named by its URL (as RFC 4287 allows).
        "id": meta.id or key,
        "title": meta.title or name,
        "links": links,
        # The source's updated is the entry's own, not the feed's latest:
        # the feed was at least that new when it carried this entry, and an
        # archive must not change each time the other feed publishes.
        "updated": updated,
    }


# -- feedgen extensions -----------------------------------------------------
# feedgen builds Atom elements with unqualified names under a root carrying
# a literal xmlns attribute; ours follow suit, so they serialize unprefixed.


class _FeedHistory(BaseExtension):  # type: ignore[misc]
    """Marks an archive document with fh:archive (RFC 5005 section 4)."""

    def __init__(self) -> None:
        self.archive = False

    def extend_ns(self) -> dict[str, str]:
        return {"fh": FH_NS}

    def extend_atom(self, feed: etree._Element) -> etree._Element:
        # feedgen calls this before it appends the entries: the marker sits
        # with the feed's metadata.
        if self.archive:
            etree.SubElement(feed, f"{{{FH_NS}}}archive")
        return feed


@dataclass
class _EntryLinks(BaseEntryExtension):  # type: ignore[misc]
    """An entry's links with rel and type, and a complete atom:source."""

    links: list[dict[str, str]] = field(default_factory=list)
    source: dict[str, Any] | None = None

    def extend_atom(self, entry: etree._Element) -> etree._Element:
        for link in self.links:
            etree.SubElement(entry, "link", link)
        if self.source:
            src = etree.SubElement(entry, "source")
            etree.SubElement(src, "id").text = self.source["id"]
            etree.SubElement(src, "title").text = self.source["title"]
            for link in self.source["links"]:
                etree.SubElement(src, "link", link)
            updated = self.source["updated"].isoformat()
            etree.SubElement(src, "updated").text = updated
        return entry
