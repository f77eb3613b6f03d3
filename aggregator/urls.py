"""URL helpers shared by stages: canonical form of a link. Pure, no IO.

Two links name the same article when their canonical forms are equal. The
canonical form drops what never changes the page a reader gets: scheme and
host case, default ports, a trailing slash or index.html, the fragment,
tracking parameters, the order of the remaining query parameters and the
spelling of percent-escapes. It does not drop `www.`, fold path case or
follow redirects: those can name different pages, and a wrong merge hides a
post, while a missed one only shows a copy twice.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

#: query parameters that only track the reader, never change the article;
#: a name ending in "*" is a prefix ("utm_*" drops utm_source, utm_medium, ...)
TRACKING_PARAMS = ("utm_*", "fbclid", "gclid", "mc_cid", "mc_eid", "ref", "spm")
_DEFAULT_PORTS = {"http": 80, "https": 443}
_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
_ESCAPE = re.compile(r"%([0-9A-Fa-f]{2})")
#: characters a path may carry unescaped (RFC 3986 pchar and "/"); "%" is kept
#: so existing escapes are normalized below rather than escaped twice
_PATH_SAFE = "/%:@!$&'()*+,;=-._~"
#: an http(s) URL whose canonical form needs no parsing: lower-case host, no
#: port, user, query or fragment, a path of unreserved characters only (so
#: nothing to escape or unescape); canonical_url's test checks both ways agree
_SIMPLE = re.compile(r"https?://([a-z0-9.-]+)(/[A-Za-z0-9._~/-]*)?")


def canonical_url(url: str, extra_tracking: Iterable[str] = ()) -> str:
    """The canonical form of `url`, so two links to one article compare equal.

    Lower-case scheme and host, no default port, no fragment, no tracking
    parameters (TRACKING_PARAMS plus `extra_tracking`), sorted query, no
    trailing slash or index.html, percent-escapes in one spelling. Scheme is
    folded to https: the same article is often linked both ways. A link
    that is not http(s) is returned trimmed but otherwise as it is.
    """
    simple = _SIMPLE.fullmatch(url.strip())
    if simple:  # the common case, without parsing: the same result, 6x faster
        return "https://" + simple[1] + _canonical_path(simple[2] or "/")
    return _parsed_canonical_url(url, extra_tracking)


def _parsed_canonical_url(url: str, extra_tracking: Iterable[str]) -> str:
    """canonical_url for any URL, by parsing it."""
    try:
        parts = urlsplit(url.strip())
    except ValueError:  # "http://[": not a URL at all; keep the link as written
        return url.strip()
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        return url.strip()
    host = (parts.hostname or "").lower()
    try:
        port = parts.port
    except ValueError:  # a port that is not a number: keep the link as written
        return url.strip()
    if port and port != _DEFAULT_PORTS.get(scheme):
        host = f"{host}:{port}"
    path = _canonical_path(_normalize_escapes(quote(parts.path or "/", safe=_PATH_SAFE)))
    drop = _tracking_matcher(extra_tracking)
    query = sorted((k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if not drop(k))
    return urlunsplit(("https", host, path, urlencode(query), ""))


def _canonical_path(path: str) -> str:
    """An escaped path without index.html or a trailing slash ("/" at least)."""
    if path.endswith(("/index.html", "/index.htm")):
        path = path.rsplit("/", 1)[0] + "/"
    return path.rstrip("/") or "/"


def is_article_url(canonical: str) -> bool:
    """Whether a canonical URL can identify one article.

    A site's front page ("https://example.org") is linked by many entries of
    feeds that give no permalink, so it never identifies an article.
    """
    simple = _SIMPLE.fullmatch(canonical)
    if simple:  # without parsing, as in canonical_url
        return not canonical.startswith("https:") or simple[2] not in (None, "/")
    return _parsed_is_article_url(canonical)


def _parsed_is_article_url(canonical: str) -> bool:
    """is_article_url for any string, by parsing it."""
    if not canonical:
        return False
    try:
        parts = urlsplit(canonical)
    except ValueError:  # as written, not a URL: it names nothing else either
        return True
    if parts.scheme != "https":
        return True
    return parts.path not in ("", "/") or bool(parts.query)


def _tracking_matcher(extra: Iterable[str]) -> _Matcher:
    return _matcher(tuple(extra))


@functools.lru_cache(maxsize=16)
def _matcher(extra: tuple[str, ...]) -> _Matcher:
    names = [n.strip().lower() for n in (*TRACKING_PARAMS, *extra) if n.strip()]
    exact = frozenset(n for n in names if not n.endswith("*"))
    prefixes = tuple(n[:-1] for n in names if n.endswith("*"))
    return _Matcher(exact, prefixes)


class _Matcher:
    """Is a query parameter name a tracking parameter?"""

    def __init__(self, exact: frozenset[str], prefixes: tuple[str, ...]) -> None:
        self.exact = exact
        self.prefixes = prefixes

    def __call__(self, name: str) -> bool:
        low = name.lower()
        return low in self.exact or (bool(self.prefixes) and low.startswith(self.prefixes))


def _normalize_escapes(path: str) -> str:
    """Decode escapes of unreserved characters; upper-case every other escape."""

    def fix(m: re.Match[str]) -> str:
        char = chr(int(m.group(1), 16))
        return char if char in _UNRESERVED else "%" + m.group(1).upper()

    return _ESCAPE.sub(fix, path)
