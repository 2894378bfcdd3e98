"""The API's handle on the arq queue, connected lazily so a Redis outage at start-up
does not stop the API from serving (jobs stay QUEUED in Postgres; the sweeper recovers)."""

from __future__ import annotations

import asyncio
from typing import Any

from arq import ArqRedis, create_pool
from arq.connections import RedisSettings


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
