"""The sections of config.toml as frozen dataclasses: each field is a key, with
the key's one default and a comment saying what it does."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from aggregator.model import Source, SourceKind

ENV_CONFIG = "AGGREGATOR_CONFIG"
CONTENT_SOURCE_KEY = "content"
#: the TOML key of the feed list: one [[feeds]] table per feed, its keys FeedConfig's fields
FEEDS_KEY = "feeds"


def _key(name: str) -> dict[str, Any]:
    """Field metadata: the TOML key differs from the Python name (`from`)."""
    return {"key": name}


@dataclass(frozen=True)
class SiteConfig:
    title: str = "INCOMING TRANSMISSION"
    subtitle: str = "LATEST UPDATES"
    base_url: str = "http://localhost:8000/"
    author: str = "Anonymous"
    language: str = "en"
    timezone: str = "UTC"

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def url(self, path: str = "") -> str:
        """An absolute URL under base_url."""
        return self.base_url.rstrip("/") + "/" + path.lstrip("/")


@dataclass(frozen=True)
class ContentConfig:
    dir: Path = Path("content")
    #: the name readers see for the writer's own posts; default: site title
    name: str = ""
    #: permalink pattern under base_url
    permalink: str = "/posts/{slug}/"
    #: text encoding of the posts (a UTF-8 BOM is always fine), e.g. "gb18030"
    encoding: str = "utf-8"
    #: posts larger than this many bytes are refused
    max_size: int = 5 * 1024 * 1024
    #: what a code block becomes in plain text and excerpts
    code_placeholder: str = "[code]"


@dataclass(frozen=True)
class FeedConfig:
    url: str
    name: str = ""
    tags: tuple[str, ...] = ()


@dataclass(frozen=True)
class FetchConfig:
    """[fetch]: how external feeds are fetched, parsed and scheduled."""

    #: requests in flight at once, and at once per host
    concurrency: int = 32
    per_host: int = 4
    #: seconds: to connect, between bytes, and for a whole response
    connect_timeout: float = 10.0
    read_timeout: float = 30.0
    total_timeout: float = 60.0
    #: a response larger than this (after decompression) is refused
    max_bytes: int = 10 * 1024 * 1024
    #: entries kept from one feed, and seconds one feed may take to parse
    max_entries: int = 1000
    parse_timeout: float = 20.0
    #: processes parsing feeds; 0: one per CPU
    parse_workers: int = 0
    #: a feed is fetched at most this often and at least this often, whatever it asks
    min_interval_minutes: float = 30
    max_interval_minutes: float = 1440
    #: the longest wait between tries of a failing feed
    backoff_cap_minutes: float = 1440
    #: follow a redirect from a public address into loopback, link-local or
    #: private ranges (true for feeds on your own network that redirect there)
    allow_private_redirects: bool = False


@dataclass(frozen=True)
class DatabaseConfig:
    url: str = ""


@dataclass(frozen=True)
class OutputConfig:
    dir: Path = Path("public")
    #: entries per Atom archive document (RFC 5005); fixed once archives exist
    archive_size: int = 50


@dataclass(frozen=True)
class DigestConfig:
    page_size: int = 20
    excerpt_length: int = 200
    lead_count: int = 3
    lead_excerpt_length: int = 480
    ellipsis: str = "..."


@dataclass(frozen=True)
class EmailConfig:
    from_: str = field(default="", metadata=_key("from"))
    subject: str = "{title}: {count} new posts, {issue}"
    schedule: str = "mon 08:00"
    smtp_host: str = "localhost"
    smtp_port: int = 25
    smtp_user: str = ""
    smtp_password_env: str = ""
    starttls: bool = False
    #: connect with TLS from the first byte (SMTPS, usually port 465) instead of STARTTLS
    implicit_tls: bool = False
    #: messages per second at most; 0 means no limit
    rate_limit: float = 5.0
    #: tries per message on transient failures (4xx, dropped connections)
    retries: int = 3
    #: seconds before the first retry; doubled for each further one
    retry_backoff: float = 2.0
    #: seconds to wait on the SMTP server before giving up on a connection
    timeout: float = 30.0
    #: an issue leaves out entries published more than this many days before it
    max_age_days: int = 14
    #: send an issue that has no entries (default: skip the week, lose nothing)
    send_empty: bool = False
    #: the HTML part stays under this size (encoded), below Gmail's ~102 KB clipping
    max_html_kb: int = 90
    #: the List-Id header; default: "<site title> <digest.HOST>" from base_url
    list_id: str = ""
    #: address for mailto: unsubscribes (List-Unsubscribe); default: the From address
    unsubscribe_mailto: str = ""
    #: base of the one-click unsubscribe URL, the token is appended;
    #: default: <base_url>unsubscribe/ (the daemon's web endpoint must serve it)
    unsubscribe_url: str = ""

    def smtp_password(self) -> str | None:
        """The SMTP password, read from the named environment variable."""
        return os.environ.get(self.smtp_password_env) if self.smtp_password_env else None


@dataclass(frozen=True)
class DedupeConfig:
    #: query parameters dropped from links besides utm_*, fbclid, gclid, ...;
    #: a name ending in "*" is a prefix
    tracking_params: tuple[str, ...] = ()
    #: Jaccard similarity (0..1) of word shingles at which two texts are copies
    near_threshold: float = 0.8
    #: texts shorter than this many words are never matched as near-duplicates
    near_min_words: int = 50


@dataclass(frozen=True)
class DaemonConfig:
    """`aggregator daemon`: its web address, job intervals, shutdown and lock."""

    #: address the daemon's web server binds; 127.0.0.1 keeps it off the network
    host: str = "127.0.0.1"
    port: int = 8000
    #: seconds between ingest runs (each fetches only the feeds that are due)
    ingest_interval: float = 60.0
    #: seconds after which the outputs are rebuilt even if nothing new came in
    rebuild_interval: float = 3600.0
    #: seconds between housekeeping runs (prune old records, ANALYZE)
    housekeeping_interval: float = 86400.0
    #: VACUUM the SQLite file at most this often (days)
    vacuum_interval_days: int = 7
    #: records of job runs older than this are pruned (days)
    keep_runs_days: int = 90
    #: a job may still start this many seconds late (after a restart or a pause)
    misfire_grace_time: float = 21600.0
    #: on SIGTERM, wait this many seconds for the running job before abandoning it
    shutdown_timeout: float = 30.0
    #: the lock file that keeps two runs (cron or daemon) from overlapping
    lock_file: Path = Path("data/aggregator.lock")
    #: seconds between sends instead of [email] schedule (trying a setup out, tests);
    #: 0: off. Each run resumes the current week's issue, so nobody gets it twice.
    send_interval: float = 0.0


@dataclass(frozen=True)
class SubscriberConfig:
    email: str
    name: str = ""


@dataclass(frozen=True)
class Config:
    """The whole configuration; `path` is the file it came from."""

    path: Path
    site: SiteConfig
    content: ContentConfig
    feeds: tuple[FeedConfig, ...]
    database: DatabaseConfig
    output: OutputConfig
    digest: DigestConfig
    email: EmailConfig
    subscribers: tuple[SubscriberConfig, ...]
    fetch: FetchConfig = field(default_factory=FetchConfig)
    dedupe: DedupeConfig = field(default_factory=DedupeConfig)
    daemon: DaemonConfig = field(default_factory=DaemonConfig)

    @property
    def content_source(self) -> Source:
        return Source(
            kind=SourceKind.CONTENT,
            # A fixed key, not the folder's path: moving the blog keeps every
            # entry's identity (and its feed id).
            key=CONTENT_SOURCE_KEY,
            name=self.content.name or self.site.title,
        )

    @property
    def feed_sources(self) -> tuple[Source, ...]:
        return tuple(
            Source(kind=SourceKind.FEED, key=f.url, name=f.name or f.url, tags=f.tags)
            for f in self.feeds
        )

    @property
    def sources(self) -> tuple[Source, ...]:
        return (self.content_source, *self.feed_sources)
