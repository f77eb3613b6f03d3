"""Fetch many feeds concurrently and politely with httpx. The only module that imports httpx.

- A bounded pool: at most `concurrency` requests in flight, `per_host` per host.
- Timeouts: connect, read (between bytes) and total (a server that drips
  one byte a second never holds a slot past `total_timeout`).
- A size cap enforced while streaming, after decompression: gzip and deflate
  are decoded here, chunk by chunk with a bounded output, so a gzip bomb
  costs at most `max_bytes` of memory.
- Conditional GET (If-None-Match / If-Modified-Since); 304 is "not modified".
- Redirects followed by hand (at most 5) so that a chain of only permanent
  ones (301, 308) is reported as the feed's new address, and a loop is named.
  A Location is read before httpx parses it (a response hook), and goes
  through the URL policy (urls.check_public_url): only http and https with a
  valid host and port are followed. A redirect that leads from a public
  address into loopback, link-local or private ranges is refused unless
  `allow_private_redirects` (a feed on your own network may redirect within it).
- 410 Gone is its own outcome (the caller disables the feed); 429/503 carry
  their Retry-After.

What it does not do: parse, decide schedules, or touch the store. Every
outcome, including every failure, is a FetchResult value; nothing raises:
even an exception no one foresaw is that feed's failure, logged with its
traceback.
"""

from __future__ import annotations

import asyncio
import logging
import zlib
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import unquote, urlparse, urlsplit
from urllib.request import url2pathname

import httpx

from aggregator import PROJECT_URL, __version__
from aggregator.sources.redirects import PrivateGuard, Resolver
from aggregator.urls import check_public_url, shown

log = logging.getLogger(__name__)

USER_AGENT = f"aggregator/{__version__} (+{PROJECT_URL})"
ACCEPT = (
    "application/atom+xml, application/rss+xml, application/rdf+xml;q=0.9, "
    "application/xml;q=0.8, text/xml;q=0.8, */*;q=0.5"
)
REDIRECTS = {301, 302, 303, 307, 308}
PERMANENT = {301, 308}
#: read the raw body in pieces this big; the decoder's output is bounded too
CHUNK = 64 * 1024


@dataclass(frozen=True)
class FetchSettings:
    """Limits of fetching, from the [fetch] config section."""

    concurrency: int
    per_host: int
    connect_timeout: float
    read_timeout: float
    total_timeout: float
    max_bytes: int
    #: follow a redirect from a public address into loopback, link-local or private ranges
    allow_private_redirects: bool
    #: the fetcher's own tuning, not in config.toml
    max_redirects: int = 5
    user_agent: str = USER_AGENT
    #: a host name -> its IP addresses, to tell where a redirect leads (a seam
    #: for tests); None: redirects.system_addresses (a literal address, or getaddrinfo)
    resolve: Resolver | None = None


@dataclass(frozen=True)
class FetchRequest:
    """One feed to fetch: `key` identifies it; `url` is where to fetch it now."""

    key: str
    url: str
    etag: str | None = None
    last_modified: str | None = None


class FetchStatus(StrEnum):
    OK = "ok"  #: a body to parse
    NOT_MODIFIED = "not modified"  #: 304
    GONE = "gone"  #: 410: the feed is gone for good
    ERROR = "error"  #: anything else: counts toward backoff


@dataclass(frozen=True)
class FetchResult:
    """What one fetch brought back."""

    request: FetchRequest
    status: FetchStatus
    #: the URL the body came from, after redirects
    url: str = ""
    body: bytes = b""
    #: response headers, lower-cased, content-encoding removed (the body is decoded),
    #: content-location set to `url` so relative links resolve
    headers: dict[str, str] = field(default_factory=dict)
    #: the new address when every redirect on the way was permanent
    moved_to: str | None = None
    #: a message for a person when status is ERROR or GONE
    error: str | None = None
    #: the raw Retry-After header of a 429 or 503
    retry_after: str | None = None
    http_status: int | None = None


class _TooBig(Exception):
    pass


class _Redirected(Exception):
    """Raised by the response hook for a redirect, before httpx parses its Location."""

    def __init__(self, status: int, location: str) -> None:
        super().__init__(status, location)
        self.status = status
        self.location = location


async def _redirect_hook(response: httpx.Response) -> None:
    """Hand every redirect to _fetch as it is: httpx would parse the Location
    itself (to build its next request, even with follow_redirects off) and
    raise InvalidURL for `javascript:` or a bad port, naming nothing."""
    if response.status_code in REDIRECTS and "location" in response.headers:
        raise _Redirected(response.status_code, response.headers["location"])


