"""What a rate-limit refusal says: the limit that refused, not another one."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from app.infra.ratelimit import OPERATIONS, REJECTED_CREDENTIALS, RateLimiter
from tests.conftest import Servers, make_settings


@pytest.fixture
async def limiter(servers: Servers) -> AsyncIterator[RateLimiter]:
    redis = Redis.from_url(servers.redis_url)
    settings = make_settings(servers, rate_limit_free=50, rate_limit_rejected_credentials=3)
    try:
        yield RateLimiter(redis, settings)
    finally:
        await redis.aclose()


async def test_a_refusal_names_the_limit_that_refused(limiter: RateLimiter) -> None:
    for _ in range(3):
        assert (await limiter.reject("10.9.0.1")).allowed
    over = await limiter.reject("10.9.0.1")
    assert not over.allowed and over.kind == REJECTED_CREDENTIALS and over.limit == 3
    assert "invalid credentials" in over.message() and "limit 3 per minute" in over.message()
    assert "operations" not in over.message()
    # A valid credential from that address is refused by the address's limit, not by the
    # user's 50 operations a minute (which it never touched): that is what it must say.
    gated = await limiter.hit("user:u1", "free", ip="10.9.0.1")
    assert not gated.allowed and gated.kind == REJECTED_CREDENTIALS and gated.limit == 3
    assert gated.headers()["X-RateLimit-Limit"] == "3"
    assert f"for {gated.retry_after} s" in gated.message()
    # Elsewhere the user's own limit applies and is the one named.
    fine = await limiter.hit("user:u1", "free", ip="10.9.0.2")
    assert fine.allowed and fine.kind == OPERATIONS and fine.limit == 50
    for _ in range(60):
        last = await limiter.hit("user:u2", "free")
    assert not last.allowed and last.kind == OPERATIONS
    assert last.message().startswith("Rate limit of 50 operations per minute reached")
