"""What may stand as a feed's address (pure, but for one look at the disk).

A feed is followed by an http:// or https:// URL, a file: URL, or a path to a
file that exists, relative to a base folder (the config file's, or for `feeds
add` the current one). Anything else is refused with the reason, and a value
that looks like a host name without its scheme (`example.org/feed.xml`) gets
the URL it probably meant: saved as a path it would only fail at every fetch.
"""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path
from urllib.parse import urlsplit

#: schemes a feed can be fetched by (file: reads a local file)
FEED_SCHEMES = ("http", "https", "file")
#: the longest feed URL accepted: far beyond any real one, short of any server's limit
MAX_LENGTH = 2048

_SCHEME = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.\-]*):")
#: `host.tld/...`, `host.tld:port/...`, `localhost:8000/...`: a web address without its scheme
_HOSTLIKE = re.compile(
    r"^(?:(?:[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?\.)+(?P<tld>[A-Za-z]{2,24})\.?"
    r"|localhost|[0-9]{1,3}(?:\.[0-9]{1,3}){3})(?P<port>:[0-9]{1,5})?(?:[/?#]|$)"
)
#: the bidirectional overrides and isolates, which make a URL read other than it is
_BIDI = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
#: file name endings that look like a top-level domain but name a feed file
_FILE_ENDINGS = frozenset({"xml", "atom", "rss", "rdf", "json", "opml", "txt", "html", "htm"})


def feed_url_problem(url: str, base: Path) -> str | None:
    """Why `url` cannot be a feed's address (relative paths read against `base`),
    or None when it can."""
    if not url.strip():
        return "it is empty"
    if url != url.strip():
        return "it starts or ends with a space"
    if len(url) > MAX_LENGTH:
        return f"it is longer than {MAX_LENGTH} characters"
    if any(unicodedata.category(c) == "Cc" or c in _BIDI for c in url):
        return "it contains a control character"
    hint = _guess(url)
    m = _SCHEME.match(url)
    if m and not hint:
        return _url_problem(url, m["scheme"].lower())
    return _path_problem(url, base, hint)


def _url_problem(url: str, scheme: str) -> str | None:
    if scheme == "feed":  # feed://host/path and feed:https://host/path, from old browsers
        rest = url[len("feed:") :].removeprefix("//")
        meant = rest if _SCHEME.match(rest) else f"https://{rest}"
        return f"feed: is not a scheme feeds are fetched by; did you mean {meant}?"
    if scheme not in FEED_SCHEMES:
        return (
            f"{scheme}: is not a scheme feeds are fetched by"
            " (use http://, https://, file: or a path to a file)"
        )
    if scheme == "file":
        return None
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port out of range
    except ValueError as e:
        return f"it is not a valid URL ({e})"
    if not url[len(scheme) + 1 :].startswith("//") or not parts.hostname:
        return f"it has no host (write {scheme}://host/path)"
    if any(c.isspace() for c in parts.hostname):
        return f"its host contains a space: {parts.hostname!r}"
    return None


def _path_problem(url: str, base: Path, hint: str | None) -> str | None:
    path = Path(url).expanduser()
    path = path if path.is_absolute() else base / path
    try:
        is_dir = path.is_dir()
        exists = is_dir or path.exists()
    except (OSError, ValueError):  # a name too long for the file system, and the like
        exists = is_dir = False
    if is_dir:
        return f"it is a folder, not a feed file: {path}"
    if exists:
        return None
    reason = f"it is not an http://, https:// or file: URL, nor an existing file ({path})"
    return f"{reason}; did you mean {hint}?" if hint else reason


def _guess(url: str) -> str | None:
    """The web address `url` probably meant, if it reads as one without its scheme."""
    m = _HOSTLIKE.match(url)
    if m is None or any(c.isspace() for c in url):
        return None
    if m["tld"] and m["tld"].lower() in _FILE_ENDINGS and not m["port"] and "/" not in url:
        return None  # friend.atom: a file name
    scheme = "http" if m["port"] or not m["tld"] else "https"
    return f"{scheme}://{url}"
