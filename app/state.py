"""Process-wide resources of the API, created in the app's lifespan."""

from __future__ import annotations

from dataclasses import dataclass

from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.infra.mailer import Mailer
from app.infra.queue import JobQueue
from app.infra.ratelimit import RateLimiter
from app.infra.realtime import EventHub
from app.infra.storage import Storage
from app.infra.throttle import LoginThrottle
from app.metrics import Metrics
from app.security.keys import Keys
from app.settings import Settings


@dataclass
class AppState:
    settings: Settings
    engine: AsyncEngine
    session_factory: async_sessionmaker[AsyncSession]
    # Autocommit sessions for hot read paths (see app.db.create_read_session_factory).
    read_session_factory: async_sessionmaker[AsyncSession]
    redis: Redis
    hub: EventHub
    arq: JobQueue
    metrics: Metrics
    keys: Keys
    mailer: Mailer
    login_throttle: LoginThrottle
    rate_limiter: RateLimiter
    storage: Storage
