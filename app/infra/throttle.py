"""Brute-force protection for sign-in: per-account and per-IP attempt counters in Redis.

Every attempt is counted *before* the password is checked, in one Lua script that also
checks the locks, so concurrent attempts cannot slip in between the check and the count:
N parallel guesses get no more verifications than N sequential ones. Once an account (or
an IP) reaches `max_failures` counted attempts it is locked for a delay that doubles with
every further one, capped at an hour. An attempt that turns out right is taken back: a
successful sign-in clears the account's counter and refunds its IP attempt (an office
signing in all day behind one address is not locked), and a right password that still
needs its second factor refunds both (the code is the guess then; a wrong code stays
counted).
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass

from redis.asyncio import Redis

from app.errors import RateLimited

WINDOW_SECONDS = 3600
MAX_LOCK_SECONDS = 3600
IP_FACTOR = 4  # many users can share one IP (offices, NAT): allow it more failures

# KEYS: account counter, account lock, IP counter, IP lock.
# ARGV: account limit, IP limit, base lock seconds, max lock seconds, window seconds.
# Returns {ms to wait (0: counted and allowed), account lock set, IP lock set}.
_ATTEMPT = """
local wait = math.max(redis.call('PTTL', KEYS[2]), redis.call('PTTL', KEYS[4]))
if wait > 0 then return {wait, 0, 0} end
local base, cap, window = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local locked = {0, 0}
for i = 1, 2 do
  local counter, lock, limit = KEYS[2 * i - 1], KEYS[2 * i], tonumber(ARGV[i])
  local count = redis.call('INCR', counter)
  if count == 1 then redis.call('EXPIRE', counter, window) end
  if count >= limit then
    local seconds = math.min(base * 2 ^ math.min(count - limit, 30), cap)
    redis.call('SET', lock, '1', 'EX', math.floor(seconds))
    locked[i] = 1
  end
end
return {0, locked[1], locked[2]}
"""

# KEYS as above. ARGV: 1 to clear the account counter (else refund one attempt), whether
# this attempt set the account lock, whether it set the IP lock.
_REFUND = """
local function refund(counter)
  if (tonumber(redis.call('GET', counter)) or 0) > 0 then redis.call('DECR', counter) end
end
if ARGV[1] == '1' then
  redis.call('DEL', KEYS[1], KEYS[2])
else
  refund(KEYS[1])
  if ARGV[2] == '1' then redis.call('DEL', KEYS[2]) end
end
refund(KEYS[3])
if ARGV[3] == '1' then redis.call('DEL', KEYS[4]) end
return 1
"""


def _account_key(email: str) -> str:
    return "throttle:login:acct:" + hashlib.sha256(email.lower().encode()).hexdigest()[:32]


def _ip_key(ip: str | None) -> str:
    return f"throttle:login:ip:{ip or 'unknown'}"


@dataclass(frozen=True)
class Attempt:
    """A counted sign-in attempt, to be taken back if it proves right."""

    email: str
    ip: str | None
    locked_account: bool
    locked_ip: bool

    def keys(self) -> list[str]:
        account, ip = _account_key(self.email), _ip_key(self.ip)
        return [account, account + ":lock", ip, ip + ":lock"]


class LoginThrottle:
    def __init__(self, redis: Redis, max_failures: int, base_lock_seconds: int) -> None:
        self.redis = redis
        self.max_failures = max_failures
        self.base_lock_seconds = base_lock_seconds
        self._attempt = redis.register_script(_ATTEMPT)
        self._refund = redis.register_script(_REFUND)

    async def attempt(self, email: str, ip: str | None) -> Attempt:
        """Count one attempt on the account and the IP, or raise RATE_LIMITED (with
        retryAfter) while either is locked. Call before verifying anything."""
        probe = Attempt(email, ip, False, False)
        wait_ms, locked_account, locked_ip = await self._attempt(
            keys=probe.keys(),
            args=[
                self.max_failures,
                self.max_failures * IP_FACTOR,
                self.base_lock_seconds,
                MAX_LOCK_SECONDS,
                WINDOW_SECONDS,
            ],
        )
        if int(wait_ms) > 0:
            retry_after = math.ceil(int(wait_ms) / 1000)
            raise RateLimited(
                f"Too many failed sign-in attempts. Try again in {retry_after} s.",
                extra={"retryAfter": retry_after},
            )
        return Attempt(email, ip, bool(locked_account), bool(locked_ip))

    async def success(self, attempt: Attempt) -> None:
        """The attempt signed in: clear the account's counter, refund the IP's attempt."""
        await self._release(attempt, clear_account=True)

    async def refund(self, attempt: Attempt) -> None:
        """The attempt was no guess after all (a right password that needs its second
        factor): take it back from both counters."""
        await self._release(attempt, clear_account=False)

    async def _release(self, attempt: Attempt, *, clear_account: bool) -> None:
        await self._refund(
            keys=attempt.keys(),
            args=[
                int(clear_account),
                int(attempt.locked_account),
                int(attempt.locked_ip),
            ],
        )
