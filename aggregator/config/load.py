"""Reading config.toml: TOML -> typed sections, unknown keys refused, relative
paths resolved against the config file's folder, then every value checked."""

from __future__ import annotations

import os
import tomllib
import types
import typing
from dataclasses import MISSING, fields
from pathlib import Path
from typing import Any, TypeVar

from aggregator.config.checks import check
from aggregator.config.feed_urls import feed_url_problem
from aggregator.config.sections import (
    ENV_CONFIG,
    FEEDS_KEY,
    Config,
    ContentConfig,
    DaemonConfig,
    DatabaseConfig,
    DedupeConfig,
    DigestConfig,
    EmailConfig,
    FeedConfig,
    FetchConfig,
    OutputConfig,
    SiteConfig,
    SubscriberConfig,
)
from aggregator.errors import ConfigError

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
    for i, feed in enumerate(lists[FEEDS_KEY]):
        problem = feed_url_problem(feed.url, base)
        if problem:
            raise ConfigError(
                f"{path}: '{FEEDS_KEY}[{i}].url' is not a feed address: {feed.url!r}: {problem}"
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
    check(config)
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
