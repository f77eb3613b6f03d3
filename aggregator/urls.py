"""URL helpers shared by stages: the policy for links shown to readers, and the
canonical form of a link. Pure, no IO.

The policy (`check_public_url`, `public_url`): a link from outside (an item's
or a feed's link, a redirect's Location) is resolved against its base,
cleaned of what browsers silently drop (tabs and newlines anywhere, control
characters and spaces at the ends) and of what XML cannot carry, and kept only
if it is http or https with a host and a valid port, and at most
MAX_URL_LENGTH characters. Everything else (javascript:, vbscript:, data:,
mailto:, file:, about:, a bad port, an unparsable URL) is refused with a
reason, never shown to a reader.

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
import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import parse_qsl, quote, urlencode, urljoin, urlsplit, urlunsplit

#: the longest link shown to readers, in characters. 8,192 and not 2,048: the
#: common web servers accept request lines up to about 8 kB (nginx's
#: large_client_header_buffers 8k, Apache's LimitRequestLine 8190), so a link
#: under that can still work, and real ones with long query strings (search
#: results, signed CDN links) pass 2,048; a longer one cannot be fetched by a
#: reader anyway, and is refused rather than cut (a cut link names another page).
MAX_URL_LENGTH = 8192
#: the only schemes a link shown to readers may have
READER_SCHEMES = ("http", "https")
#: removed anywhere in a link, as browsers do (WHATWG URL: tab and newline);
#: then the other C0 and C1 controls, DEL, lone surrogates and the XML
#: non-characters, which XML cannot carry and no URL needs
_DROPPED = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")
#: characters escaped inside a link: not valid in a URL, kept by escaping them
_ESCAPED = {" ": "%20", '"': "%22", "<": "%3C", ">": "%3E", "`": "%60"}
#: characters no host name carries (after the escapes above, a host with one is refused)
_BAD_HOST = re.compile(r"[\s%<>\"`{}|\\^]")


@dataclass(frozen=True)
class UrlCheck:
    """The policy's verdict on one link: `url` to show, or why it was refused.

    Both are None when there was no link at all.
    """

    url: str | None
    #: why the link is refused, for a person ("a javascript: URL (only http and https are allowed)")
    reason: str | None = None


def public_url(raw: str | None, base: str = "") -> str | None:
    """`raw` as a link a reader may be shown, resolved against `base`; None if refused."""
    return check_public_url(raw, base).url


def check_public_url(raw: str | None, base: str = "") -> UrlCheck:
    """Apply the policy for links shown to readers to `raw`, resolved against `base`.

    Kept: http and https links with a host and a valid port, at most
    MAX_URL_LENGTH characters, cleaned (see the module's docstring) and with
    spaces and quotes escaped. Refused, with a reason: anything else.
    """
    if raw is None:
        return UrlCheck(None)
    if len(raw) > 4 * MAX_URL_LENGTH:  # bound the work: cleaning cannot bring it under
        return UrlCheck(None, f"a URL longer than {MAX_URL_LENGTH} characters")
    cleaned = _DROPPED.sub("", raw.replace("\t", "").replace("\n", "").replace("\r", ""))
    cleaned = cleaned.strip(" \u00a0\u3000\u2028\u2029\ufeff").strip()
    if not cleaned:
        return UrlCheck(None)
    if any(c in cleaned for c in _ESCAPED):
        cleaned = "".join(_ESCAPED.get(c, c) for c in cleaned)
    try:
        url = urljoin(base, cleaned) if base else cleaned
        parts = urlsplit(url)
        port = parts.port
    except ValueError as e:  # "http://[": no URL; "http://a:99999/": no port
        return UrlCheck(None, f"not a valid URL ({e})")
    scheme = parts.scheme.lower()
    if scheme not in READER_SCHEMES:
        if not scheme:
            return UrlCheck(None, "a relative URL with no web address to resolve it against")
        return UrlCheck(None, f"{scheme}: is not allowed (only http and https)")
    host = parts.hostname or ""
    if not host or _BAD_HOST.search(host):
        return UrlCheck(None, "a URL with no valid host name")
    if port == 0:
        return UrlCheck(None, "a URL with port 0")
    if len(url) > MAX_URL_LENGTH:
        return UrlCheck(None, f"a URL longer than {MAX_URL_LENGTH} characters")
    return UrlCheck(url)


def is_private_address(address: str) -> bool:
    """Whether a redirect from the public internet must not lead to `address`.

    True for loopback (127.0.0.0/8, ::1), link-local (169.254.0.0/16,
    fe80::/10), private (RFC 1918, fc00::/7), unspecified (0.0.0.0, ::) and
    every other range that is not globally routable (carrier-grade NAT,
    documentation, reserved), for multicast, for an IPv4 address written as
    IPv6 (::ffff:127.0.0.1), and for anything that is not an IP address.
    """
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return True
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return not ip.is_global or ip.is_multicast


def shown(raw: str, limit: int = 120) -> str:
    """A link as a message may quote it: controls escaped, cut at `limit` characters."""
    text = _DROPPED.sub(lambda m: f"\\x{ord(m.group(0)):02x}", raw)
    return text if len(text) <= limit else text[: limit - 1] + "…"


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
