"""config.toml -> a frozen Config, validated once at start-up.

This is the only module that knows config key names. Every section is a
frozen dataclass whose fields are the keys; `_read_section` checks types,
fills defaults and refuses unknown keys, so a typo never passes silently.
Relative paths are resolved against the directory of the config file.
"""

from __future__ import annotations

import codecs
import os
import tomllib
import types
import typing
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path
from typing import Any, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from email_validator import EmailNotValidError, validate_email

from aggregator.errors import ConfigError
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


T = TypeVar("T")


def default_config_path() -> Path:
    """--config default: $AGGREGATOR_CONFIG, then ./config.toml."""
    return Path(os.environ.get(ENV_CONFIG) or "config.toml")


def load(path: Path) -> Config:
    """Read and validate a config file; raise ConfigError naming the problem."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except OSError as e:
        raise ConfigError(f"{path}: cannot read config file: {e.strerror}") from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: config file is not UTF-8") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: invalid TOML: {e}") from None
    return parse(data, path)


_SECTIONS: dict[str, type] = {
    "site": SiteConfig,
    "content": ContentConfig,
    "database": DatabaseConfig,
    "output": OutputConfig,
    "digest": DigestConfig,
    "email": EmailConfig,
    "fetch": FetchConfig,
    "dedupe": DedupeConfig,
    "daemon": DaemonConfig,
}
_LISTS: dict[str, type] = {FEEDS_KEY: FeedConfig, "subscribers": SubscriberConfig}


def parse(data: dict[str, Any], path: Path) -> Config:
    """Validate parsed TOML `data` read from `path` into a Config."""
    base = path.resolve().parent
    unknown = sorted(set(data) - set(_SECTIONS) - set(_LISTS))
    if unknown:
        known = ", ".join(sorted([*_SECTIONS, *_LISTS]))
        raise ConfigError(f"{path}: unknown section [{unknown[0]}] (known sections: {known})")
    sections: dict[str, Any] = {}
    for name, cls in _SECTIONS.items():
        value = data.get(name, {})
        if not isinstance(value, dict):
            raise ConfigError(f"{path}: [{name}] must be a table")
        sections[name] = _read_section(value, cls, f"{name}", path, base)
    lists: dict[str, tuple[Any, ...]] = {}
    for name, cls in _LISTS.items():
        value = data.get(name, [])
        if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
            raise ConfigError(f"{path}: [[{name}]] must be a list of tables")
        lists[name] = tuple(
            _read_section(v, cls, f"{name}[{i}]", path, base) for i, v in enumerate(value)
        )
    config = Config(
        path=path,
        site=sections["site"],
        content=sections["content"],
        feeds=tuple(_resolve_feed(f, base) for f in lists["feeds"]),
        database=_resolve_database(sections["database"], base),
        output=sections["output"],
        digest=sections["digest"],
        email=sections["email"],
        subscribers=lists["subscribers"],
        fetch=sections["fetch"],
        dedupe=sections["dedupe"],
        daemon=sections["daemon"],
    )
    _check(config)
    _check_fetch(config)
    return config


def _read_section(data: dict[str, Any], cls: type[T], where: str, path: Path, base: Path) -> T:
    hints = typing.get_type_hints(cls)
    by_key = {f.metadata.get("key", f.name): f for f in fields(cls)}  # type: ignore[arg-type]
    for key in data:
        if key not in by_key:
            known = ", ".join(sorted(by_key))
            raise ConfigError(f"{path}: unknown key '{where}.{key}' (known keys: {known})")
    values: dict[str, Any] = {}
    for key, f in by_key.items():
        if key not in data:
            if f.default is MISSING and f.default_factory is MISSING:
                raise ConfigError(f"{path}: missing required key '{where}.{key}'")
            if hints[f.name] is Path:  # a default path is relative to the config file too
                values[f.name] = base / str(f.default)
            continue
        values[f.name] = _coerce(data[key], hints[f.name], f"{where}.{key}", path, base)
    return cls(**values)


def _coerce(value: Any, hint: Any, name: str, path: Path, base: Path) -> Any:
    def wrong(expected: str) -> ConfigError:
        return ConfigError(
            f"{path}: '{name}' must be {expected}, not {type(value).__name__} {value!r}"
        )

    if hint is bool:
        if not isinstance(value, bool):
            raise wrong("true or false")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise wrong("an integer")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise wrong("a number")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise wrong("a string")
        return value
    if hint is Path:
        if not isinstance(value, str):
            raise wrong("a path (a string)")
        p = Path(value).expanduser()
        return p if p.is_absolute() else base / p
    if typing.get_origin(hint) is tuple:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise wrong("a list of strings")
        return tuple(value)
    if isinstance(hint, types.UnionType):  # pragma: no cover - no such field yet
        raise wrong(str(hint))
    raise TypeError(f"config field type not handled: {hint}")  # a bug, not a user error


def feed_url(url: str, base: Path) -> str:
    """A feed URL as config holds it: a path without a scheme is a local file,
    relative to `base` (the config file's folder), as a file: URI."""
    return _resolve_feed(FeedConfig(url=url), base).url


def _resolve_feed(feed: FeedConfig, base: Path) -> FeedConfig:
    """A feed url without a scheme is a local file, relative to the config."""
    if "://" in feed.url or feed.url.startswith("file:"):
        return feed
    p = Path(feed.url).expanduser()
    p = p if p.is_absolute() else base / p
    return FeedConfig(url=p.resolve().as_uri(), name=feed.name, tags=feed.tags)


def _resolve_database(db: DatabaseConfig, base: Path) -> DatabaseConfig:
    if not db.url:
        return DatabaseConfig(url=f"sqlite:///{base / 'data' / 'aggregator.db'}")
    prefix = "sqlite:///"
    if db.url.startswith(prefix) and not db.url.startswith(prefix + "/"):
        rel = db.url[len(prefix) :]
        if rel and rel != ":memory:":
            return DatabaseConfig(url=prefix + str(base / rel))
    return db


def _check(config: Config) -> None:
    path = config.path
    try:
        config.site.tz  # noqa: B018 - validates the name
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(
            f"{path}: 'site.timezone' is not a known time zone: {config.site.timezone!r}"
            " (use a name like 'Asia/Shanghai' or 'UTC')"
        ) from None
    if not config.site.base_url.startswith(("http://", "https://")):
        raise ConfigError(f"{path}: 'site.base_url' must start with http:// or https://")
    c = config.content
    try:
        codecs.lookup(c.encoding)
    except LookupError:
        raise ConfigError(
            f"{path}: 'content.encoding' is not a known encoding: {c.encoding!r}"
            " (use e.g. 'utf-8' or 'gb18030')"
        ) from None
    if c.max_size <= 0:
        raise ConfigError(f"{path}: 'content.max_size' must be greater than 0, not {c.max_size}")
    if "{slug}" not in c.permalink:
        raise ConfigError(f"{path}: 'content.permalink' must contain {{slug}}: {c.permalink!r}")
    d = config.digest
    for key, v in (
        ("page_size", d.page_size),
        ("excerpt_length", d.excerpt_length),
        ("lead_excerpt_length", d.lead_excerpt_length),
    ):
        if v <= 0:
            raise ConfigError(f"{path}: 'digest.{key}' must be greater than 0, not {v}")
    if config.output.archive_size <= 0:
        raise ConfigError(
            f"{path}: 'output.archive_size' must be greater than 0,"
            f" not {config.output.archive_size}"
        )
    if d.lead_count < 0:
        raise ConfigError(f"{path}: 'digest.lead_count' must be 0 or more, not {d.lead_count}")
    _check_email(config)
    dd = config.dedupe
    if not 0.5 <= dd.near_threshold <= 1.0:
        raise ConfigError(
            f"{path}: 'dedupe.near_threshold' must be between 0.5 and 1.0, not {dd.near_threshold}"
        )
    if dd.near_min_words < 10:
        raise ConfigError(
            f"{path}: 'dedupe.near_min_words' must be 10 or more, not {dd.near_min_words}"
        )
    _check_daemon(config)
    urls = [f.url for f in config.feeds]
    for url in urls:
        if urls.count(url) > 1:
            raise ConfigError(f"{path}: feed {url} is listed twice in [[feeds]]")


def _check_fetch(config: Config) -> None:
    f = config.fetch
    for key in (
        "concurrency", "per_host", "connect_timeout", "read_timeout", "total_timeout",
        "max_bytes", "max_entries", "parse_timeout", "min_interval_minutes",
        "max_interval_minutes", "backoff_cap_minutes",
    ):  # fmt: skip
        v = getattr(f, key)
        if v <= 0:
            raise ConfigError(f"{config.path}: 'fetch.{key}' must be greater than 0, not {v}")
    if f.parse_workers < 0:
        raise ConfigError(f"{config.path}: 'fetch.parse_workers' must be 0 or more")
    if f.max_interval_minutes < f.min_interval_minutes:
        raise ConfigError(
            f"{config.path}: 'fetch.max_interval_minutes' must not be less than"
            " 'fetch.min_interval_minutes'"
        )


def _check_email(config: Config) -> None:
    """[email] values in range and [[subscribers]] addresses that can receive mail."""
    path, e = config.path, config.email
    if e.starttls and e.implicit_tls:
        raise ConfigError(f"{path}: 'email.starttls' and 'email.implicit_tls' exclude each other")
    for key, v in (("rate_limit", e.rate_limit), ("retry_backoff", e.retry_backoff)):
        if v < 0:
            raise ConfigError(f"{path}: 'email.{key}' must be 0 or more, not {v}")
    for key, n in (
        ("retries", e.retries),
        ("max_age_days", e.max_age_days),
        ("max_html_kb", e.max_html_kb),
    ):
        if n <= 0:
            raise ConfigError(f"{path}: 'email.{key}' must be greater than 0, not {n}")
    if e.timeout <= 0:
        raise ConfigError(f"{path}: 'email.timeout' must be greater than 0, not {e.timeout}")
    if e.unsubscribe_url and not e.unsubscribe_url.startswith(("http://", "https://")):
        raise ConfigError(f"{path}: 'email.unsubscribe_url' must start with http:// or https://")
    seen: set[str] = set()
    for i, sub in enumerate(config.subscribers):
        try:
            address = validate_email(sub.email, check_deliverability=False).normalized
        except EmailNotValidError as err:
            raise ConfigError(
                f"{path}: 'subscribers[{i}].email' is not an email address: {sub.email!r} ({err})"
            ) from None
        if address.lower() in seen:
            raise ConfigError(f"{path}: subscriber {address} is listed twice in [[subscribers]]")
        seen.add(address.lower())


def _check_daemon(config: Config) -> None:
    path, d = config.path, config.daemon
    if not 0 < d.port < 65536:
        raise ConfigError(f"{path}: 'daemon.port' must be between 1 and 65535, not {d.port}")
    for key, v in (
        ("ingest_interval", d.ingest_interval),
        ("rebuild_interval", d.rebuild_interval),
        ("housekeeping_interval", d.housekeeping_interval),
        ("misfire_grace_time", d.misfire_grace_time),
        ("shutdown_timeout", d.shutdown_timeout),
        ("vacuum_interval_days", d.vacuum_interval_days),
        ("keep_runs_days", d.keep_runs_days),
    ):
        if v <= 0:
            raise ConfigError(f"{path}: 'daemon.{key}' must be greater than 0, not {v}")
    if d.send_interval < 0:
        raise ConfigError(
            f"{path}: 'daemon.send_interval' must be 0 (use email.schedule) or more, "
            f"not {d.send_interval}"
        )
