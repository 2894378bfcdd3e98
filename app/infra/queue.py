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


async def arq_states(redis: Any, arq_ids: list[str]) -> list[str]:
    """Where each arq job id stands, for the sweepers: 'waiting' (queued in arq, a worker
    will take it), 'missing' (no trace: enqueue it), or 'stale' (an entry arq would
    deduplicate a new enqueue against, but no worker will run)."""
    if not arq_ids:
        return []
    async with redis.pipeline(transaction=False) as pipe:
        for arq_id in arq_ids:
            pipe.exists(job_key_prefix + arq_id)
            pipe.exists(result_key_prefix + arq_id)
            pipe.exists(in_progress_key_prefix + arq_id)
            pipe.zscore(default_queue_name, arq_id)
        replies = await pipe.execute()
    states = []
    for i in range(len(arq_ids)):
        has_job, has_result, in_progress, score = replies[4 * i : 4 * i + 4]
        if not has_job and not has_result:
            states.append("missing")
        elif has_job and score is not None and not has_result and not in_progress:
            states.append("waiting")
        else:
            states.append("stale")
    return states
