"""Per-principal rate limits: a token bucket in Redis, updated atomically by a Lua script.

Each principal has `limit` tokens per minute, refilled continuously; an operation takes one.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from redis.asyncio import Redis
from redis.exceptions import RedisError

from app.logging import get_logger
from app.settings import Settings

log = get_logger(__name__)

# KEYS[1] bucket; ARGV: capacity, refill per ms, now ms.
# Returns {allowed, remaining, ms until a token, ms until full}.
_SCRIPT = """
local capacity = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local now = tonumber(ARGV[3])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1]) or capacity
local ts = tonumber(state[2]) or now
tokens = math.min(capacity, tokens + math.max(0, now - ts) * rate)
local allowed = 0
if tokens >= 1 then
  tokens = tokens - 1
  allowed = 1
end
redis.call('HSET', KEYS[1], 'tokens', tokens, 'ts', now)
redis.call('PEXPIRE', KEYS[1], math.ceil(capacity / rate) + 1000)
local wait = 0
if allowed == 0 then wait = math.ceil((1 - tokens) / rate) end
return {allowed, math.floor(tokens), wait, math.ceil((capacity - tokens) / rate)}
"""


@dataclass(frozen=True)
class Decision:
    allowed: bool
    limit: int
    remaining: int
    retry_after: int  # seconds until one token is available (0 when allowed)
    reset_at: int  # unix time when the bucket is full again

    def headers(self) -> dict[str, str]:
        headers = {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(self.remaining),
            "X-RateLimit-Reset": str(self.reset_at),
        }
        if not self.allowed:
            headers["Retry-After"] = str(self.retry_after)
        return headers


class RateLimiter:
    def __init__(self, redis: Redis, settings: Settings) -> None:
        self.redis = redis
        self.limits = {
            "anonymous": settings.rate_limit_anonymous,
            "free": settings.rate_limit_free,
            "pro": settings.rate_limit_pro,
            "enterprise": settings.rate_limit_enterprise,
        }
        self._script = redis.register_script(_SCRIPT)

    def limit_for(self, plan: str) -> int:
        return self.limits.get(plan, self.limits["free"])

    async def hit(self, key: str, plan: str) -> Decision:
        limit = self.limit_for(plan)
        rate_per_ms = limit / 60_000
        now_ms = int(time.time() * 1000)
        try:
            allowed, remaining, wait_ms, full_ms = await self._script(
                keys=[f"ratelimit:{key}"], args=[limit, rate_per_ms, now_ms]
            )
        except (RedisError, OSError) as exc:
            # Fail open: an unreachable Redis must not take the API down with it.
            log.warning("rate_limit_unavailable", error=repr(exc))
            return Decision(True, limit, limit, 0, now_ms // 1000)
        return Decision(
            allowed=bool(allowed),
            limit=limit,
            remaining=int(remaining),
            retry_after=math.ceil(int(wait_ms) / 1000),
            reset_at=math.ceil((now_ms + int(full_ms)) / 1000),
        )
