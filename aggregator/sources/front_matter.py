"""Front matter: the YAML (`---`) or TOML (`+++`) block at the top of a post,
loaded so that no post can make it expensive, and read into checked values.

Every problem is a SourceError naming the file and, where there is one, the
line: the line YAML or TOML points at, else the line of the key.

Bounds, and why:

- Size: front matter over MAX_FRONT_MATTER characters is refused before it
  is parsed (a few keys written by hand take a few hundred).
- YAML aliases (`*name`) are refused, not expanded under a cap. A 398-byte
  front matter of nine anchors, each a list of nine aliases of the one
  before, loads as a small graph of shared lists, but every consumer that
  walks it as a tree (str(), JSON, the tag list) sees 9**9 leaves: it grew
  to 2.9 GiB. A cap would have to count the expanded tree in every consumer
  and pick an arbitrary number; refusing costs one pass over the parser's
  events (only when the text holds a `*` at all), and front matter written
  by hand has no use for aliases that writing the value out does not serve.
  Anchors alone are harmless and allowed.
- Nesting: libyaml refuses more than 1000 levels; TOML (and pure-Python
  YAML, if libyaml is missing) end in RecursionError, reported as such.
- Values YAML or TOML cannot build (`2026-13-45`, a 5,000-digit number past
  Python's int limit, `!!timestamp foo`) are errors at their node's line,
  not a ValueError from inside the loader.
- Dates are converted to UTC here, so a date UTC cannot hold (year 1 east
  of Greenwich, 9999-12-31 west of it) is an error at its line.
- Text values (title, slug, id, ...) must be text or a number or a date:
  a list or mapping is an error, and so is true/false, since YAML reads
  `yes`, `no`, `on` and `off` that way (quote them).
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, tzinfo
from typing import TYPE_CHECKING, Any

import yaml

from aggregator.errors import SourceError

#: front matter longer than this many characters is refused
MAX_FRONT_MATTER = 64 * 1024
#: a post with more tags (tags and categories together) keeps the first
#: MAX_TAGS, with a warning: each tag is a page and a feed of its own
MAX_TAGS = 100

_FENCES = {"---": "yaml", "+++": "toml"}
_TOML_LINE = re.compile(r"at line (\d+)")
#: longer runs of digits than Python turns into an int (sys.get_int_max_str_digits)
_LONG_NUMBER = re.compile(r"[0-9_]{4301,}")

# An if statement, not a conditional expression: mypy sees one base class.
if TYPE_CHECKING or yaml.__with_libyaml__:  # noqa: SIM108
    _SafeLoader = yaml.CSafeLoader
else:  # pragma: no cover - PyYAML's wheels include libyaml
    _SafeLoader = yaml.SafeLoader


class _Loader(_SafeLoader):
    """The safe loader (libyaml's parser), where a value that cannot be built
    is a YAML error at its node, with its line."""

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep)
        except (ValueError, OverflowError, TypeError, KeyError, AttributeError) as e:
            raise yaml.constructor.ConstructorError(
                None, None, _unbuildable(node, e), node.start_mark
            ) from None


def _unbuildable(node: yaml.Node, error: Exception) -> str:
    value = node.value if isinstance(node.value, str) else ""
    shown = repr(value) if len(value) <= 40 else f"{value[:20]!r}... ({len(value):,} characters)"
    kind = node.tag.rsplit(":", 1)[-1]
    why = str(error).split(";")[0] if isinstance(error, ValueError | OverflowError) else ""
    if why.startswith("offset must be"):
        why = "a UTC offset must be less than 24 hours"
    what = {"timestamp": "a date", "int": "a number", "float": "a number"}.get(kind, kind)
    return f"{shown} is not {what}" + (f" ({why})" if why else "")


@dataclass(frozen=True)
class FrontMatter:
    """A post's front matter, read value by value with checks."""

    meta: dict[Any, Any]
    #: the post's text up to the end of the front matter (where keys' lines are)
    header: str
    #: the post's path
    location: str

    def at(self, key: str) -> str:
        """The location of `key`: path:line, or the path when the line is not found."""
        m = re.search(rf"^[ \t]*[\"']?{re.escape(key)}[\"']?[ \t]*[:=]", self.header, re.MULTILINE)
        if m is None:
            return self.location
        return f"{self.location}:{self.header.count(chr(10), 0, m.start()) + 1}"

    def text(self, key: str) -> str | None:
        """A text value: a string, a number or a date as written; None if absent or blank."""
        return _text(self.meta.get(key), self.at, key)

    def date(self, keys: tuple[str, ...], tz: tzinfo) -> datetime | None:
        """The first of `keys` present, as a UTC datetime: a date, a datetime, or an
        ISO string; naive means `tz`."""
        key = next((k for k in keys if self.meta.get(k) not in (None, "")), None)
        if key is None:
            return None
        value = self.meta[key]
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
            raise SourceError(
                self.at(key),
                f"'{key}' is not a date: {_short(value)} (use e.g. 2026-11-03, 2026-11-03 09:30"
                " or 2026-11-03T09:30:00+08:00)",
            )
        try:
            return (result if result.tzinfo else result.replace(tzinfo=tz)).astimezone(UTC)
        except (OverflowError, ValueError):
            raise SourceError(
                self.at(key),
                f"'{key}' is out of range: {result.isoformat()} in UTC falls outside"
                " the years 1 to 9999",
            ) from None

    def tags(self, *keys: str) -> tuple[tuple[str, ...], str | None]:
        """The tags of every key in `keys`, in order, each once: (tags, a warning or None)."""
        tags: dict[str, None] = {}
        for key in keys:
            value = self.meta.get(key)
            if value is None:
                continue
            if isinstance(value, str):
                items: list[Any] = value.split(",")
            elif isinstance(value, list):
                items = value
            else:
                raise SourceError(
                    self.at(key),
                    f"'{key}' must be a list or a comma-separated text, not {_kind(value)}",
                )
            for item in items:
                tag = _text(item, self.at, key, f"each of '{key}'")
                if tag is not None:
                    tags[tag] = None
        if len(tags) > MAX_TAGS:
            warning = f"{len(tags)} tags: only the first {MAX_TAGS} are kept"
            return tuple(tags)[:MAX_TAGS], warning
        return tuple(tags), None

    def flag(self, key: str, default: bool) -> bool:
        """A true/false value (or the text true, false, yes, no)."""
        value = self.meta.get(key, default)
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in ("true", "false", "yes", "no"):
            return value.strip().lower() in ("true", "yes")
        raise SourceError(self.at(key), f"'{key}' must be true or false, not {_short(value)}")


def split(source: str, location: str) -> tuple[FrontMatter, str]:
    """Split `source` into (its front matter, the Markdown body)."""
    first_nl = source.find("\n")
    fence = (source if first_nl < 0 else source[:first_nl]).strip()
    if fence not in _FENCES:
        return FrontMatter({}, "", location), source
    lines = source.splitlines(keepends=True)
    for end in range(1, len(lines)):
        if lines[end].strip() == fence:
            break
    else:
        raise SourceError(f"{location}:1", f"front matter opened with '{fence}' is never closed")
    header = "".join(lines[: end + 1])
    text = header[len(lines[0]) : len(header) - len(lines[end])]
    body = source[len(header) :]
    if len(text) > MAX_FRONT_MATTER:
        raise SourceError(
            f"{location}:1",
            f"front matter is {len(text):,} characters, over the limit of {MAX_FRONT_MATTER:,}",
        )
    meta = _load_yaml(text, location) if _FENCES[fence] == "yaml" else _load_toml(text, location)
    if meta is None:
        meta = {}
    if not isinstance(meta, dict):
        raise SourceError(f"{location}:2", "front matter must be a mapping of keys to values")
    return FrontMatter(meta, header, location), body


def _load_yaml(text: str, location: str) -> Any:
    # Lines of the front matter text are counted from the line after the fence.
    try:
        _refuse_aliases(text, location)
        return yaml.load(text, Loader=_Loader)  # a safe loader
    except yaml.MarkedYAMLError as e:
        line = e.problem_mark.line + 2 if e.problem_mark else 1
        lines = text.splitlines()
        hint = _quote_hint(lines[line - 2]) if 2 <= line < len(lines) + 2 else ""
        raise SourceError(
            f"{location}:{line}", f"invalid YAML front matter: {e.problem}{hint}"
        ) from None
    except yaml.YAMLError as e:
        raise SourceError(f"{location}:1", f"invalid YAML front matter: {e}") from None
    except RecursionError:
        raise SourceError(f"{location}:1", "invalid YAML front matter: nested too deeply") from None


#: characters YAML gives a meaning at the start of a value (writers mean them as text)
_SIGILS = re.compile(r"^\s*(?:-\s+)*(?:[^\s:#'\"][^:#]*:\s+)?(?:-\s+)*([*&!@`%])")


def _quote_hint(line: str) -> str:
    """A hint when the value on `line` starts with a character YAML reads specially."""
    m = _SIGILS.match(line)
    return f" (a text that starts with {m.group(1)} must be in quotes)" if m else ""


def _refuse_aliases(text: str, location: str) -> None:
    """SourceError at the first alias (`*name`) in the YAML `text`."""
    if "*" not in text:  # every alias is written with one
        return
    for event in yaml.parse(text, Loader=_Loader):
        if isinstance(event, yaml.AliasEvent):
            line = event.start_mark.line + 2 if event.start_mark else 1
            raise SourceError(
                f"{location}:{line}",
                f"YAML alias *{event.anchor} in front matter: aliases are not allowed here;"
                " write the value out (a '*' that starts a text must be in quotes)",
            )


def _load_toml(text: str, location: str) -> Any:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        m = _TOML_LINE.search(str(e))
        line = int(m.group(1)) + 1 if m else 1
        raise SourceError(f"{location}:{line}", f"invalid TOML front matter: {e}") from None
    except ValueError as e:  # a number past Python's int limit
        m = _LONG_NUMBER.search(text)
        line = text.count("\n", 0, m.start()) + 2 if m else 1
        why = str(e).split(";")[0]
        raise SourceError(f"{location}:{line}", f"invalid TOML front matter: {why}") from None
    except RecursionError:
        lines = text.splitlines() or [""]
        deepest = max(range(len(lines)), key=lambda i: lines[i].count("[") + lines[i].count("{"))
        raise SourceError(
            f"{location}:{deepest + 2}", "invalid TOML front matter: nested too deeply"
        ) from None


def _text(value: Any, at: Callable[[str], str], key: str, what: str | None = None) -> str | None:
    what = what or f"'{key}'"
    if value is None:
        return None
    if isinstance(value, bool):
        raise SourceError(
            at(key),
            f"{what} is {str(value).lower()}, not a text (YAML reads yes, no, on and off"
            " as true/false): put it in quotes",
        )
    if isinstance(value, str | int | float | date):
        return str(value).strip() or None
    raise SourceError(at(key), f"{what} must be a text, not {_kind(value)}")


def _kind(value: Any) -> str:
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list | tuple | set):
        return "a list"
    return _short(value)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:50] + f"... ({len(text):,} characters)"
