"""Parse feed bytes with feedparser into RawItem. The only module that imports feedparser.

feedparser always gets bytes, never a URL, with the response headers (the
charset of Content-Type, and Content-Location = the feed URL, the base of
relative links). Its own HTML sanitizer and relative-URI resolver are off:
they cost two thirds of its time, and normalize sanitizes once with nh3 and
resolves links against each content element's xml:base (kept in
RawItem.base_url).

Guards against hostile input, before and during parsing:
- the body is already capped in bytes by fetch;
- the body reaches feedparser as a stream: feedparser.parse() opens a bytes
  argument as a file name first (a body "/dev/zero" read forever);
- character references to what XML cannot carry (&#xd800;, &#1;, &#x110000;)
  and raw control characters are replaced before parsing: the first crash
  feedparser's loose parser, the others stop the strict one;
- feedparser drops DOCTYPE entity declarations that expand other entities
  (billion laughs) and never loads external entities;
- reading stops at the entry after the first `max_entries`: a feed of
  100,000 entries costs what its first `max_entries` cost;
- a Deadline bounds the time of the whole read of a feed (feed_entries.py
  reads it with one): checked at each element feedparser meets and between
  entries, and in a main thread (always so in the worker processes pipeline
  uses) a SIGALRM timer also interrupts feedparser mid-element. It stops
  100,000 nested elements or any other slow input.
"""

from __future__ import annotations

import calendar
import html
import io
import re
import signal
import threading
import time
import xml.sax
import xml.sax.handler
import xml.sax.xmlreader
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from types import FrameType
from typing import Any
from urllib.parse import urljoin

import feedparser
import feedparser.api
from feedparser.encodings import convert_to_utf8
from feedparser.sanitizer import replace_doctype
from feedparser.urls import make_safe_absolute_uri
from feedparser.util import FeedParserDict
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
    """The Deadline of a read passed."""


class Deadline:
    """The end of the time a feed's read may take (ParseSettings.timeout).

    check() raises ParseTimeout once it has passed; use as a context manager
    (`with Deadline(seconds) as d:`) it also arms a SIGALRM timer when this is
    a main thread, which raises ParseTimeout inside feedparser (interruptible
    blocks only) and marks the deadline expired anywhere else: nh3 swallows
    an exception raised in its callbacks, so normalizing checks between
    items instead. Nested, the outer one rules: entering an armed Deadline's
    context again arms nothing.
    """

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.end = time.monotonic() + seconds if seconds > 0 else None
        self.expired = False
        #: whether the timer raises (inside feedparser) or only marks `expired`
        self.interrupt = False
        self._entered = 0
        self._armed = False
        self._previous: Any = None

    def check(self) -> None:
        """Raise ParseTimeout if the deadline has passed."""
        if self.expired or (self.end is not None and time.monotonic() > self.end):
            self.expired = True
            raise ParseTimeout

    @contextmanager
    def interruptible(self) -> Iterator[None]:
        """A block the timer may interrupt by raising ParseTimeout."""
        self.check()
        outer, self.interrupt = self.interrupt, True
        try:
            yield
        finally:
            self.interrupt = outer

    def __enter__(self) -> Deadline:
        self._entered += 1
        if self._entered > 1 or self.end is None:
            return self
        if threading.current_thread() is not threading.main_thread():
            return self  # only a main thread receives signals
        if signal.getitimer(signal.ITIMER_REAL)[0]:
            return self  # a timer is running already (another Deadline's): checks only
        self._previous = signal.signal(signal.SIGALRM, self._expire)
        signal.setitimer(signal.ITIMER_REAL, max(self.end - time.monotonic(), 1e-6))
        self._armed = True
        return self

    def __exit__(self, *exc: object) -> None:
        self._entered -= 1
        if self._entered == 0 and self._armed:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, self._previous)
            self._armed = False

    def _expire(self, signum: int, frame: FrameType | None) -> None:
        self.expired = True
        if self.interrupt:
            raise ParseTimeout


