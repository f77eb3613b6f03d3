"""Read the content directory: Markdown posts with front matter -> entries.

Front matter is YAML between `---` lines or TOML between `+++` lines. One
broken post becomes a Failure naming its path (and line); the scan goes on.

Theory of operation:

- Identity: a post's guid is front matter `id`, else its slug (front matter
  `slug`, else the file name; `index.md` takes its folder's name), never the
  path, so moving a file between folders keeps its identity.
- Links: the permalink is base_url plus `[content] permalink`. Images and
  other embedded files (src) resolve against the URL of the post's own folder
  (base_url + its folder relative to the content dir), because `build` copies
  every non-Markdown file of the content dir to the same relative path in the
  output dir. A link (href) to such a file resolves the same way; any other
  relative link resolves against the post's permalink.
- The incremental, parallel scan and the id/permalink clash rule live in
  `content_scan.py`; this module reads one file.

What this module does not do: store anything, or decide what is visible.
"""

from __future__ import annotations

import codecs
import hashlib
import os
import re
import tomllib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import quote, unquote, urlsplit
from zoneinfo import ZoneInfo

import yaml

from aggregator.errors import SourceError
from aggregator.model import ContentFileState, Failure, RawItem
from aggregator.texmath import MathProblem
from aggregator.text import (
    first_heading,
    html_to_text,
    markdown_to_html,
    rebase_links,
    split_more,
)

SUFFIXES = (".md", ".markdown")
#: bump when parsing changes, so every file is read again once
PARSER_VERSION = 1

