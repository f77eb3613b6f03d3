"""Helpers for the feed tests: a config on a temporary directory, feed builders."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from aggregator import config as config_mod
from aggregator import pipeline
from aggregator.config import Config
from aggregator.model import FeedState, IngestReport, SourceResult
from aggregator.store import Store


def make_config(
    tmp_path: Path,
    feeds: Sequence[str | dict[str, Any]],
    *,
    database_url: str = "sqlite:///data/test.db",
    **fetch: Any,
) -> Config:
    """A Config with an empty content dir, a SQLite file (or `database_url`) and these feeds."""
    (tmp_path / "content").mkdir(exist_ok=True)
    data: dict[str, Any] = {
        "site": {"base_url": "https://digest.example.org/"},
        "content": {"dir": "content"},
        "feeds": [f if isinstance(f, dict) else {"url": f} for f in feeds],
        "database": {"url": database_url},
        "fetch": fetch,
    }
    return config_mod.parse(data, tmp_path / "config.toml")


@contextmanager
def opened(config: Config) -> Iterator[Store]:
    store = Store.open(config.database.url)
    try:
        yield store
    finally:
        store.close()


def ingest(config: Config, now: datetime, *, all_feeds: bool = False) -> IngestReport:
    with opened(config) as store:
        return pipeline.ingest(config, store, now, all_feeds=all_feeds)


def feed_result(report: IngestReport, url: str) -> SourceResult:
    (r,) = [r for r in report.results if r.source.key == url]
    return r


def state(config: Config, url: str) -> FeedState:
    with opened(config) as store:
        return store.feed_states([url]).get(url, FeedState())


def titles(config: Config, now: datetime) -> list[str]:
    with opened(config) as store:
        return [s.entry.title for s in store.visible_entries(now)]


CONTENT = "&lt;p&gt;Body {i} &lt;a href=&quot;rel/{i}&quot;&gt;link&lt;/a&gt;&lt;/p&gt;"


def atom(entries: int = 2, *, title: str = "Local", extra: str = "", prefix: str = "e") -> str:
    """An Atom feed whose entries have relative links and HTML content."""
    items = "".join(
        f"""<entry><id>urn:{prefix}{i}</id><title>{prefix} entry {i}</title>
        <link href="/posts/{prefix}{i}/"/><updated>2026-11-0{1 + i % 9}T00:00:00Z</updated>
        <content type="html">{CONTENT.format(i=i)}</content></entry>"""
        for i in range(entries)
    )
    return f"""<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom">
  <title>{title}</title><id>urn:feed</id><updated>2026-11-01T00:00:00Z</updated>
  <link href="/"/>{extra}{items}
</feed>"""


def rss(items: int = 2, *, channel_extra: str = "", encoding: str = "utf-8") -> str:
    body = "".join(
        f"<item><title>Item {i}</title><link>https://x.example/{i}</link>"
        f"<guid>g{i}</guid><description>&lt;p&gt;Text {i}&lt;/p&gt;</description></item>"
        for i in range(items)
    )
    return (
        f'<?xml version="1.0" encoding="{encoding}"?>\n'
        '<rss version="2.0" xmlns:sy="http://purl.org/rss/1.0/modules/syndication/">'
        f"<channel><title>R</title><link>https://x.example/</link>{channel_extra}{body}"
        "</channel></rss>"
    )
