"""The API's handle on the arq queue, connected lazily so a Redis outage at start-up
does not stop the API from serving (jobs stay QUEUED in Postgres; the sweeper recovers)."""

from __future__ import annotations

import asyncio
from typing import Any

from arq import ArqRedis, create_pool
from arq.connections import RedisSettings
from arq.constants import (
    default_queue_name,
    in_progress_key_prefix,
    job_key_prefix,
    result_key_prefix,
)

# Publishing attempts have an arq queue of their own (workers/settings.py runs a worker on
# each): a burst of generation jobs never delays a post, nor a burst of posts a generation.
PUBLISH_QUEUE = "arq:publish"
# Wakes the publish queue's workers at once for a post due now (`publishNow`, a retry).
PUBLISH_WAKE_CHANNEL = "publish:wake"


class JobQueue:
    def __init__(self, redis_url: str) -> None:
        self._settings = RedisSettings.from_dsn(redis_url)
        self._settings.conn_retries = 0
        self._pool: ArqRedis | None = None
        self._lock = asyncio.Lock()

    async def _get(self) -> ArqRedis:
        if self._pool is None:
            async with self._lock:
                if self._pool is None:
                    self._pool = await create_pool(self._settings)
        return self._pool

    async def enqueue_job(self, function: str, *args: Any, **kwargs: Any) -> Any:
        pool = await self._get()
        return await pool.enqueue_job(function, *args, **kwargs)

    async def publish(self, channel: str, message: str) -> Any:
        """A Redis PUBLISH on the queue's connection (app.jobs.store wakes workers with it)."""
        pool = await self._get()
        return await pool.publish(channel, message)

    async def aclose(self) -> None:
        if self._pool is not None:
            await self._pool.aclose()
            self._pool = None


# Where each id stands, decided inside Redis: one round trip and one short reply for a
# whole batch (the sweepers ask about thousands of ids while a backlog drains; a pipeline
# of four commands per id cost the worker more CPU than the posts it was sweeping for).
# w = waiting (queued, no result, not running), m = missing, s = stale.
_STATES_SCRIPT = """
local out = {}
for i = 4, #ARGV do
  local id = ARGV[i]
  local job = redis.call('EXISTS', ARGV[1] .. id)
  local result = redis.call('EXISTS', ARGV[2] .. id)
  if job == 0 and result == 0 then
    out[#out + 1] = 'm'
  elseif job == 1 and result == 0 and redis.call('EXISTS', ARGV[3] .. id) == 0
      and redis.call('ZSCORE', KEYS[1], id) then
    out[#out + 1] = 'w'
  else
    out[#out + 1] = 's'
  end
end
return table.concat(out)
"""
_STATE_NAMES = {"w": "waiting", "m": "missing", "s": "stale"}
# Ids per script call: each call blocks Redis while it runs (about a microsecond an id).
STATES_CHUNK = 1000


async def arq_states(
    redis: Any, arq_ids: list[str], *, queue_name: str = default_queue_name
) -> list[str]:
    """Where each arq job id of `queue_name` stands, for the sweepers: 'waiting' (queued in
    arq, a worker will take it), 'missing' (no trace: enqueue it), or 'stale' (an entry arq
    would deduplicate a new enqueue against, but no worker will run)."""
    states: list[str] = []
    prefixes = (job_key_prefix, result_key_prefix, in_progress_key_prefix)  # arq's own
    for start in range(0, len(arq_ids), STATES_CHUNK):
        chunk = arq_ids[start : start + STATES_CHUNK]
        reply = await redis.eval(_STATES_SCRIPT, 1, queue_name, *prefixes, *chunk)
        codes = reply.decode() if isinstance(reply, bytes) else str(reply)
        states += [_STATE_NAMES[c] for c in codes]
    return states
