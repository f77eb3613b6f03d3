"""Fetch external feeds and parse them into RawItem.

The only module that imports httpx and feedparser. feedparser always gets
bytes, never a URL, so fetching stays under our control (timeouts, size cap);
the feed URL goes in as Content-Location so relative links resolve.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse
from urllib.request import url2pathname

import feedparser
import httpx

from aggregator import PROJECT_URL, __version__
from aggregator.errors import SourceError
from aggregator.model import RawItem

USER_AGENT = f"aggregator/{__version__} (+{PROJECT_URL})"
MAX_BYTES = 10 * 1024 * 1024
TIMEOUT = httpx.Timeout(30.0, connect=10.0)


@dataclass(frozen=True)
class FetchedFeed:
    """The bytes of a feed and the headers that tell how to read them."""

    url: str
    body: bytes
    headers: dict[str, str]


@dataclass(frozen=True)
class ParsedFeed:
    """A feed's items, plus a warning when the feed was malformed but usable."""

    title: str | None
    link: str | None
    items: tuple[RawItem, ...]
    warning: str | None = None
    #: the feed's own id (atom:id), for atom:source in our feeds
    feed_id: str | None = None


def fetch(url: str, client: httpx.Client | None = None) -> FetchedFeed:
    """Fetch `url` (http, https or file); raise SourceError naming the URL."""
    scheme = urlparse(url).scheme
    if scheme == "file":
        path = Path(url2pathname(unquote(urlparse(url).path)))
        try:
            body = path.read_bytes()
        except OSError as e:
            raise SourceError(url, f"cannot read feed file: {e.strerror}") from None
        # feedparser reads the charset from Content-Type; a local file has none,
        # so say it is XML and let the XML declaration name the encoding.
        return FetchedFeed(url, body, {"content-location": url, "content-type": "application/xml"})
    if scheme not in ("http", "https"):
        raise SourceError(url, f"unsupported URL scheme {scheme!r} (use http, https or file)")
    own = client is None
    http = client or httpx.Client(
        timeout=TIMEOUT, follow_redirects=True, headers={"User-Agent": USER_AGENT}
    )
    try:
        with http.stream("GET", url) as response:
            if response.status_code >= 400:
                raise SourceError(url, f"HTTP {response.status_code} {response.reason_phrase}")
            chunks: list[bytes] = []
            size = 0
            for chunk in response.iter_bytes():
                size += len(chunk)
                if size > MAX_BYTES:
                    raise SourceError(url, f"response larger than {MAX_BYTES} bytes")
                chunks.append(chunk)
            headers = {k.lower(): v for k, v in response.headers.items()}
            headers["content-location"] = str(response.url)
            return FetchedFeed(str(response.url), b"".join(chunks), headers)
    except httpx.HTTPError as e:
        raise SourceError(url, f"fetch failed: {e}") from None
    finally:
        if own:
            http.close()


def parse(fetched: FetchedFeed) -> ParsedFeed:
    """Parse feed bytes into RawItems; raise SourceError if nothing usable."""
    headers = {k: v for k, v in fetched.headers.items() if k != "content-encoding"}
    parsed = feedparser.parse(
        fetched.body, response_headers=headers, sanitize_html=False, resolve_relative_uris=True
    )
    warning = None
    if not parsed.version and not parsed.entries:
        kind = fetched.headers.get("content-type", "").split(";")[0].strip() or "unknown type"
        hint = "an HTML page" if "html" in kind else kind
        raise SourceError(fetched.url, f"not a feed: the response is {hint}")
    if parsed.bozo:
        reason = str(parsed.get("bozo_exception", "malformed feed"))
        if not parsed.entries and not parsed.feed:
            raise SourceError(fetched.url, f"not a feed: {reason}")
        warning = f"malformed feed, read what could be parsed: {reason}"
    feed = parsed.feed
    items = tuple(
        _item(entry, f"{fetched.url}#entry-{i + 1}") for i, entry in enumerate(parsed.entries)
    )
    return ParsedFeed(
        title=feed.get("title"),
        link=feed.get("link"),
        items=items,
        warning=warning,
        feed_id=feed.get("id") or None,
    )


def _item(entry: Any, location: str) -> RawItem:
    content = entry.get("content") or []
    html = content[0].get("value", "") if content else entry.get("summary", "")
    return RawItem(
        location=location,
        guid=entry.get("id") or None,
        title=entry.get("title") or None,
        link=entry.get("link") or None,
        canonical_link=entry.get("feedburner_origlink") or None,
        published=_time(entry.get("published_parsed")),
        updated=_time(entry.get("updated_parsed")),
        author=entry.get("author") or None,
        content_html=html or "",
        # A feed's <summary> is an HTML teaser, not an author's summary: the
        # excerpt is cut from the full content instead.
        summary=None,
        tags=tuple(t["term"] for t in entry.get("tags", []) if t.get("term")),
    )


def _time(value: Any) -> datetime | None:
    """feedparser gives UTC struct_time values."""
    if not value:
        return None
    return datetime.fromtimestamp(calendar.timegm(value), UTC)
