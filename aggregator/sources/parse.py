"""Parse feed bytes with feedparser into RawItem. The only module that imports feedparser.

feedparser always gets bytes, never a URL, with the response headers (the
charset of Content-Type, and Content-Location = the feed URL, the base of
relative links). Its own HTML sanitizer and relative-URI resolver are off:
they cost two thirds of its time, and normalize sanitizes once with nh3 and
resolves links against each content element's xml:base (kept in
RawItem.base_url).

Guards against hostile input, before and during parsing:
- the body is already capped in bytes by fetch;
- feedparser drops DOCTYPE entity declarations that expand other entities
  (billion laughs) and never loads external entities;
- parse time is capped by a SIGALRM timer in the parsing thread when it is a
  main thread (always so in the worker processes pipeline uses), which stops
  100,000 nested elements or any other slow input;
- the number of entries kept is capped.
"""

from __future__ import annotations

import calendar
import html
import re
import signal
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from types import FrameType
from typing import Any
from urllib.parse import urljoin

import feedparser
import feedparser.api
from lxml import etree
from lxml import html as lxml_html

from aggregator.errors import SourceError
from aggregator.model import RawItem
from aggregator.text import html_to_text
from aggregator.urls import public_url

FEED_TYPES = ("application/atom+xml", "application/rss+xml", "application/rdf+xml")

# feedparser reads XML through the first SAX driver of this list that loads:
# ours (the standard Expat driver with text buffering, see expat_driver) reads
# the same, a third faster on escaped HTML. It also spares feedparser's first
# choice, drv_libxml2, a failing import on every parse where it is absent.
SAX_DRIVER = "aggregator.sources.expat_driver"
if SAX_DRIVER not in feedparser.api.PREFERRED_XML_PARSERS:
    feedparser.api.PREFERRED_XML_PARSERS.insert(0, SAX_DRIVER)


@dataclass(frozen=True)
class ParseSettings:
    """Limits of parsing, from the [fetch] config section."""

    #: seconds of parsing before a feed is given up
    timeout: float
    #: entries kept from one feed (the first ones: feeds list newest first)
    max_entries: int


@dataclass(frozen=True)
class ParsedFeed:
    """A feed's items, plus a warning when the feed was malformed but usable."""

    title: str | None
    link: str | None
    items: tuple[RawItem, ...]
    warning: str | None = None
    #: scheduling hints the feed itself gives (RSS ttl in minutes, sy:update*)
    ttl: str | None = None
    update_period: str | None = None
    update_frequency: str | None = None
    #: the feed's own id (atom:id), for atom:source in our feeds
    feed_id: str | None = None


class ParseTimeout(Exception):
    pass


def parse(body: bytes, headers: Mapping[str, str], url: str, settings: ParseSettings) -> ParsedFeed:
    """Parse feed bytes into RawItems; raise SourceError naming `url` if nothing is usable."""
    if not body.strip():
        raise SourceError(url, "empty response: no feed in it")
    headers = {k.lower(): v for k, v in headers.items() if k.lower() != "content-encoding"}
    headers.setdefault("content-location", url)
    try:
        with _deadline(settings.timeout):
            parsed = feedparser.parse(
                body, response_headers=headers, sanitize_html=False, resolve_relative_uris=False
            )
            entries = list(parsed.entries)
            feed = parsed.feed
            if not parsed.version and not entries:
                raise SourceError(url, _not_a_feed(body, headers, url))
            items = tuple(
                _item(e, f"{url}#entry-{i + 1}", url)
                for i, e in enumerate(entries[: settings.max_entries])
            )
    except ParseTimeout:
        raise SourceError(url, f"parsing took longer than {settings.timeout:g} s") from None
    except RecursionError:
        raise SourceError(url, "feed nested too deeply to parse") from None
    warnings = []
    if parsed.bozo:
        reason = str(parsed.get("bozo_exception", "")) or "malformed feed"
        if not entries and not feed:
            raise SourceError(url, f"not a feed: {reason}")
        warnings.append(f"malformed feed, read what could be parsed: {reason}")
    if len(entries) > settings.max_entries:
        warnings.append(f"kept the first {settings.max_entries} of {len(entries)} entries")
    return ParsedFeed(
        title=_str(feed.get("title")),
        link=_str(feed.get("link")),
        items=items,
        warning="; ".join(warnings) or None,
        ttl=_str(feed.get("ttl")),
        update_period=_str(feed.get("sy_updateperiod")),
        update_frequency=_str(feed.get("sy_updatefrequency")),
        feed_id=_str(feed.get("id")),
    )


