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
# KEYS[2], optional, a gate: a bucket that must not be empty (looked at, never taken from);
# ARGV[4], ARGV[5] its capacity and refill per ms.
# Returns {allowed, remaining, ms until a token, ms until full, 1 if the gate refused}.
_SCRIPT = """
local function level(key, capacity, rate, now)
  local state = redis.call('HMGET', key, 'tokens', 'ts')
  local tokens = tonumber(state[1]) or capacity
  local ts = tonumber(state[2]) or now
  return math.min(capacity, tokens + math.max(0, now - ts) * rate)
end
local capacity = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local now = tonumber(ARGV[3])
if KEYS[2] then
  local gate_rate = tonumber(ARGV[5])
  local gate = level(KEYS[2], tonumber(ARGV[4]), gate_rate, now)
  if gate < 1 then
    local wait = math.ceil((1 - gate) / gate_rate)
    return {0, 0, wait, wait, 1}
  end
end
local tokens = level(KEYS[1], capacity, rate, now)
local allowed = 0
if tokens >= 1 then
  tokens = tokens - 1
  allowed = 1
end
redis.call('HSET', KEYS[1], 'tokens', tokens, 'ts', now)
redis.call('PEXPIRE', KEYS[1], math.ceil(capacity / rate) + 1000)
local wait = 0
if allowed == 0 then wait = math.ceil((1 - tokens) / rate) end
return {allowed, math.floor(tokens), wait, math.ceil((capacity - tokens) / rate), 0}
"""

OPERATIONS = "operations"
REJECTED_CREDENTIALS = "rejected_credentials"


@dataclass(frozen=True)
class Decision:
    allowed: bool
    limit: int
    remaining: int
    retry_after: int  # seconds until one token is available (0 when allowed)
    reset_at: int  # unix time when the bucket is full again
    # Which limit this is: OPERATIONS (the principal's), or REJECTED_CREDENTIALS (the
    # address's, when it refused the request); `limit` is that limit's.
    kind: str = OPERATIONS

    def message(self) -> str:
        """What to tell a refused caller: the limit that refused them."""
        if self.kind == REJECTED_CREDENTIALS:
            return (
                f"Too many invalid credentials from this address (limit {self.limit} per "
                f"minute); requests with credentials are refused for {self.retry_after} s."
            )
        return (
            f"Rate limit of {self.limit} operations per minute reached; retry in "
            f"{self.retry_after} s."
        )

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
        self.rejected_credentials = settings.rate_limit_rejected_credentials
        self._script = redis.register_script(_SCRIPT)

    def limit_for(self, plan: str) -> int:
        return self.limits.get(plan, self.limits["free"])

    async def hit(self, key: str, plan: str, *, ip: str | None = None) -> Decision:
        """Take one operation from `key`'s bucket. With `ip` (a request that presented a
        credential), refuse while that address is over its limit of rejected credentials,
        so a guesser learns nothing, not even from a right guess."""
        gate = None if ip is None else _rejected_key(ip)
        return await self._take(f"ratelimit:{key}", self.limit_for(plan), gate, OPERATIONS)

    async def reject(self, ip: str | None) -> Decision:
        """Count a rejected credential (a guess, see AuthenticationFailed.guess) against its
        address; not allowed once the address is over the limit."""
        return await self._take(
            _rejected_key(ip), self.rejected_credentials, None, REJECTED_CREDENTIALS
        )

    async def _take(self, bucket: str, limit: int, gate: str | None, kind: str) -> Decision:
        rate_per_ms = limit / 60_000
        now_ms = int(time.time() * 1000)
        keys = [bucket]
        args: list[float] = [limit, rate_per_ms, now_ms]
        if gate is not None:
            keys.append(gate)
            args += [self.rejected_credentials, self.rejected_credentials / 60_000]
        try:
            allowed, remaining, wait_ms, full_ms, gated = await self._script(keys=keys, args=args)
        except (RedisError, OSError) as exc:
            # Fail open: an unreachable Redis must not take the API down with it.
            log.warning("rate_limit_unavailable", error=repr(exc))
            return Decision(True, limit, limit, 0, now_ms // 1000, kind)
        if int(gated):  # refused by the address's rejected-credentials limit, not `limit`
            limit, kind = self.rejected_credentials, REJECTED_CREDENTIALS
        return Decision(
            allowed=bool(allowed),
            limit=limit,
            remaining=int(remaining),
            retry_after=math.ceil(int(wait_ms) / 1000),
            reset_at=math.ceil((now_ms + int(full_ms)) / 1000),
            kind=kind,
        )


def _rejected_key(ip: str | None) -> str:
    return f"ratelimit:rejected:{ip or 'unknown'}"
