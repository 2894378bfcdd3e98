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
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

import httpcore
import httpx

from app.settings import Settings

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
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


async def resolve(
    host: str, port: int, *, allow_private: bool, allowed: frozenset[Address] = frozenset()
) -> list[str]:
    """The addresses `host` resolves to, each checked; refused if any is not public (a
    name that also points inside the network is not trusted with the public one)."""
    try:
        literal: Address | None = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        literal = None
    if literal is not None:
        check_address(literal, allow_private=allow_private, allowed=allowed)
        return [str(literal)]
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise httpcore.ConnectError(f"cannot resolve {host}") from exc
    addresses: list[str] = []
    for _family, _type, _proto, _canon, sockaddr in infos:
        address = ipaddress.ip_address(sockaddr[0])
        check_address(address, allow_private=allow_private, allowed=allowed)
        if str(address) not in addresses:
            addresses.append(str(address))
    if not addresses:
        raise httpcore.ConnectError(f"cannot resolve {host}")
    return addresses


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """Resolves, checks, then connects to a checked address (TLS still verifies the name).
    `allowed`: non-public addresses let through all the same (an internal relay)."""

    def __init__(self, *, allow_private: bool, allowed: frozenset[Address] = frozenset()) -> None:
        self._inner = httpcore.AnyIOBackend()
        self._allow_private = allow_private
        self._allowed = allowed

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
                host, port, allow_private=self._allow_private, allowed=self._allowed
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
    ) -> None:
        super().__init__()
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(),
            max_connections=max_connections,
            max_keepalive_connections=max_connections,
            keepalive_expiry=5.0,
            http1=True,
            http2=False,
            network_backend=GuardedBackend(allow_private=allow_private, allowed=allowed),
        )


def client(
    settings: Settings, *, timeout: float | None = None, max_connections: int = 100
) -> httpx.AsyncClient:
    """The HTTP client for requests to user-chosen or platform addresses. Redirects are
    followed (a few), each new connection checked; no proxy from the environment."""
    seconds = timeout if timeout is not None else settings.publish_request_timeout_seconds
    return httpx.AsyncClient(
        transport=GuardedTransport(
            allow_private=settings.outbound_allow_private_networks,
            max_connections=max_connections,
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
