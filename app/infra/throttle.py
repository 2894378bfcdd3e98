"""Brute-force protection for sign-in: per-account and per-IP failure counters in Redis.

After `max_failures` failures the account (or IP) is locked for a delay that doubles with
every further failure, capped at an hour. Success clears the account's counter.
"""

from __future__ import annotations

import hashlib
import math

from redis.asyncio import Redis

from app.errors import RateLimited

WINDOW_SECONDS = 3600
MAX_LOCK_SECONDS = 3600
IP_FACTOR = 4  # many users can share one IP (offices, NAT): allow it more failures


def _account_key(email: str) -> str:
    return "throttle:login:acct:" + hashlib.sha256(email.lower().encode()).hexdigest()[:32]


def _ip_key(ip: str | None) -> str:
    return f"throttle:login:ip:{ip or 'unknown'}"


class LoginThrottle:
    def __init__(self, redis: Redis, max_failures: int, base_lock_seconds: int) -> None:
        self.redis = redis
        self.max_failures = max_failures
        self.base_lock_seconds = base_lock_seconds

    async def check(self, email: str, ip: str | None) -> None:
        """Raise RATE_LIMITED (with retryAfter) while the account or the IP is locked."""
        ttls = [await self.redis.pttl(key + ":lock") for key in (_account_key(email), _ip_key(ip))]
        wait_ms = max(ttls)
        if wait_ms > 0:
            retry_after = math.ceil(wait_ms / 1000)
            raise RateLimited(
                f"Too many failed sign-in attempts. Try again in {retry_after} s.",
                extra={"retryAfter": retry_after},
            )

    async def failure(self, email: str, ip: str | None) -> None:
        for key, limit in (
            (_account_key(email), self.max_failures),
            (_ip_key(ip), self.max_failures * IP_FACTOR),
        ):
            count = int(await self.redis.incr(key))
            if count == 1:
                await self.redis.expire(key, WINDOW_SECONDS)
            if count >= limit:
                lock = min(self.base_lock_seconds * 2 ** (count - limit), MAX_LOCK_SECONDS)
                await self.redis.set(key + ":lock", "1", ex=int(lock))

    async def success(self, email: str) -> None:
        key = _account_key(email)
        await self.redis.delete(key, key + ":lock")
