"""Editing the feed list in config.toml in place (`feeds add/remove/import`).

config.toml is the source of truth for which feeds are followed; these edit
its [[feeds]] tables with tomlkit, which keeps comments and layout, and check
that the edited file still loads before it replaces the old one. A feed URL
that could not be fetched, or a config file that cannot be written (docker
compose mounts it read-only), is refused before anything is written.
"""

from __future__ import annotations

import os
import stat
import tomllib
from collections.abc import Sequence
from dataclasses import fields
from pathlib import Path

import tomlkit

from aggregator import config as config_mod
from aggregator.config import FEEDS_KEY, Config, FeedConfig
from aggregator.config.feed_urls import feed_url_problem
from aggregator.errors import ConfigError

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
    """A feed URL typed by the user, checked (ConfigError naming it if no feed can
    be read there); a local path is written relative to the config file if inside it."""
    problem = feed_url_problem(url, Path.cwd())
    if problem:
        raise ConfigError(f"not a feed address: {url!r}: {problem}")
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
    """Append [[feeds]] tables to the config file; return those not already there.
    ConfigError naming every URL no feed can be read at (relative paths are read
    against the config file's folder), before anything is written."""
    config = config_mod.load(path)
    base = path.resolve().parent
    bad = [(f.url, p) for f in feeds if (p := feed_url_problem(f.url, base))]
    if bad:
        listed = "; ".join(f"{url!r}: {problem}" for url, problem in bad[:10])
        more = f"; and {len(bad) - 10} more" if len(bad) > 10 else ""
        what = "not a feed address" if len(bad) == 1 else f"{len(bad)} are not feed addresses"
        raise ConfigError(f"nothing was added to {path}: {what}: {listed}{more}")
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
    """Write the edited config atomically, after checking it still loads and
    can be written; ConfigError explaining what to do instead otherwise. A
    symlinked config.toml stays a link (its target is replaced), and keeps its mode."""
    config_mod.parse(tomllib.loads(text), path)
    real = path.resolve()
    why = _unwritable(real)
    if why:
        raise _cannot_write(path, why)
    tmp = real.with_name(real.name + ".tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
    except OSError as e:
        raise _cannot_write(path, e.strerror or str(e)) from None
    try:
        tmp.chmod(stat.S_IMODE(real.stat().st_mode))
        tmp.replace(real)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise _cannot_write(path, e.strerror or str(e)) from None


def ensure_editable(path: Path) -> None:
    """ConfigError (what to do instead) when the feed list in `path` cannot be
    edited: checked first, so `feeds add` refuses before it fetches anything."""
    why = _unwritable(path.resolve())
    if why:
        raise _cannot_write(path, why)


def _unwritable(path: Path) -> str | None:
    """Why `path` cannot be replaced by an edited copy, or None.

    A file with no write permission bit counts as read-only even for root, who
    could write it anyway: someone made it read-only on purpose.
    """
    try:
        mode = path.stat().st_mode
    except OSError as e:
        return e.strerror or str(e)
    if not mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH) or not os.access(path, os.W_OK):
        return "the file is read-only"
    if not os.access(path.parent, os.W_OK | os.X_OK):
        return f"its folder {path.parent} is read-only"
    return None


def _cannot_write(path: Path, why: str) -> ConfigError:
    return ConfigError(
        f"{path}: cannot change the feed list: {why}. The feeds followed are the"
        f" [[{FEEDS_KEY}]] tables of this file, so with a read-only config (docker compose"
        " mounts it read-only) add, remove or import feeds by editing config.toml where it"
        " is kept, then restart the daemon. Nothing was changed."
    )
