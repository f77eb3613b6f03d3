"""External feeds, one at a time: fetch, parse, and find a feed from a web page.

The many-feeds path (concurrent, scheduled) is pipeline.ingest, built from
fetch.py (httpx), parse.py (feedparser) and schedule.py (pure). This module
serves commands that handle a single URL, such as `aggregator feeds add`.
"""

from __future__ import annotations

from dataclasses import dataclass

from aggregator.errors import SourceError
from aggregator.sources.fetch import (
    USER_AGENT,
    FetchRequest,
    FetchSettings,
    FetchStatus,
    fetch_one,
)
from aggregator.sources.parse import ParsedFeed, ParseSettings, discover, looks_like_html
from aggregator.sources.parse import parse as parse_bytes

__all__ = ["USER_AGENT", "FetchedFeed", "ParsedFeed", "fetch", "find_feed", "parse"]


@dataclass(frozen=True)
class FetchedFeed:
    """The bytes of a feed and the headers that tell how to read them."""

    url: str
    body: bytes
    headers: dict[str, str]


def fetch(url: str, settings: FetchSettings) -> FetchedFeed:
    """Fetch `url` (http, https or file); raise SourceError naming the URL."""
    result = fetch_one(FetchRequest(url, url), settings)
    if result.status is not FetchStatus.OK:
        raise SourceError(url, result.error or str(result.status))
    return FetchedFeed(result.url, result.body, result.headers)


def parse(fetched: FetchedFeed, settings: ParseSettings) -> ParsedFeed:
    """Parse fetched feed bytes into RawItems; raise SourceError if nothing usable."""
    return parse_bytes(fetched.body, fetched.headers, fetched.url, settings)


def find_feed(url: str, fetching: FetchSettings, parsing: ParseSettings) -> tuple[str, ParsedFeed]:
    """The feed at `url`, or the first feed a web page at `url` links (autodiscovery).

    Returns the feed's URL and its parsed content; raises SourceError if
    neither `url` nor anything it links is a feed.
    """
    fetched = fetch(url, fetching)
    if looks_like_html(fetched.body, fetched.headers):
        links = discover(fetched.body, fetched.url)
        if not links:
            raise SourceError(url, "a web page that links no feed (no <link rel=alternate>)")
        feed_url = links[0]
        return feed_url, parse(fetch(feed_url, fetching), parsing)
    return url, parse(fetched, parsing)
