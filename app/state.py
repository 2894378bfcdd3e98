"""Process-wide resources of the API, created in the app's lifespan."""

from __future__ import annotations

from dataclasses import dataclass

from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.metrics import Metrics
from app.queue import JobQueue
from app.realtime.hub import EventHub
from app.security.keys import Keys
from app.services.mailer import Mailer
from app.services.ratelimit import RateLimiter
from app.services.throttle import LoginThrottle
from app.settings import Settings
from app.storage import Storage


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
