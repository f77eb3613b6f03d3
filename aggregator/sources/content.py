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
  `content_scan.py`; this module walks the folder and reads one file.
- Hostile or careless input is a SourceError naming the file (and line).
  Symlinks are followed only to files inside the content directory; a loop
  or a dangling link is reported (os.path.realpath(strict=True) says ELOOP
  on every Python from 3.11; Path.resolve raises RuntimeError on 3.11 and
  3.12 and nothing on 3.13). Front matter is loaded and checked in
  `front_matter.py` (size cap, no YAML aliases, dates UTC can hold).

What this module does not do: store anything, or decide what is visible.
"""

from __future__ import annotations

import codecs
import errno
import hashlib
import os
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from urllib.parse import quote, unquote, urlsplit
from zoneinfo import ZoneInfo

from aggregator.errors import SourceError
from aggregator.model import ContentFileState, Failure, RawItem
from aggregator.sources import front_matter
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
PARSER_VERSION = 2


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


@dataclass(frozen=True)
class Listing:
    """What the walk of the content directory found."""

    #: the post files, sorted by path
    found: list[FoundFile]
    failures: list[Failure]
    #: relative paths of folders and files that could not be read ("." is
    #: the content directory itself): the posts stored from under them keep
    #: their last good version, since nothing says they are gone
    unreadable: list[str]

    @property
    def root_failed(self) -> bool:
        """The content directory itself is missing or unreadable."""
        return "." in self.unreadable


# -- walking -------------------------------------------------------------------


def _walk(
    root: Path, failures: list[Failure], unreadable: list[str]
) -> Iterator[tuple[str, Path, os.stat_result]]:
    """Every regular file under `root` as (relative posix path, path, stat).

    Hidden files and folders are skipped. A symlink is followed only to a
    file inside the content directory: one pointing outside it, a loop and a
    dangling one are reported; a symlinked folder inside it is skipped (its
    files are found by their real path). A folder met twice (a bind mount
    of its own ancestor) is read once. So the walk ends on any tree.
    """
    real_root = Path(os.path.realpath(root))
    seen: set[tuple[int, int]] = set()
    stack = [root]
    while stack:
        folder = stack.pop()
        rel_folder = folder.relative_to(root).as_posix()
        try:
            st = folder.stat()
            if (st.st_dev, st.st_ino) in seen:
                failures.append(
                    Failure(str(folder), "this folder was already read (a bind mount?)")
                )
                continue
            seen.add((st.st_dev, st.st_ino))
            with os.scandir(folder) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError as e:
            failures.append(Failure(str(folder), f"cannot list folder: {e.strerror}{_KEPT}"))
            unreadable.append(rel_folder)
            continue
        for entry in entries:
            if entry.name.startswith("."):
                continue
            path = Path(entry.path)
            try:
                if entry.is_symlink():
                    problem, is_dir = _follow(path, real_root)
                    if problem is not None:
                        failures.append(Failure(str(path), problem))
                        continue
                    if is_dir:
                        continue
                if entry.is_dir():
                    stack.append(path)
                elif entry.is_file():
                    yield path.relative_to(root).as_posix(), path, entry.stat()
            except OSError as e:
                failures.append(Failure(str(path), f"cannot read: {e.strerror}{_KEPT}"))
                unreadable.append(path.relative_to(root).as_posix())


_KEPT = "; the posts already stored from it stay published"


def _follow(link: Path, real_root: Path) -> tuple[str | None, bool]:
    """(what is wrong with following the symlink `link` or None, is it a folder)."""
    try:
        target = Path(os.path.realpath(link, strict=True))
    except OSError as e:
        if e.errno == errno.ELOOP:
            return "symlink loop (it leads back to itself); not followed", False
        if e.errno in (errno.ENOENT, errno.ENOTDIR):
            try:
                points_to = os.readlink(link)
            except OSError:
                points_to = "its target"
            return f"broken symlink: {points_to} does not exist", False
        return f"cannot follow symlink: {e.strerror}", False
    if not target.is_relative_to(real_root):
        return f"symlink points outside the content directory ({target}); not followed", False
    return None, target.is_dir()


def _root_problem(root: Path) -> str | None:
    """Why the content directory cannot be walked, or None."""
    try:
        st = root.stat()
    except OSError as e:
        if e.errno in (errno.ENOENT, errno.ENOTDIR):
            return "content directory not found"
        if e.errno == errno.ELOOP:
            return "the content directory is a symlink loop"
        return f"cannot read the content directory: {e.strerror}"
    if not stat.S_ISDIR(st.st_mode):
        return "the content directory is not a folder"
    return None


def list_files(settings: ContentSettings) -> Listing:
    """The post files under the content directory, and what could not be read.

    A content directory that is missing or unreadable is one failure at its
    path, and `root_failed`: the posts stored from it stay published.
    """
    problem = _root_problem(settings.dir)
    if problem is not None:
        return Listing([], [Failure(str(settings.dir), problem + _KEPT)], ["."])
    failures: list[Failure] = []
    unreadable: list[str] = []
    found = [
        FoundFile(rel, path, st.st_size, st.st_mtime_ns)
        for rel, path, st in _walk(settings.dir, failures, unreadable)
        if path.suffix.lower() in SUFFIXES
    ]
    found.sort(key=lambda f: f.rel)
    return Listing(found, failures, unreadable)


def static_files(settings: ContentSettings) -> dict[str, Path]:
    """Every non-Markdown file under the content directory, by relative path.

    `build` copies them to the output directory, where posts' relative image
    paths point. What cannot be walked was reported by the ingest.
    """
    if _root_problem(settings.dir) is not None:
        return {}
    return {
        rel: path
        for rel, path, _st in _walk(settings.dir, [], [])
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
    """One post as a RawItem, and warnings worth a look; SourceError if it cannot be read."""
    location = str(path)
    if data is None:
        data = read_bytes(path, settings.max_size)
    source = decode(data, location, settings.encoding)
    fm, body = front_matter.split(source, location)
    warnings: list[str] = []
    # Every front matter value is checked before the Markdown is rendered.
    slug = _slug(fm, rel)
    link = settings.base_url.rstrip("/") + quote(
        _permalink(settings.permalink, slug, location), safe="/:@!$&'()*+,;=~-._"
    )
    published = fm.date(("date",), settings.timezone)
    updated = fm.date(("lastmod", "updated"), settings.timezone)
    tags, too_many = fm.tags("tags", "categories")
    if too_many:
        warnings.append(too_many)
    title, summary = fm.text("title"), fm.text("summary")
    guid, canonical, author = fm.text("id"), fm.text("canonical"), fm.text("author")
    draft = fm.flag("draft", False)
    if published is None:
        warnings.append("no 'date' in front matter; using the file's modification time")
        published = _mtime(path)
    if updated is None and previous is not None:
        # An edit with no lastmod: the file's time says when it changed.
        updated = max(_mtime(path), published)
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
    html = rebase_links(
        html, link, folder_url, _static_check(settings.dir, path.parent), notes=warnings
    )
    if summary is None:
        before = split_more(html)
        if before is not None:
            summary = html_to_text(before, settings.code_placeholder) or None
    return (
        RawItem(
            location=location,
            guid=guid or slug,
            title=title or first_heading(html),
            link=link,
            canonical_link=canonical,
            published=published,
            updated=updated,
            author=author or settings.author,
            content_html=html,
            summary=summary,
            tags=tags,
            draft=draft,
        ),
        warnings,
    )


def _mtime(path: Path) -> datetime:
    """The file's modification time (a post with no date is dated by it)."""
    try:
        return datetime.fromtimestamp(path.stat().st_mtime, UTC)
    except OSError as e:
        raise SourceError(str(path), f"cannot read: {e.strerror}") from None
    except (OverflowError, ValueError):
        raise SourceError(
            str(path), "no 'date' in front matter, and the file's modification time is out of range"
        ) from None


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
    real_root = Path(os.path.realpath(root))

    def is_file(link: str) -> bool:
        target_path = unquote(urlsplit(link).path)
        if not target_path or target_path.lower().endswith(SUFFIXES):
            return False
        try:  # strict: a loop or a dangling link is no file (and raises on every Python)
            target = Path(os.path.realpath(folder / target_path, strict=True))
        except (OSError, ValueError):
            return False
        return target.is_relative_to(real_root) and target.is_file()

    return is_file


def _slug(fm: front_matter.FrontMatter, rel: str) -> str:
    slug = fm.text("slug")
    if slug is None:
        p = PurePosixPath(rel)
        # A page bundle (my-post/index.md) is named by its folder.
        slug = p.parent.name if p.stem == "index" and p.parent.name else p.stem
    slug = slug.strip().strip("/")
    if not slug:
        raise SourceError(fm.at("slug"), "'slug' is empty")
    return slug


def _permalink(pattern: str, slug: str, location: str) -> str:
    try:
        return pattern.format(slug=slug)
    except (KeyError, IndexError, ValueError) as e:
        raise SourceError(
            location, f"[content] permalink {pattern!r} cannot be filled ({e}); use {{slug}}"
        ) from None