class _Decoder:
    """gzip/deflate decoding with a bounded output per call."""

    def __init__(self, encoding: str) -> None:
        self.encoding = encoding
        self._z: zlib._Decompress | None = None
        if encoding in ("gzip", "x-gzip"):
            self._z = zlib.decompressobj(16 + zlib.MAX_WBITS)
        elif encoding == "deflate":
            self._z = None  # zlib-wrapped or raw: decided on the first bytes

    def decode(self, data: bytes, limit: int) -> bytes:
        """Decode `data`; raise _TooBig once more than `limit` bytes would come out."""
        if self.encoding in ("", "identity"):
            if len(data) > limit:
                raise _TooBig
            return data
        if self._z is None:
            # RFC 9110 deflate is zlib-wrapped, but some servers send raw deflate.
            raw = not data or (data[0] & 0x0F) != 8
            self._z = zlib.decompressobj(-zlib.MAX_WBITS if raw else zlib.MAX_WBITS)
        out = self._z.decompress(data, limit + 1)
        if len(out) > limit or self._z.unconsumed_tail:
            raise _TooBig
        return out


async def fetch_all(
    requests: Sequence[FetchRequest], settings: FetchSettings
) -> AsyncIterator[FetchResult]:
    """Fetch every request concurrently; yield results as they complete."""
    timeout = httpx.Timeout(
        connect=settings.connect_timeout,
        read=settings.read_timeout,
        write=settings.read_timeout,
        pool=settings.total_timeout,
    )
    limits = httpx.Limits(
        max_connections=settings.concurrency, max_keepalive_connections=settings.concurrency
    )
    slots = asyncio.Semaphore(settings.concurrency)
    hosts: dict[str, asyncio.Semaphore] = {}

    async with httpx.AsyncClient(
        timeout=timeout,
        limits=limits,
        follow_redirects=False,
        event_hooks={"response": [_redirect_hook]},
        # We decode ourselves, to cap the decoded size; httpx must not.
        headers={
            "User-Agent": settings.user_agent,
            "Accept": ACCEPT,
            "Accept-Encoding": "gzip, deflate",
        },
    ) as client:

        async def one(req: FetchRequest) -> FetchResult:
            try:
                host = urlsplit(req.url).netloc
            except ValueError:  # "http://[": _fetch_with_deadline says why
                host = req.url
            per_host = hosts.setdefault(host, asyncio.Semaphore(settings.per_host))
            # Wait for the host first, so a busy host does not hold global slots.
            async with per_host, slots:
                return await _fetch_with_deadline(client, req, settings)

        tasks = [asyncio.ensure_future(one(r)) for r in requests]
        try:
            for done in asyncio.as_completed(tasks):
                yield await done
        finally:
            for t in tasks:
                t.cancel()


def fetch_one(request: FetchRequest, settings: FetchSettings) -> FetchResult:
    """Fetch one feed (blocking); for commands like `feeds add`."""

    async def run() -> FetchResult:
        async for result in fetch_all([request], settings):
            return result
        raise AssertionError("fetch_all yielded nothing")  # pragma: no cover - a bug

    return run_async(run)


T = TypeVar("T")


