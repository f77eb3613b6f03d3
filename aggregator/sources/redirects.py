"""Where a feed's redirect may lead: not from a public address into a private one.

fetch.py asks PrivateGuard before it follows each redirect (unless [fetch]
allow_private_redirects). The rule is urls.is_private_address; the lookups
are the event loop's getaddrinfo, or the resolver FetchSettings hands in.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable, Sequence
from urllib.parse import urlsplit

from aggregator.urls import is_private_address, shown

#: looks up the IP addresses of a host name
Resolver = Callable[[str], Awaitable[Sequence[str]]]


class PrivateGuard:
    """Refuses a redirect that leads from a public address into a private one.

    A feed configured on a private address (your own network) may redirect
    anywhere; once the way has passed a public address, a redirect into
    loopback, link-local or private ranges is refused (urls.is_private_address),
    so a public feed cannot make us fetch a local service's page and publish
    it. Addresses are looked up (the event loop's getaddrinfo) only when a
    feed redirects. What it cannot stop: a name that resolves differently when
    httpx connects a moment later (DNS rebinding).
    """

    def __init__(self, origin: str, resolve: Resolver | None) -> None:
        self.origin = origin
        self.resolve = resolve or system_addresses
        #: whether the way so far passed a public address; None: not yet looked up
        self.public: bool | None = None

    async def refusal(self, target: str) -> str | None:
        """Why the redirect to `target` is refused, or None to follow it."""
        if self.public is None:
            try:
                origin = await self._addresses(urlsplit(self.origin).hostname or "")
            except OSError:  # no longer resolves: count it public, the safe side
                origin = []
            self.public = not origin or not all(map(is_private_address, origin))
        host = urlsplit(target).hostname or ""
        try:
            addresses = await self._addresses(host)
        except OSError as e:
            return f"redirected to {shown(target)}, whose host does not resolve: {e}"
        private = [a for a in addresses if is_private_address(a)]
        if self.public and private:
            return (
                f"refused a redirect to {shown(target)}: it leads from a public address into a "
                f"private one ({private[0]}); set [fetch] allow_private_redirects = true "
                "to follow redirects into your own network"
            )
        self.public = self.public or not private
        return None

    async def _addresses(self, host: str) -> list[str]:
        return list(await self.resolve(host))


async def system_addresses(host: str) -> list[str]:
    """The IP addresses `host` stands for: itself if it is one, else getaddrinfo's."""
    try:
        return [str(ipaddress.ip_address(host))]
    except ValueError:
        pass  # a name
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))
