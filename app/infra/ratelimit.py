"""Per-principal rate limits: a token bucket in Redis, updated atomically by a Lua script.

Each principal has `limit` tokens per minute, refilled continuously; an operation takes one.

Redis holds the buckets every API process shares, but a request does not wait for it: each
process keeps a mirror of the buckets it used in the last MIRROR_SECONDS (the level Redis
answered, refilled by the same formula) and decides from it, sending the tokens it took
to Redis in one pipeline at most every SYNC_SECONDS, whose answers correct the mirror.
A bucket not used for MIRROR_SECONDS is asked (and its unsent tokens taken) before the
decision, as is every bucket of an address that presented a rejected credential. One
process therefore answers exactly as Redis would; several may together admit, past a
limit, what they took in the last SYNC_SECONDS before they heard of each other's takes.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from dataclasses import dataclass

from redis.asyncio import Redis
from redis.exceptions import RedisError

from app.logging import get_logger
from app.settings import Settings

log = get_logger(__name__)

MIRROR_SECONDS = 1.0
SYNC_SECONDS = 0.05
MAX_MIRRORS = 50_000

# KEYS[1] bucket; ARGV: capacity, refill per ms, now ms, tokens already taken (by this
# process's mirror: taken whatever the level), 1 to take one more if there is one.
# KEYS[2], optional, a gate: a bucket that must not be empty (looked at, never taken from);
# ARGV[6], ARGV[7] its capacity and refill per ms.
# Returns {allowed, remaining, ms until a token, ms until full, 1 if the gate refused,
# the level left (a string: Lua numbers become integers), the gate's level or ''}.
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
local taken = tonumber(ARGV[4])
local take = tonumber(ARGV[5])
local gate = ''
local tokens = level(KEYS[1], capacity, rate, now) - taken
if KEYS[2] then
  local gate_rate = tonumber(ARGV[7])
  gate = level(KEYS[2], tonumber(ARGV[6]), gate_rate, now)
  if take == 1 and gate < 1 then
    take = 0
    if taken > 0 then
      redis.call('HSET', KEYS[1], 'tokens', tokens, 'ts', now)
      redis.call('PEXPIRE', KEYS[1], math.ceil(capacity / rate) + 1000)
    end
    local wait = math.ceil((1 - gate) / gate_rate)
    return {0, 0, wait, wait, 1, tostring(tokens), tostring(gate)}
  end
  gate = tostring(gate)
end
local allowed = 0
if take == 1 and tokens >= 1 then
  tokens = tokens - 1
  allowed = 1
end
redis.call('HSET', KEYS[1], 'tokens', tokens, 'ts', now)
redis.call('PEXPIRE', KEYS[1], math.ceil(capacity / rate) + 1000)
local wait = 0
if allowed == 0 then wait = math.ceil((1 - tokens) / rate) end
return {allowed, math.floor(tokens), wait, math.ceil((capacity - tokens) / rate), 0,
  tostring(tokens), gate}
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


@dataclass(slots=True)
class _Mirror:
    """A bucket as this process knows it: its level at `ts_ms` (after every token this
    process took), `unsent` of those tokens not yet taken in Redis."""

    tokens: float
    ts_ms: int
    fresh_until: float  # time.monotonic(): trusted until then without asking Redis
    unsent: int = 0

    def level(self, capacity: int, rate_per_ms: float, now_ms: int) -> float:
        return min(capacity, self.tokens + max(0, now_ms - self.ts_ms) * rate_per_ms)


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
        self._mirrors: dict[str, _Mirror] = {}
        self._limits_of: dict[str, int] = {}  # each mirrored bucket's limit, for the sync
        self._sync: asyncio.Task[None] | None = None

    def limit_for(self, plan: str) -> int:
        return self.limits.get(plan, self.limits["free"])

    async def hit(self, key: str, plan: str, *, ip: str | None = None) -> Decision:
        """Take one operation from `key`'s bucket. With `ip` (a request that presented a
        credential), refuse while that address is over its limit of rejected credentials,
        so a guesser learns nothing, not even from a right guess."""
        bucket, limit = f"ratelimit:{key}", self.limit_for(plan)
        gate = None if ip is None else _rejected_key(ip)
        now_ms = int(time.time() * 1000)
        decision = self._local(bucket, limit, gate, now_ms)
        if decision is not None:
            return decision
        return await self._take(bucket, limit, gate, OPERATIONS, now_ms)

    async def reject(self, ip: str | None) -> Decision:
        """Count a rejected credential (a guess, see AuthenticationFailed.guess) against its
        address; not allowed once the address is over the limit. Always asks Redis."""
        return await self._take(
            _rejected_key(ip),
            self.rejected_credentials,
            None,
            REJECTED_CREDENTIALS,
            int(time.time() * 1000),
        )

    def _local(self, bucket: str, limit: int, gate: str | None, now_ms: int) -> Decision | None:
        """The decision from the mirror, or None when Redis must be asked first."""
        mirror = self._mirrors.get(bucket)
        now = time.monotonic()
        if mirror is None or mirror.fresh_until < now or self._limits_of.get(bucket) != limit:
            return None
        if gate is not None:
            seen = self._mirrors.get(gate)
            gate_limit = self.rejected_credentials
            if (
                seen is None
                or seen.fresh_until < now
                or seen.level(gate_limit, gate_limit / 60_000, now_ms) < 1
            ):
                return None
        rate_per_ms = limit / 60_000
        tokens = mirror.level(limit, rate_per_ms, now_ms)
        allowed = tokens >= 1
        if allowed:
            tokens -= 1
            mirror.unsent += 1
            self._schedule_sync()
        mirror.tokens, mirror.ts_ms = tokens, now_ms
        wait_ms = 0 if allowed else math.ceil((1 - tokens) / rate_per_ms)
        return Decision(
            allowed=allowed,
            limit=limit,
            remaining=math.floor(tokens),
            retry_after=math.ceil(wait_ms / 1000),
            reset_at=math.ceil((now_ms + math.ceil((limit - tokens) / rate_per_ms)) / 1000),
        )

    async def _take(
        self, bucket: str, limit: int, gate: str | None, kind: str, now_ms: int
    ) -> Decision:
        rate_per_ms = limit / 60_000
        mirror = self._mirrors.get(bucket)
        unsent = 0
        if mirror is not None:  # sent with this call (a sync running now leaves them)
            unsent, mirror.unsent = mirror.unsent, 0
        keys = [bucket]
        args: list[float] = [limit, rate_per_ms, now_ms, unsent, 1]
        if gate is not None:
            keys.append(gate)
            args += [self.rejected_credentials, self.rejected_credentials / 60_000]
        try:
            answer = await self._script(keys=keys, args=args)
        except (RedisError, OSError) as exc:
            # Fail open: an unreachable Redis must not take the API down with it.
            log.warning("rate_limit_unavailable", error=repr(exc))
            if mirror is not None:
                mirror.unsent += unsent
            return Decision(True, limit, limit, 0, now_ms // 1000, kind)
        allowed, remaining, wait_ms, full_ms, gated, level, gate_level = answer
        self._mirror(bucket, limit, float(level), now_ms)
        if gate is not None and gate_level:
            self._mirror(gate, self.rejected_credentials, float(gate_level), now_ms)
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

    def _mirror(self, bucket: str, limit: int, level: float, now_ms: int) -> None:
        """What Redis answered for `bucket` at `now_ms`, less what this process took since."""
        mirror = self._mirrors.get(bucket)
        fresh_until = time.monotonic() + MIRROR_SECONDS
        if mirror is None:
            if len(self._mirrors) >= MAX_MIRRORS:
                self._forget()
            self._mirrors[bucket] = _Mirror(level, now_ms, fresh_until)
        else:
            mirror.tokens, mirror.ts_ms = level - mirror.unsent, now_ms
            mirror.fresh_until = fresh_until
        self._limits_of[bucket] = limit

    def _schedule_sync(self) -> None:
        if self._sync is None:
            self._sync = asyncio.get_running_loop().create_task(self._sync_while_taken())

    async def _sync_while_taken(self) -> None:
        try:
            while any(m.unsent for m in self._mirrors.values()):
                await asyncio.sleep(SYNC_SECONDS)  # one pipeline for what comes meanwhile
                await self._send()
        finally:
            self._sync = None

    async def aclose(self) -> None:
        """Send what the mirrors took (at shutdown)."""
        if self._sync is not None:
            self._sync.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sync
        await self._send()

    async def _send(self) -> None:
        """Take in Redis, in one pipeline, the tokens the mirrors took; adopt its levels."""
        taken = [(b, m.unsent) for b, m in self._mirrors.items() if m.unsent > 0]
        if not taken:
            return
        now_ms = int(time.time() * 1000)
        for bucket, count in taken:
            self._mirrors[bucket].unsent -= count
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                for bucket, count in taken:
                    limit = self._limits_of[bucket]
                    args = [limit, limit / 60_000, now_ms, count, 0]
                    await self._script(keys=[bucket], args=args, client=pipe)
                answers = await pipe.execute()
        except (RedisError, OSError) as exc:
            log.warning("rate_limit_unavailable", error=repr(exc))
            for bucket, count in taken:  # sent with the next sync or decision
                if (mirror := self._mirrors.get(bucket)) is not None:
                    mirror.unsent += count
            return
        for (bucket, _), answer in zip(taken, answers, strict=True):
            if bucket in self._mirrors:
                self._mirror(bucket, self._limits_of[bucket], float(answer[5]), now_ms)

    def _forget(self) -> None:
        """Drop mirrors Redis no longer needs to hear about (bounded memory)."""
        now = time.monotonic()
        for bucket in [b for b, m in self._mirrors.items() if m.fresh_until < now and not m.unsent]:
            del self._mirrors[bucket]
            self._limits_of.pop(bucket, None)


def _rejected_key(ip: str | None) -> str:
    return f"ratelimit:rejected:{ip or 'unknown'}"
