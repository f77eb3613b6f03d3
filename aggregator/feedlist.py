"""Editing the feed list in config.toml in place (`feeds add/remove/import`).

config.toml is the source of truth for which feeds are followed; these edit
its [[feeds]] tables with tomlkit, which keeps comments and layout, and check
that the edited file still loads before it replaces the old one.
"""

from __future__ import annotations

import tomllib
from collections.abc import Sequence
from dataclasses import fields
from pathlib import Path

import tomlkit

from aggregator import config as config_mod
from aggregator.config import FEEDS_KEY, Config, FeedConfig

#: the keys of one [[feeds]] table, as config.py reads them
_URL, _NAME, _TAGS = (f.name for f in fields(FeedConfig))


def feed_matches(config: Config, raw_url: str, url: str) -> bool:
    """Whether `url` as typed names the feed written `raw_url` in the file."""
    if url == raw_url:
        return True
    resolved = config_mod.feed_url(raw_url, config.path.resolve().parent)
    typed = config_mod.feed_url(url, Path.cwd())
    return resolved in (url, typed)


def relative_to_config(config: Config, url: str) -> str:
    """A local path typed by the user, written relative to the config file if inside it."""
    if "://" in url or url.startswith("file:"):
        return url
    path = Path(url).expanduser().resolve()
    try:
        return path.relative_to(config.path.resolve().parent).as_posix()
    except ValueError:
        return str(path)


def reload(config: Config) -> Config:
    """The config file read again (after an edit)."""
    return config_mod.load(config.path)


def source_key(config: Config, url: str) -> str:
    """The source key of the followed feed `url` names (as typed or as written)."""
    for s in config.feed_sources:
        if feed_matches(config, url, s.key) or feed_matches(config, s.key, url):
            return s.key
    raise LookupError(f"{url} is not followed in {config.path}")  # a bug: callers just added it


def add_feeds(path: Path, feeds: Sequence[FeedConfig]) -> list[FeedConfig]:
    """Append [[feeds]] tables to the config file; return those not already there."""
    config = config_mod.load(path)
    doc = tomlkit.parse(path.read_text(encoding="utf-8"))
    table = doc.get(FEEDS_KEY)
    if table is None:
        table = tomlkit.aot()
        doc.append(FEEDS_KEY, table)
    known = [str(t.get(_URL, "")) for t in table]
    added = []
    for feed in feeds:
        if any(feed_matches(config, raw, feed.url) for raw in known):
            continue
        item = tomlkit.table()
        item[_URL] = feed.url
        if feed.name:
            item[_NAME] = feed.name
        if feed.tags:
            item[_TAGS] = list(feed.tags)
        table.append(item)
        known.append(feed.url)
        added.append(feed)
    if added:
        _write_checked(path, tomlkit.dumps(doc))
    return added


def remove_feed(path: Path, url: str) -> FeedConfig | None:
    """Remove the [[feeds]] table whose url is `url`; return it, or None if absent."""
    config = config_mod.load(path)
    doc = tomlkit.parse(path.read_text(encoding="utf-8"))
    table = doc.get(FEEDS_KEY) or []
    for i, t in enumerate(table):
        raw = str(t.get(_URL, ""))
        if feed_matches(config, raw, url):
            removed = config.feeds[i]
            del table[i]
            if len(table) == 0:
                del doc[FEEDS_KEY]
            _write_checked(path, tomlkit.dumps(doc))
            return removed
    return None


def _write_checked(path: Path, text: str) -> None:
    """Write the edited config atomically, after checking it still loads."""
    config_mod.parse(tomllib.loads(text), path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
