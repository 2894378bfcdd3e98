"""The rate limiter decides from its mirror of the Redis buckets without a round trip, and
answers as Redis alone would (app/infra/ratelimit.py)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from app.infra import ratelimit
from app.infra.ratelimit import RateLimiter
from tests.conftest import Servers, make_settings


@pytest.fixture
async def redis(servers: Servers) -> AsyncIterator[Redis]:
    client = Redis.from_url(servers.redis_url)
    try:
        yield client
    finally:
        await client.aclose()


def _limiter(redis: Redis, servers: Servers, limit: int = 10) -> RateLimiter:
    return RateLimiter(redis, make_settings(servers, rate_limit_free=limit))


class _Counting:
    """Counts the script calls a limiter makes (round trips for a decision)."""

    def __init__(self, limiter: RateLimiter) -> None:
        self.calls = 0
        script = limiter._script

        async def counted(**kwargs: object) -> object:
            if "client" not in kwargs:
                self.calls += 1
            return await script(**kwargs)  # type: ignore[arg-type]

        limiter._script = counted  # type: ignore[assignment]


async def test_one_round_trip_then_the_same_answers_as_redis(
    redis: Redis, servers: Servers
) -> None:
    mirrored, plain = _limiter(redis, servers), _limiter(redis, servers)
    counting = _Counting(mirrored)
    answers = [await mirrored.hit("user:m", "free") for _ in range(12)]
    assert counting.calls == 1
    assert [d.remaining for d in answers] == [9, 8, 7, 6, 5, 4, 3, 2, 1, 0, 0, 0]
    assert [d.allowed for d in answers] == [True] * 10 + [False] * 2
    assert answers[-1].retry_after == 6 and answers[0].headers()["X-RateLimit-Limit"] == "10"
    # What it took reached Redis: a limiter without a mirror of that bucket sees it empty.
    await asyncio.sleep(ratelimit.SYNC_SECONDS * 4)
    fresh = await plain.hit("user:m", "free")
    assert not fresh.allowed and fresh.remaining == 0
    # And a bucket it had not seen costs it a round trip.
    await mirrored.hit("user:other", "free")
    assert counting.calls == 2


async def test_two_processes_share_the_limit(redis: Redis, servers: Servers) -> None:
    one, two = _limiter(redis, servers, 20), _limiter(redis, servers, 20)
    allowed = 0
    for _ in range(15):  # interleaved, slower than the sync: each hears the other's takes
        for limiter in (one, two):
            allowed += (await limiter.hit("user:shared", "free")).allowed
        await asyncio.sleep(ratelimit.SYNC_SECONDS * 1.5)
    assert 20 <= allowed <= 21  # the 20 a minute (plus at most the refill meanwhile)


async def test_an_address_guessing_elsewhere_is_refused_here_within_the_mirror_time(
    redis: Redis, servers: Servers, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ratelimit, "MIRROR_SECONDS", 0.2)
    settings = make_settings(servers, rate_limit_free=100, rate_limit_rejected_credentials=2)
    here, there = RateLimiter(redis, settings), RateLimiter(redis, settings)
    assert (await here.hit("user:g", "free", ip="198.51.100.7")).allowed
    for _ in range(3):
        await there.reject("198.51.100.7")
    await asyncio.sleep(0.25)
    refused = await here.hit("user:g", "free", ip="198.51.100.7")
    assert not refused.allowed and refused.kind == ratelimit.REJECTED_CREDENTIALS
    # Refusals in this process are seen at once.
    assert not (await there.hit("user:h", "free", ip="198.51.100.7")).allowed
