"""Dependency checks shared by the `health` query and `/readyz`."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from redis.asyncio import Redis
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app import __version__
from app.logging import get_logger

log = get_logger(__name__)
CHECK_TIMEOUT_SECONDS = 2.0


@dataclass(frozen=True)
class HealthReport:
    database: bool
    redis: bool
    version: str = __version__

    @property
    def ok(self) -> bool:
        return self.database and self.redis

    @property
    def failing(self) -> list[str]:
        return [name for name, ok in (("database", self.database), ("redis", self.redis)) if not ok]


async def _database_ok(factory: async_sessionmaker[AsyncSession]) -> bool:
    try:
        async with asyncio.timeout(CHECK_TIMEOUT_SECONDS), factory() as session:
            return bool((await session.scalar(text("SELECT 1"))) == 1)
    except Exception as exc:
        log.warning("health_database_failed", error=repr(exc))
        return False


async def _redis_ok(redis: Redis) -> bool:
    try:
        async with asyncio.timeout(CHECK_TIMEOUT_SECONDS):
            return bool(await redis.ping())
    except Exception as exc:
        log.warning("health_redis_failed", error=repr(exc))
        return False


async def check(factory: async_sessionmaker[AsyncSession], redis: Redis) -> HealthReport:
    database, redis_ok = await asyncio.gather(_database_ok(factory), _redis_ok(redis))
    return HealthReport(database=database, redis=redis_ok)
