"""Read the content directory: Markdown posts with front matter -> RawItem.

Front matter is YAML between `---` lines or TOML between `+++` lines. One
broken post becomes a Failure naming its path and line; the scan goes on.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from datetime import date, datetime, time
from pathlib import Path
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

import yaml

from aggregator.errors import SourceError
from aggregator.model import Failure, RawItem
from aggregator.text import markdown_to_html

SUFFIXES = (".md", ".markdown")


@dataclass(frozen=True)
class ContentSettings:
    """What the scan needs to know, from config."""

    dir: Path
    base_url: str
    permalink: str
    timezone: ZoneInfo
    author: str


@dataclass(frozen=True)
class ScanResult:
    items: tuple[RawItem, ...]
    failures: tuple[Failure, ...]


def scan(settings: ContentSettings) -> ScanResult:
    """Read every post under the content directory."""
    if not settings.dir.is_dir():
        return ScanResult((), (Failure(str(settings.dir), "content directory not found"),))
    items: list[RawItem] = []
    failures: list[Failure] = []
    for path in sorted(settings.dir.rglob("*")):
        if path.suffix.lower() not in SUFFIXES or not path.is_file():
            continue
        try:
            items.append(read_post(path, settings))
        except SourceError as e:
            failures.append(Failure(e.location, e.reason))
    return ScanResult(tuple(items), tuple(failures))


def read_post(path: Path, settings: ContentSettings) -> RawItem:
    """Read one post; raise SourceError naming the file (and line)."""
    try:
        source = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as e:
        raise SourceError(str(path), f"not UTF-8 text (byte {e.start})") from None
    except OSError as e:
        raise SourceError(str(path), f"cannot read: {e.strerror}") from None
    meta, body = split_front_matter(source, str(path))
    slug = str(meta.get("slug") or path.stem)
    link = settings.base_url.rstrip("/") + quote(settings.permalink.format(slug=slug))
    title = meta.get("title")
    return RawItem(
        location=str(path),
        guid=str(meta.get("id") or slug),
        title=str(title) if title is not None else None,
        link=link,
        canonical_link=_optional_str(meta.get("canonical")),
        published=_date(meta.get("date"), settings.timezone, path, "date"),
        updated=_date(meta.get("lastmod", meta.get("updated")), settings.timezone, path, "lastmod"),
        author=_optional_str(meta.get("author")) or settings.author,
        content_html=markdown_to_html(body),
        summary=_optional_str(meta.get("summary")),
        tags=_tags(meta.get("tags"), path),
        draft=bool(meta.get("draft", False)),
    )


_FENCES = {"---": "yaml", "+++": "toml"}
_TOML_LINE = re.compile(r"at line (\d+)")


def split_front_matter(source: str, location: str) -> tuple[dict[str, Any], str]:
    """Split `source` into (front matter, Markdown body)."""
    lines = source.splitlines(keepends=True)
    fence = lines[0].strip() if lines else ""
    if fence not in _FENCES:
        return {}, source
    for end in range(1, len(lines)):
        if lines[end].strip() == fence:
            break
    else:
        raise SourceError(f"{location}:1", f"front matter opened with '{fence}' is never closed")
    text = "".join(lines[1:end])
    body = "".join(lines[end + 1 :])
    if _FENCES[fence] == "yaml":
        try:
            meta = yaml.safe_load(text)
        except yaml.MarkedYAMLError as e:
            line = e.problem_mark.line + 2 if e.problem_mark else 1
            raise SourceError(
                f"{location}:{line}", f"invalid YAML front matter: {e.problem}"
            ) from None
        except yaml.YAMLError as e:
            raise SourceError(f"{location}:1", f"invalid YAML front matter: {e}") from None
    else:
        try:
            meta = tomllib.loads(text)
        except tomllib.TOMLDecodeError as e:
            m = _TOML_LINE.search(str(e))
            line = int(m.group(1)) + 1 if m else 1
            raise SourceError(f"{location}:{line}", f"invalid TOML front matter: {e}") from None
    if meta is None:
        meta = {}
    if not isinstance(meta, dict):
        raise SourceError(f"{location}:2", "front matter must be a mapping of keys to values")
    return meta, body


def _optional_str(value: Any) -> str | None:
    return str(value) if value not in (None, "") else None


def _date(value: Any, tz: ZoneInfo, path: Path, key: str) -> datetime | None:
    """A front matter date: a date, a datetime, or an ISO string; naive means `tz`."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        result = value
    elif isinstance(value, date):
        result = datetime.combine(value, time())
    elif isinstance(value, str):
        try:
            result = datetime.fromisoformat(value.strip())
        except ValueError:
            raise SourceError(
                str(path), f"'{key}' is not a date: {value!r} (use e.g. 2026-11-03 09:30)"
            ) from None
    else:
        raise SourceError(str(path), f"'{key}' is not a date: {value!r}")
    return result if result.tzinfo else result.replace(tzinfo=tz)


def _tags(value: Any, path: Path) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return tuple(t.strip() for t in value.split(",") if t.strip())
    if isinstance(value, list):
        return tuple(str(t).strip() for t in value if str(t).strip())
    raise SourceError(str(path), f"'tags' must be a list, not {value!r}")
