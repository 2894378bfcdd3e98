"""Outbound HTTP on behalf of users (webhooks, platform APIs at user-given addresses):
never to private, loopback, link-local or otherwise non-public addresses.

The check sits where connections are made (an httpcore network backend), after DNS
resolution, and the connection goes to the very address that was checked: a name that
resolves to a public address for the check and a private one for the connect (DNS
rebinding) cannot slip through, and every redirect's new connection is checked the same
way. `OUTBOUND_ALLOW_PRIVATE_NETWORKS=true` lifts the rule for development and tests.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any
from urllib.parse import urlsplit

import httpcore
import httpx

from app.settings import Settings

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
# How long a client keeps what a host name resolved to (the verdict is never kept).
DNS_CACHE_SECONDS = 10.0
USER_AGENT = "SmartContent/1.0 (+https://github.com/smartcontent)"


class OutboundBlocked(Exception):
    """The destination is not allowed; `message` is safe to show (names no secret)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def is_public(address: Address) -> bool:
    """A globally routable unicast address (not private, loopback, link-local, CGNAT,
    multicast, reserved or unspecified; IPv4-mapped IPv6 judged as its IPv4)."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_global and not address.is_multicast


def check_address(
    address: Address, *, allow_private: bool, allowed: frozenset[Address] = frozenset()
) -> None:
    if not allow_private and not is_public(address) and address not in allowed:
        raise OutboundBlocked(
            f"{address} is a private, loopback or link-local address; outbound requests "
            "go only to public addresses."
        )


Lookup = Callable[[str, int], Awaitable[list[Address]]]


async def _getaddrinfo(host: str, port: int) -> list[Address]:
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise httpcore.ConnectError(f"cannot resolve {host}") from exc
    addresses: list[Address] = []
    for _family, _type, _proto, _canon, sockaddr in infos:
        address = ipaddress.ip_address(sockaddr[0])
        if address not in addresses:
            addresses.append(address)
    if not addresses:
        raise httpcore.ConnectError(f"cannot resolve {host}")
    return addresses


class DnsCache:
    """What each (host, port) resolved to, for `ttl_seconds`: a busy worker opens many
    connections to the same few platform hosts, and each lookup is a getaddrinfo call in a
    thread. Only the lookup is cached, never the verdict: the addresses are checked against
    the rule on every connection (and the connection goes to a checked address), so a
    redirect, or a name that now resolves elsewhere after expiry, is judged afresh.
    Concurrent lookups of one name share one call; failures are not kept."""

    def __init__(
        self,
        ttl_seconds: float = 10.0,
        *,
        max_entries: int = 1024,
        lookup: Lookup = _getaddrinfo,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._ttl = ttl_seconds
        self._max = max_entries
        self._lookup = lookup
        self._clock = clock
        self._entries: dict[tuple[str, int], tuple[float, asyncio.Future[list[Address]]]] = {}

    async def resolve(self, host: str, port: int) -> list[Address]:
        key = (host.lower(), port)
        now = self._clock()
        entry = self._entries.get(key)
        if entry is None or entry[0] <= now:
            if len(self._entries) >= self._max:
                self._evict(now)
            future: asyncio.Future[list[Address]] = asyncio.ensure_future(self._lookup(host, port))
            entry = (now + self._ttl, future)
            self._entries[key] = entry
        future = entry[1]
        try:
            return list(await asyncio.shield(future))
        except BaseException:
            if future.done() and self._entries.get(key) is entry:
                del self._entries[key]  # a failed lookup is asked again next time
            raise

    def _evict(self, now: float) -> None:
        for key in [k for k, (expires, _) in self._entries.items() if expires <= now]:
            del self._entries[key]
        while len(self._entries) >= self._max:
            del self._entries[next(iter(self._entries))]  # the oldest


async def resolve(
    host: str,
    port: int,
    *,
    allow_private: bool,
    allowed: frozenset[Address] = frozenset(),
    cache: DnsCache | None = None,
) -> list[str]:
    """The addresses `host` resolves to, each checked; refused if any is not public (a
    name that also points inside the network is not trusted with the public one).
    `cache`: where recent lookups are kept (their addresses are checked all the same)."""
    try:
        literal: Address | None = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        literal = None
    if literal is not None:
        check_address(literal, allow_private=allow_private, allowed=allowed)
        return [str(literal)]
    found = await (cache.resolve(host, port) if cache is not None else _getaddrinfo(host, port))
    for address in found:
        check_address(address, allow_private=allow_private, allowed=allowed)
    return [str(address) for address in found]


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """Resolves, checks, then connects to a checked address (TLS still verifies the name).
    `allowed`: non-public addresses let through all the same (an internal relay)."""

    def __init__(
        self,
        *,
        allow_private: bool,
        allowed: frozenset[Address] = frozenset(),
        dns: DnsCache | None = None,
    ) -> None:
        self._inner = httpcore.AnyIOBackend()
        self._allow_private = allow_private
        self._allowed = allowed
        self._dns = dns

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's signature
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        async with asyncio.timeout(timeout):
            addresses = await resolve(
                host,
                port,
                allow_private=self._allow_private,
                allowed=self._allowed,
                cache=self._dns,
            )
        error: Exception | None = None
        for address in addresses:
            try:
                return await self._inner.connect_tcp(
                    address, port, timeout, local_address, socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                error = exc
        assert error is not None
        raise error

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's signature
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise OutboundBlocked("Unix sockets are not an outbound destination.")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class GuardedTransport(httpx.AsyncHTTPTransport):
    """httpx's own transport (request mapping, errors, pooling) over the guarded backend."""

    def __init__(
        self,
        *,
        allow_private: bool,
        allowed: frozenset[Address] = frozenset(),
        max_connections: int = 100,
        dns: DnsCache | None = None,
    ) -> None:
        super().__init__()
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(),
            max_connections=max_connections,
            max_keepalive_connections=max_connections,
            keepalive_expiry=5.0,
            http1=True,
            http2=False,
            network_backend=GuardedBackend(allow_private=allow_private, allowed=allowed, dns=dns),
        )


