"""Process-wide resources of the API, created in the app's lifespan."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.metrics import Metrics
from app.realtime.hub import EventHub
from app.settings import Settings


@dataclass
class AppState:
    settings: Settings
    engine: AsyncEngine
    session_factory: async_sessionmaker[AsyncSession]
    redis: Redis
    hub: EventHub
    arq: Any  # arq.ArqRedis; typed loosely because arq ships no type hints
    metrics: Metrics