def parse(
    body: bytes,
    headers: Mapping[str, str],
    url: str,
    settings: ParseSettings,
    deadline: Deadline | None = None,
) -> ParsedFeed:
    """Parse feed bytes into RawItems; raise SourceError naming `url` if nothing is usable.

    Reads the first `settings.max_entries` entries and stops. `deadline` is
    the read's (see feed_entries.read_feed); without one, parsing takes at
    most `settings.timeout`.
    """
    if not body.strip():
        raise SourceError(url, "empty response: no feed in it")
    headers = {k.lower(): v for k, v in headers.items() if k.lower() != "content-encoding"}
    headers.setdefault("content-location", url)
    if deadline is None:
        deadline = Deadline(settings.timeout)
    try:
        with deadline:
            with deadline.interruptible():
                parsed, more = _feedparser(body, headers, settings.max_entries, deadline)
            entries = list(parsed.entries)
            feed = parsed.feed
            if not parsed.version and not entries:
                raise SourceError(url, _not_a_feed(body, headers, url))
            items = []
            for i, e in enumerate(entries):
                deadline.check()
                items.append(_item(e, f"{url}#entry-{i + 1}", url))
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
    if more:
        warnings.append(
            f"kept the first {settings.max_entries} entries; the feed has more "
            "([fetch] max_entries)"
        )
    return ParsedFeed(
        title=_str(feed.get("title")),
        link=_str(feed.get("link")),
        items=tuple(items),
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
    """Enclosures (podcast audio, attachments) kept as a list of links.

    The list is part of what an item without id or link is known by
    (normalize.derived_guid hashes the body with it): a change to its markup
    changes those items' guids, so it needs normalize.GUID_VERSION bumped and
    adopt_guids taught the old form."""
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


# -- feedparser, bounded ----------------------------------------------------------
#
# feedparser.parse() for a body of bytes, step by step as it does it (decode to
# UTF-8, replace the DOCTYPE, the strict XML parser, else the loose one), with
# three changes: no file is ever opened, references to characters XML cannot
# carry are replaced first, and its parsers stop at the entry after the last
# one kept and at the deadline.


class _EnoughEntries(Exception):
    """The entry after the last one kept begins: stop reading."""


class _Bounded:
    """Mixed into feedparser's parsers: stop at entry `limit` + 1 and at the deadline."""

    limit: int
    deadline: Deadline
    entries: list[Any]

    def unknown_starttag(self, tag: str, attrs: Any) -> Any:
        self.deadline.check()
        return super().unknown_starttag(tag, attrs)  # type: ignore[misc]

    def _start_item(self, attrs_d: Any) -> Any:
        if len(self.entries) >= self.limit:
            raise _EnoughEntries
        return super()._start_item(attrs_d)  # type: ignore[misc]

    _start_entry = _start_item


class _StrictParser(_Bounded, feedparser.api.StrictFeedParser):  # type: ignore[misc]
    pass


class _LooseParser(_Bounded, feedparser.api.LooseFeedParser):  # type: ignore[misc]
    pass


def _feedparser(
    body: bytes, headers: dict[str, str], limit: int, deadline: Deadline
) -> tuple[Any, bool]:
    """feedparser's result for `body` (its first `limit` entries), and whether
    the feed has more entries."""
    result = FeedParserDict(bozo=False, entries=[], feed=FeedParserDict(), headers=headers)
    data = _xml_characters(convert_to_utf8(result["headers"], body, result))
    use_strict_parser = bool(result["encoding"])
    result["version"], data, entities = replace_doctype(data)
    location = headers.get("content-location", "")
    base = make_safe_absolute_uri("", location) or make_safe_absolute_uri(location) or ""
    language = headers.get("content-language")
    more = False
    parser: Any = None
    if use_strict_parser:
        parser = _StrictParser(base, language, "utf-8")
        parser.limit, parser.deadline = limit, deadline
        parser.resolve_relative_uris = parser.sanitize_html = False
        sax = xml.sax.make_parser(feedparser.api.PREFERRED_XML_PARSERS)
        sax.setFeature(xml.sax.handler.feature_namespaces, 1)
        with suppress(xml.sax.SAXNotSupportedException):  # never load an external entity
            sax.setFeature(xml.sax.handler.feature_external_ges, 0)
        sax.setContentHandler(parser)
        sax.setErrorHandler(parser)
        source = xml.sax.xmlreader.InputSource()
        source.setByteStream(io.BytesIO(data))
        try:
            sax.parse(source)
        except _EnoughEntries:
            more = True
        except xml.sax.SAXException as e:
            result["bozo"] = 1
            result["bozo_exception"] = parser.exc or e
            use_strict_parser = False
    if not use_strict_parser:
        parser = _LooseParser(base, language, "utf-8", entities)
        parser.limit, parser.deadline = limit, deadline
        parser.resolve_relative_uris = parser.sanitize_html = False
        try:
            parser.feed(data.decode("utf-8", "replace"))
        except _EnoughEntries:
            more = True
    result["feed"] = parser.feeddata
    result["entries"] = parser.entries
    result["version"] = result["version"] or parser.version
    result["namespaces"] = parser.namespaces_in_use
    return result, more


_CHAR_REF = re.compile(rb"&#(?:[xX]([0-9a-fA-F]+)|([0-9]+))(;?)")
#: C0 controls but tab, LF and CR: XML cannot carry them, written or referenced
_CONTROLS = bytes(c for c in range(32) if c not in (9, 10, 13))
_CONTROLS_TO_SPACE = bytes.maketrans(_CONTROLS, b" " * len(_CONTROLS))


def _xml_characters(data: bytes) -> bytes:
    """UTF-8 feed bytes with what XML cannot carry replaced: a control
    character becomes a space (as normalize's xml_safe does), and so does a
    reference to one or to U+FFFE or U+FFFF; a reference to a surrogate, to 0
    or beyond U+10FFFF becomes U+FFFD, as an HTML parser reads it."""
    data = data.translate(_CONTROLS_TO_SPACE)
    return _CHAR_REF.sub(_xml_char_ref, data) if b"&#" in data else data


def _xml_char_ref(m: re.Match[bytes]) -> bytes:
    hex_digits, digits, _semicolon = m.groups()
    if len(hex_digits or digits) > 8:  # past U+10FFFF (and int() refuses 4,300 digits)
        return b"&#xFFFD;"
    code = int(hex_digits, 16) if hex_digits else int(digits)
    if code in (9, 10, 13) or 0x20 <= code <= 0xD7FF or 0xE000 <= code <= 0xFFFD:
        return m.group(0)
    if 0x10000 <= code <= 0x10FFFF:
        return m.group(0)
    if code == 0 or 0xD800 <= code <= 0xDFFF or code > 0x10FFFF:
        return b"&#xFFFD;"
    return b" "
