"""The outbound guard's DNS cache: lookups are kept briefly, the verdict never is."""

from __future__ import annotations

import asyncio
import ipaddress

import httpcore
import pytest

from app.infra import outbound
from app.infra.outbound import Address, DnsCache, OutboundBlocked

PUBLIC = ipaddress.ip_address("93.184.215.14")
LOOPBACK = ipaddress.ip_address("127.0.0.1")


class Resolver:
    """Answers from a table (what a name points to can change between calls); counts calls."""

    def __init__(self, answers: dict[str, list[Address]]) -> None:
        self.answers = answers
        self.calls: list[str] = []
        self.gate: asyncio.Event | None = None

    async def __call__(self, host: str, port: int) -> list[Address]:
        self.calls.append(host)
        if self.gate is not None:
            await self.gate.wait()
        if host not in self.answers:
            raise httpcore.ConnectError(f"cannot resolve {host}")
        return list(self.answers[host])


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_a_name_is_looked_up_once_within_the_ttl_and_again_after() -> None:
    resolver, clock = Resolver({"api.example": [PUBLIC]}), Clock()
    cache = DnsCache(10.0, lookup=resolver, clock=clock)
    for _ in range(3):
        found = await outbound.resolve("api.example", 443, allow_private=False, cache=cache)
        assert found == [str(PUBLIC)]
    assert resolver.calls == ["api.example"]
    clock.now += 10.5
    await outbound.resolve("api.example", 443, allow_private=False, cache=cache)
    assert resolver.calls == ["api.example", "api.example"]


async def test_a_cached_private_answer_is_refused_every_time() -> None:
    resolver = Resolver({"inside.example": [LOOPBACK]})
    cache = DnsCache(10.0, lookup=resolver, clock=Clock())
    for _ in range(2):
        with pytest.raises(OutboundBlocked, match="private"):
            await outbound.resolve("inside.example", 80, allow_private=False, cache=cache)
    assert resolver.calls == ["inside.example"]
    # The same cached answer, where private networks are allowed (development).
    assert await outbound.resolve("inside.example", 80, allow_private=True, cache=cache) == [
        "127.0.0.1"
    ]


async def test_after_expiry_a_name_that_moved_inside_is_refused() -> None:
    resolver, clock = Resolver({"moving.example": [PUBLIC]}), Clock()
    cache = DnsCache(5.0, lookup=resolver, clock=clock)
    await outbound.resolve("moving.example", 443, allow_private=False, cache=cache)
    resolver.answers["moving.example"] = [LOOPBACK]  # rebinding
    clock.now += 6
    with pytest.raises(OutboundBlocked):
        await outbound.resolve("moving.example", 443, allow_private=False, cache=cache)


async def test_failures_are_not_kept_and_concurrent_lookups_share_one_call() -> None:
    resolver = Resolver({})
    cache = DnsCache(10.0, lookup=resolver, clock=Clock())
    with pytest.raises(httpcore.ConnectError):
        await cache.resolve("late.example", 443)
    resolver.answers["late.example"] = [PUBLIC]
    resolver.gate = asyncio.Event()
    waiting = [asyncio.create_task(cache.resolve("late.example", 443)) for _ in range(5)]
    await asyncio.sleep(0)
    resolver.gate.set()
    assert await asyncio.gather(*waiting) == [[PUBLIC]] * 5
    assert resolver.calls == ["late.example", "late.example"]  # the failure, then one call


async def test_the_cache_stays_bounded() -> None:
    resolver = Resolver({f"h{i}.example": [PUBLIC] for i in range(10)})
    cache = DnsCache(10.0, max_entries=4, lookup=resolver, clock=Clock())
    for i in range(10):
        await cache.resolve(f"h{i}.example", 443)
    assert len(cache._entries) <= 4
    await cache.resolve("h9.example", 443)  # the newest is still there
    assert resolver.calls.count("h9.example") == 1


async def test_the_real_resolver_answers_for_localhost() -> None:
    cache = DnsCache(10.0)
    found = await outbound.resolve("localhost", 80, allow_private=True, cache=cache)
    assert "127.0.0.1" in found or "::1" in found
    with pytest.raises(OutboundBlocked):
        await outbound.resolve("localhost", 80, allow_private=False, cache=cache)
