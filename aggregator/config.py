"""config.toml -> a frozen Config, validated once at start-up.

This is the only module that knows config key names. Every section is a
frozen dataclass whose fields are the keys; `_read_section` checks types,
fills defaults and refuses unknown keys, so a typo never passes silently.
Relative paths are resolved against the directory of the config file.
"""

from __future__ import annotations

import os
import tomllib
import types
import typing
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path
from typing import Any, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from aggregator.errors import ConfigError
from aggregator.model import Source, SourceKind

ENV_CONFIG = "AGGREGATOR_CONFIG"


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


@dataclass(frozen=True)
class FeedConfig:
    url: str
    name: str = ""
    tags: tuple[str, ...] = ()


@dataclass(frozen=True)
class DatabaseConfig:
    url: str = ""


@dataclass(frozen=True)
class OutputConfig:
    dir: Path = Path("public")


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

    def smtp_password(self) -> str | None:
        """The SMTP password, read from the named environment variable."""
        return os.environ.get(self.smtp_password_env) if self.smtp_password_env else None


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
    daemon: DaemonConfig = field(default_factory=DaemonConfig)

    @property
    def content_source(self) -> Source:
        return Source(
            kind=SourceKind.CONTENT,
            key=str(self.content.dir),
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
    "daemon": DaemonConfig,
}
_LISTS: dict[str, type] = {"feeds": FeedConfig, "subscribers": SubscriberConfig}


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
        daemon=sections["daemon"],
    )
    _check(config)
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
    d = config.digest
    for key, v in (
        ("page_size", d.page_size),
        ("excerpt_length", d.excerpt_length),
        ("lead_excerpt_length", d.lead_excerpt_length),
    ):
        if v <= 0:
            raise ConfigError(f"{path}: 'digest.{key}' must be greater than 0, not {v}")
    if d.lead_count < 0:
        raise ConfigError(f"{path}: 'digest.lead_count' must be 0 or more, not {d.lead_count}")
    _check_daemon(config)
    urls = [f.url for f in config.feeds]
    for url in urls:
        if urls.count(url) > 1:
            raise ConfigError(f"{path}: feed {url} is listed twice in [[feeds]]")


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