def discover(body: bytes, url: str) -> list[str]:
    """Feed URLs an HTML page links with <link rel="alternate" type="...atom/rss+xml">."""
    try:
        root = lxml_html.fromstring(body, base_url=url)
    except (etree.ParserError, ValueError):
        return []
    found = []
    for link in root.iter("link"):
        rels = (link.get("rel") or "").lower().split()
        kind = (link.get("type") or "").lower().strip()
        href = (link.get("href") or "").strip()
        if "alternate" in rels and kind in FEED_TYPES and href:
            found.append(urljoin(url, href))
    return list(dict.fromkeys(found))


_HTML_START = re.compile(rb"^\s*(?:<!--.*?-->\s*)*<(?:!doctype\s+html|html|head|body)", re.I | re.S)


def looks_like_html(body: bytes, headers: Mapping[str, str]) -> bool:
    """A web page rather than a feed, by its Content-Type or its first tag."""
    kind = headers.get("content-type", "").split(";")[0].strip().lower()
    return kind in ("text/html", "application/xhtml+xml") or bool(
        _HTML_START.match(body[:4096].lstrip(b"\xef\xbb\xbf"))
    )


def _not_a_feed(body: bytes, headers: Mapping[str, str], url: str) -> str:
    if looks_like_html(body, headers):
        links = discover(body, url)
        if links:
            return f"not a feed: the response is an HTML page; it links the feed {links[0]}"
        return "not a feed: the response is an HTML page (and it links no feed)"
    kind = headers.get("content-type", "").split(";")[0].strip() or "of unknown type"
    return f"not a feed: the response is {kind}, and no RSS or Atom was found in it"


def _item(entry: Any, location: str, feed_url: str) -> RawItem:
    content = entry.get("content") or []
    detail = content[0] if content else entry.get("summary_detail") or {}
    body = detail.get("value", "") if content else entry.get("summary", "")
    base = detail.get("base") or feed_url
    enclosures = [e for e in entry.get("enclosures", []) if e.get("href")]
    if enclosures:
        body = (body or "") + _enclosure_links(enclosures, base)
    title = _str(entry.get("title"))
    if title and "html" in (entry.get("title_detail") or {}).get("type", ""):
        title = html_to_text(title)
    return RawItem(
        location=location,
        guid=_str(entry.get("id")),
        title=title,
        link=_str(entry.get("link")),
        canonical_link=_canonical_link(entry, feed_url),
        published=_time(entry.get("published_parsed")) or _time(entry.get("created_parsed")),
        updated=_time(entry.get("updated_parsed")),
        author=_str(entry.get("author")),
        content_html=body or "",
        # A feed's <summary> is an HTML teaser, not an author's summary: the
        # excerpt is cut from the full content instead.
        summary=None,
        tags=tuple(t["term"] for t in entry.get("tags", []) if _str(t.get("term"))),
        base_url=base,
    )


def _canonical_link(entry: Any, feed_url: str) -> str | None:
    """The entry's own word for its canonical URL: <link rel="canonical"> (Atom,
    or atom:link in RSS), else FeedBurner's origLink."""
    for link in entry.get("links") or []:
        href = _str(link.get("href"))
        if href and str(link.get("rel", "")).lower() == "canonical":
            try:
                return urljoin(feed_url, href)
            except ValueError:  # "http://[": no URL, no canonical link
                return None
    return _str(entry.get("feedburner_origlink"))


def _enclosure_links(enclosures: list[Any], base: str) -> str:
    """Enclosures (podcast audio, attachments) kept as a list of links."""
    items = []
    for e in enclosures:
        href = public_url(e["href"], base)
        if href is None:  # not a web link (urls.check_public_url): not shown
            continue
        name = href.rstrip("/").rsplit("/", 1)[-1] or href
        kind = e.get("type") or "file"
        items.append(
            f'<li><a href="{html.escape(href)}">{html.escape(name)}</a> ({html.escape(kind)})</li>'
        )
    return '<ul class="enclosures">' + "".join(items) + "</ul>" if items else ""


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _time(value: Any) -> datetime | None:
    """feedparser gives UTC struct_time values."""
    if not value:
        return None
    try:
        return datetime.fromtimestamp(calendar.timegm(value), UTC)
    except (OverflowError, ValueError, OSError):
        return None  # a year 99999 is no date


@contextmanager
def _deadline(seconds: float) -> Iterator[None]:
    """Raise ParseTimeout in this thread after `seconds`, if it is a main thread.

    A signal is the one way to interrupt pure-Python parsing without killing a
    process; only a main thread receives signals. pipeline parses in worker
    processes, where tasks run in the main thread.
    """
    if threading.current_thread() is not threading.main_thread() or seconds <= 0:
        yield
        return

    def expire(signum: int, frame: FrameType | None) -> None:
        raise ParseTimeout

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