def client(
    settings: Settings, *, timeout: float | None = None, max_connections: int = 100
) -> httpx.AsyncClient:
    """The HTTP client for requests to user-chosen or platform addresses. Redirects are
    followed (a few), each new connection checked; no proxy from the environment. Meant to
    be shared (one per worker process and use): its pool keeps connections alive between
    requests, and its DNS cache (DNS_CACHE_SECONDS) spares repeated lookups."""
    seconds = timeout if timeout is not None else settings.publish_request_timeout_seconds
    return httpx.AsyncClient(
        transport=GuardedTransport(
            allow_private=settings.outbound_allow_private_networks,
            max_connections=max_connections,
            dns=DnsCache(DNS_CACHE_SECONDS),
        ),
        timeout=httpx.Timeout(seconds, connect=min(seconds, 10.0)),
        follow_redirects=True,
        max_redirects=3,
        trust_env=False,
        headers={"User-Agent": USER_AGENT},
    )


async def check_url(url: str, *, allow_private: bool, schemes: frozenset[str]) -> str | None:
    """Why `url` cannot be a destination (None when it can): for a clear answer when a
    person enters it, before anything is sent. The connection is checked again each time."""
    parts = urlsplit(url)
    if parts.scheme not in schemes or not parts.hostname:
        return f"Must be an absolute URL starting with {' or '.join(sorted(schemes))}://."
    if parts.username or parts.password:
        return "Must not carry a user name or password; use the secret instead."
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        return "The port is not valid."
    try:
        await resolve(parts.hostname, port, allow_private=allow_private)
    except OutboundBlocked as exc:
        return exc.message
    except httpcore.ConnectError:
        return f"The host {parts.hostname} cannot be resolved."
    return None