def run_async(start: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a coroutine to completion from synchronous code.

    If this thread already runs an event loop (Playwright's sync API, a
    notebook), asyncio.run would refuse: run it in a thread of its own.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(start())
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(lambda: asyncio.run(start())).result()


async def _fetch_with_deadline(
    client: httpx.AsyncClient, req: FetchRequest, settings: FetchSettings
) -> FetchResult:
    try:
        return await _fetch_any(client, req, settings)
    except Exception as e:  # a bug, or a library's surprise: this feed fails, the run goes on
        log.error("%s: fetching failed", req.url, exc_info=e)
        return _error(req, f"internal error while fetching: {e!r}")


async def _fetch_any(
    client: httpx.AsyncClient, req: FetchRequest, settings: FetchSettings
) -> FetchResult:
    try:
        scheme = urlsplit(req.url).scheme
    except ValueError as e:
        return _error(req, f"not a valid URL: {e}")
    if scheme == "file":
        return _read_file(req, settings)
    if scheme not in ("http", "https"):
        return _error(req, f"unsupported URL scheme {scheme!r} (use http, https or file)")
    try:
        async with asyncio.timeout(settings.total_timeout):
            return await _fetch(client, req, settings)
    except TimeoutError:
        return _error(req, f"no complete response within {settings.total_timeout:g} s")


async def _fetch(
    client: httpx.AsyncClient, req: FetchRequest, settings: FetchSettings
) -> FetchResult:
    headers = {}
    if req.etag:
        headers["If-None-Match"] = req.etag
    if req.last_modified:
        headers["If-Modified-Since"] = req.last_modified
    url = req.url
    seen = {url}
    permanent = True
    guard = None if settings.allow_private_redirects else PrivateGuard(req.url, settings.resolve)
    try:
        for _hop in range(settings.max_redirects + 1):
            try:
                async with client.stream("GET", url, headers=headers) as response:
                    moved = url if permanent and url != req.url else None
                    return await _answer(req, response, url, moved, settings)
            except _Redirected as r:
                status, location = r.status, r.location
            permanent = permanent and status in PERMANENT
            check = check_public_url(location, url)
            if check.url is None:
                why = check.reason or "an empty Location"
                return _error(
                    req, f"redirected to {shown(location)!r}, not followed: {why}", status
                )
            target = check.url
            if target in seen:
                return _error(req, f"redirect loop: {target} redirects back", status)
            refusal = await guard.refusal(target) if guard else None
            if refusal:
                return _error(req, refusal, status)
            seen.add(target)
            url = target
        return _error(req, f"too many redirects (more than {settings.max_redirects})")
    except httpx.TimeoutException as e:
        kind = "connecting" if isinstance(e, httpx.ConnectTimeout) else "waiting for data"
        return _error(req, f"timed out {kind} ({type(e).__name__})")
    except httpx.ConnectError as e:
        return _error(req, f"cannot connect: {e or type(e).__name__}")
    except httpx.HTTPError as e:
        return _error(req, f"fetch failed: {e or type(e).__name__}")
    except httpx.InvalidURL as e:  # a URL our policy passed and httpx does not take
        return _error(req, f"cannot fetch {shown(url)}: {e}")


async def _answer(
    req: FetchRequest,
    response: httpx.Response,
    url: str,
    moved: str | None,
    settings: FetchSettings,
) -> FetchResult:
    status = response.status_code
    reason = f"HTTP {status} {response.reason_phrase}".rstrip()
    if status == 304:
        # Its Cache-Control (and any new ETag) still steer the next fetch.
        kept = {k: response.headers[k] for k in ("cache-control", "etag") if k in response.headers}
        return FetchResult(
            req, FetchStatus.NOT_MODIFIED, url=url, moved_to=moved, http_status=304, headers=kept
        )
    if status == 410:
        return FetchResult(req, FetchStatus.GONE, url=url, error=reason, http_status=410)
    if status >= 400 or status < 200:
        return FetchResult(
            req,
            FetchStatus.ERROR,
            url=url,
            error=reason,
            retry_after=response.headers.get("retry-after") if status in (429, 503) else None,
            moved_to=moved,
            http_status=status,
        )
    decoder = _Decoder(response.headers.get("content-encoding", "").strip().lower())
    chunks: list[bytes] = []
    size = 0
    try:
        async for raw in response.aiter_raw(CHUNK):
            out = decoder.decode(raw, settings.max_bytes - size)
            size += len(out)
            chunks.append(out)
    except _TooBig:
        return _error(req, f"response larger than {settings.max_bytes} bytes", status)
    except zlib.error as e:
        return _error(req, f"cannot decompress the response: {e}", status)
    headers = {k.lower(): v for k, v in response.headers.items()}
    for k in ("content-encoding", "content-length", "transfer-encoding"):
        headers.pop(k, None)
    headers["content-location"] = url
    return FetchResult(
        req,
        FetchStatus.OK,
        url=url,
        body=b"".join(chunks),
        headers=headers,
        moved_to=moved,
        http_status=status,
    )


def _read_file(req: FetchRequest, settings: FetchSettings) -> FetchResult:
    path = Path(url2pathname(unquote(urlparse(req.url).path)))
    try:
        with path.open("rb") as f:
            body = f.read(settings.max_bytes + 1)
    except OSError as e:
        return _error(req, f"cannot read feed file: {e.strerror}")
    if len(body) > settings.max_bytes:
        return _error(req, f"file larger than {settings.max_bytes} bytes")
    # feedparser reads the charset from Content-Type; a local file has none,
    # so say it is XML and let the XML declaration name the encoding.
    headers = {"content-location": req.url, "content-type": "application/xml"}
    return FetchResult(req, FetchStatus.OK, url=req.url, body=body, headers=headers)


def _error(req: FetchRequest, message: str, http_status: int | None = None) -> FetchResult:
    return FetchResult(req, FetchStatus.ERROR, url=req.url, error=message, http_status=http_status)