_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass(frozen=True)
class ContentSettings:
    """What the scan needs to know, from config."""

    dir: Path
    base_url: str
    permalink: str
    timezone: ZoneInfo
    author: str
    #: text encoding of the posts; a UTF-8 BOM is always accepted
    encoding: str
    #: posts larger than this many bytes are refused
    max_size: int
    #: what a code block becomes in plain text and excerpts
    code_placeholder: str

    def fingerprint(self) -> str:
        """A hash of everything that shapes a parsed post."""
        parts = (
            PARSER_VERSION, str(self.dir), self.base_url, self.permalink, str(self.timezone),
            self.author, self.encoding, self.max_size, self.code_placeholder,
        )  # fmt: skip
        return hashlib.sha256(repr(parts).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class FoundFile:
    """A post file found by the walk, with its stat."""

    rel: str
    path: Path
    size: int
    mtime_ns: int


# -- walking -------------------------------------------------------------------


def _walk(root: Path, failures: list[Failure]) -> Iterator[tuple[str, Path, os.stat_result]]:
    """Every regular file under `root` as (relative posix path, path, stat).

    Hidden files and folders are skipped. A symlink pointing outside the
    content directory is reported and not followed; a symlinked folder
    inside it is skipped (its files are found by their real path).
    """
    real_root = root.resolve()
    stack = [root]
    while stack:
        folder = stack.pop()
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError as e:
            failures.append(Failure(str(folder), f"cannot list folder: {e.strerror}"))
            continue
        for entry in entries:
            if entry.name.startswith("."):
                continue
            path = Path(entry.path)
            try:
                if entry.is_symlink():
                    target = path.resolve()
                    if not target.is_relative_to(real_root):
                        failures.append(
                            Failure(
                                str(path),
                                f"symlink points outside the content directory ({target});"
                                " not followed",
                            )
                        )
                        continue
                    if target.is_dir():
                        continue
                if entry.is_dir():
                    stack.append(path)
                elif entry.is_file():
                    yield path.relative_to(root).as_posix(), path, entry.stat()
            except OSError as e:
                failures.append(Failure(str(path), f"cannot read: {e.strerror}"))


def list_files(settings: ContentSettings) -> tuple[list[FoundFile], list[Failure]]:
    """The post files under the content directory, sorted by path, and walk failures."""
    if not settings.dir.is_dir():
        return [], [Failure(str(settings.dir), "content directory not found")]
    failures: list[Failure] = []
    found = [
        FoundFile(rel, path, st.st_size, st.st_mtime_ns)
        for rel, path, st in _walk(settings.dir, failures)
        if path.suffix.lower() in SUFFIXES
    ]
    found.sort(key=lambda f: f.rel)
    return found, failures


def static_files(settings: ContentSettings) -> dict[str, Path]:
    """Every non-Markdown file under the content directory, by relative path.

    `build` copies them to the output directory, where posts' relative image
    paths point.
    """
    if not settings.dir.is_dir():
        return {}
    return {
        rel: path
        for rel, path, _st in _walk(settings.dir, [])
        if path.suffix.lower() not in SUFFIXES
    }


# -- reading one post ----------------------------------------------------------


def decode(data: bytes, location: str, encoding: str) -> str:
    """Bytes -> text in `encoding` (a UTF-8 BOM is fine); errors name the line."""
    if not data.strip():
        raise SourceError(location, "empty file: a post needs front matter or text")
    if b"\x00" in data[:8192]:
        raise SourceError(location, "binary file (it contains NUL bytes), not a Markdown post")
    # A UTF-8 BOM says UTF-8, whatever the configured encoding.
    utf8 = codecs.lookup(encoding).name == "utf-8" or data.startswith(codecs.BOM_UTF8)
    codec = "utf-8-sig" if utf8 else encoding
    try:
        text = data.decode(codec)
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        raise SourceError(
            f"{location}:{line}",
            f"not {'UTF-8' if utf8 else encoding} text (bad byte at offset {e.start});"
            " if your posts use another"
            " encoding, set [content] encoding (e.g. gb18030)",
        ) from None
    return text.removeprefix("\ufeff")


def read_file(
    path: Path,
    settings: ContentSettings,
    rel: str,
    data: bytes | None,
    previous: ContentFileState | None,
) -> tuple[RawItem, list[str]]:
    location = str(path)
    if data is None:
        data = read_bytes(path, settings.max_size)
    source = decode(data, location, settings.encoding)
    meta, body = split_front_matter(source, location)
    warnings: list[str] = []
    slug = _slug(meta, rel, location)
    link = settings.base_url.rstrip("/") + quote(
        _permalink(settings.permalink, slug, location), safe="/:@!$&'()*+,;=~-._"
    )
    math_problems: list[MathProblem] = []
    html = markdown_to_html(body, math_problems)
    # the body's line 1 is the file's line after the front matter
    offset = source.count("\n") - body.count("\n")
    for p in math_problems:
        line = f"line {p.line + offset}: " if p.line else ""
        warnings.append(f"{line}formula {p.tex} is shown as TeX: no MathML ({p.reason})")
    folder = PurePosixPath(rel).parent.as_posix()
    folder_url = settings.base_url.rstrip("/") + "/"
    if folder != ".":
        folder_url += quote(folder) + "/"
    html = rebase_links(html, link, folder_url, _static_check(settings.dir, path.parent))
    title = _optional_str(meta.get("title")) or first_heading(html)
    published = _date(meta, ("date",), settings.timezone, location, source)
    updated = _date(meta, ("lastmod", "updated"), settings.timezone, location, source)
    mtime = datetime.fromtimestamp(path.stat().st_mtime, UTC)
    if published is None:
        warnings.append("no 'date' in front matter; using the file's modification time")
        published = mtime
    if updated is None and previous is not None:
        # An edit with no lastmod: the file's time says when it changed.
        updated = max(mtime, published)
    summary = _optional_str(meta.get("summary"))
    if summary is None:
        before = split_more(html)
        if before is not None:
            summary = html_to_text(before, settings.code_placeholder) or None
    tags = _tags(meta.get("tags"), location, "tags") + _tags(
        meta.get("categories"), location, "categories"
    )
    return (
        RawItem(
            location=location,
            guid=_optional_str(meta.get("id")) or slug,
            title=title,
            link=link,
            canonical_link=_optional_str(meta.get("canonical")),
            published=published,
            updated=updated,
            author=_optional_str(meta.get("author")) or settings.author,
            content_html=html,
            summary=summary,
            tags=tuple(dict.fromkeys(tags)),
            draft=_draft(meta.get("draft", False), location),
        ),
        warnings,
    )


def read_bytes(path: Path, max_size: int) -> bytes:
    try:
        size = path.stat().st_size
        if size > max_size:
            raise SourceError(
                str(path),
                f"file is {size:,} bytes, over the limit of {max_size:,} ([content] max_size)",
            )
        return path.read_bytes()
    except OSError as e:
        raise SourceError(str(path), f"cannot read: {e.strerror}") from None


def _static_check(root: Path, folder: Path) -> Callable[[str], bool]:
    """Is a relative link, seen from `folder`, a non-Markdown file of the content dir?"""
    real_root = root.resolve()

    def is_file(link: str) -> bool:
        target_path = unquote(urlsplit(link).path)
        if not target_path or target_path.lower().endswith(SUFFIXES):
            return False
        target = (folder / target_path).resolve()
        return target.is_relative_to(real_root) and target.is_file()

    return is_file


def _slug(meta: Mapping[str, Any], rel: str, location: str) -> str:
    slug = _optional_str(meta.get("slug"))
    if slug is None:
        p = PurePosixPath(rel)
        # A page bundle (my-post/index.md) is named by its folder.
        slug = p.parent.name if p.stem == "index" and p.parent.name else p.stem
    slug = slug.strip().strip("/")
    if not slug:
        raise SourceError(location, "'slug' is empty")
    return slug


def _permalink(pattern: str, slug: str, location: str) -> str:
    try:
        return pattern.format(slug=slug)
    except (KeyError, IndexError, ValueError) as e:
        raise SourceError(
            location, f"[content] permalink {pattern!r} cannot be filled ({e}); use {{slug}}"
        ) from None


_FENCES = {"---": "yaml", "+++": "toml"}
_TOML_LINE = re.compile(r"at line (\d+)")


def split_front_matter(source: str, location: str) -> tuple[dict[str, Any], str]:
    """Split `source` into (front matter, Markdown body)."""
    first_nl = source.find("\n")
    fence = (source if first_nl < 0 else source[:first_nl]).strip()
    if fence not in _FENCES:
        return {}, source
    lines = source.splitlines(keepends=True)
    for end in range(1, len(lines)):
        if lines[end].strip() == fence:
            break
    else:
        raise SourceError(f"{location}:1", f"front matter opened with '{fence}' is never closed")
    text = "".join(lines[1:end])
    body = "".join(lines[end + 1 :])
    if _FENCES[fence] == "yaml":
        try:
            meta = yaml.load(text, Loader=_Loader)  # a safe loader (C if available)
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
    return str(value).strip() or None if value is not None else None


def _key_line(source: str, key: str) -> int | None:
    m = re.search(rf"^\s*{re.escape(key)}\s*[:=]", source, re.MULTILINE)
    return source.count("\n", 0, m.start()) + 1 if m else None


def _date(
    meta: Mapping[str, Any], keys: tuple[str, ...], tz: ZoneInfo, location: str, source: str
) -> datetime | None:
    """A front matter date: a date, a datetime, or an ISO string; naive means `tz`."""
    key = next((k for k in keys if meta.get(k) not in (None, "")), None)
    if key is None:
        return None
    value = meta[key]
    result: datetime | None = None
    if isinstance(value, datetime):
        result = value
    elif isinstance(value, date):
        result = datetime.combine(value, time())
    elif isinstance(value, str):
        try:
            result = datetime.fromisoformat(value.strip())
        except ValueError:
            result = None
    if result is None:
        line = _key_line(source, key)
        raise SourceError(
            f"{location}:{line}" if line else location,
            f"'{key}' is not a date: {value!r} (use e.g. 2026-11-03, 2026-11-03 09:30"
            " or 2026-11-03T09:30:00+08:00)",
        )
    return result if result.tzinfo else result.replace(tzinfo=tz)


def _tags(value: Any, location: str, key: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return tuple(t.strip() for t in value.split(",") if t.strip())
    if isinstance(value, list):
        return tuple(str(t).strip() for t in value if str(t).strip())
    raise SourceError(location, f"'{key}' must be a list, not {value!r}")


def _draft(value: Any, location: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false", "yes", "no"):
        return value.strip().lower() in ("true", "yes")
    raise SourceError(location, f"'draft' must be true or false, not {value!r}")
