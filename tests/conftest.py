"""Test fixtures: real Postgres (pgvector) and Redis, embedded unless TEST_*_URL are set.

Each pytest(-xdist) worker gets its own database, created fresh and migrated with Alembic
once per session. Each test starts from empty tables and an empty Redis database.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx
import pytest
from arq.worker import Worker
from redis.asyncio import Redis
from starlette.applications import Starlette

from app.asgi import create_app
from app.db import plain_pg_url
from app.embedded import EmbeddedPostgres, EmbeddedRedis, with_database
from app.migrate import upgrade_head
from app.models import Base
from app.settings import Settings
from workers.settings import worker_settings

ROOT = Path(__file__).resolve().parent.parent
# Separate checkouts or concurrent runs can each point this at their own directory.
_TEST_BASE = Path(os.environ.get("SMARTCONTENT_TEST_DATA", ROOT / ".smartcontent" / "test"))
# Each pytest-xdist worker runs its own embedded Postgres and Redis in a directory of its own.
_XDIST_WORKER = os.environ.get("PYTEST_XDIST_WORKER")
TEST_DATA = _TEST_BASE / _XDIST_WORKER if _XDIST_WORKER else _TEST_BASE


@dataclass(frozen=True)
class Servers:
    database_url: str
    redis_url: str


async def _recreate_database(admin_url: str, name: str) -> None:
    conn = await asyncpg.connect(plain_pg_url(admin_url))
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


async def _drop_database(admin_url: str, name: str) -> None:
    conn = await asyncpg.connect(plain_pg_url(admin_url))
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


@asynccontextmanager
async def fresh_database(servers: Servers, purpose: str) -> AsyncIterator[str]:
    """An empty database of this xdist worker's server, for tests that migrate one
    themselves (downgrades); its URL, and it is dropped afterwards."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    name = f"smartcontent_{purpose}_{worker}"
    await _recreate_database(servers.database_url, name)
    try:
        yield urlunsplit(urlsplit(servers.database_url)._replace(path=f"/{name}"))
    finally:
        await _drop_database(servers.database_url, name)


def _redis_database_of_worker(url: str, worker_id: str) -> str:
    """An external TEST_REDIS_URL is flushed before every test: each xdist worker takes the
    database after the given one by its number (gw0: /15, gw1: /16 for .../15)."""
    parts = urlsplit(url)
    base = int(parts.path.strip("/") or 0)
    return urlunsplit(parts._replace(path=f"/{base + int(worker_id.removeprefix('gw') or 0)}"))


@pytest.fixture(scope="session")
def servers() -> Iterator[Servers]:
    worker_id = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    pg: EmbeddedPostgres | None = None
    redis: EmbeddedRedis | None = None
    admin_url = os.environ.get("TEST_DATABASE_URL")
    redis_url = os.environ.get("TEST_REDIS_URL")
    try:
        if not admin_url:
            pg = EmbeddedPostgres(TEST_DATA)
            admin_url = pg.start()
        name = f"smartcontent_test_{worker_id}"
        asyncio.run(_recreate_database(admin_url, name))
        database_url = with_database(admin_url, name)
        upgrade_head(database_url)
        if not redis_url:
            redis = EmbeddedRedis(TEST_DATA / worker_id)
            redis_url = redis.start()
        elif _XDIST_WORKER:
            redis_url = _redis_database_of_worker(redis_url, worker_id)
        yield Servers(database_url=database_url, redis_url=redis_url)
    finally:
        if redis is not None:
            redis.stop()
        if pg is not None:
            pg.stop()


def make_settings(servers: Servers, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "environment": "test",
        "database_url": servers.database_url,
        "redis_url": servers.redis_url,
        "log_level": "WARNING",
        "log_json": False,
        "cors_origins": ["https://app.example.com"],
        "ws_connection_init_timeout_seconds": 1.0,
        "ws_max_subscriptions": 3,
        "db_pool_size": 5,
        "secret_key": "test-secret-key-that-is-long-enough-0123456789",
        "mailer": "memory",
        "media_dir": TEST_DATA / "media",
        "data_dir": TEST_DATA,
        # High enough that ordinary tests never trip them; rate-limit tests lower them.
        "rate_limit_anonymous": 100_000,
        "rate_limit_free": 100_000,
        "rate_limit_rejected_credentials": 100_000,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@pytest.fixture(scope="session")
def settings(servers: Servers) -> Settings:
    return make_settings(servers)


@asynccontextmanager
async def running_app(settings: Settings) -> AsyncIterator[Starlette]:
    """An app with its lifespan entered (what uvicorn does at start and stop)."""
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        yield app


@pytest.fixture(scope="session")
async def app(settings: Settings) -> AsyncIterator[Starlette]:
    async with running_app(settings) as app:
        yield app


@pytest.fixture(autouse=True)
async def clean_state(request: pytest.FixtureRequest, servers: Servers) -> AsyncIterator[None]:
    """Empty every table and the Redis database before each test."""
    if "no_db" in request.keywords:
        yield
        return
    tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    conn = await asyncpg.connect(plain_pg_url(servers.database_url))
    try:
        await conn.execute(f"TRUNCATE {tables} RESTART IDENTITY CASCADE")
    finally:
        await conn.close()
    redis = Redis.from_url(servers.redis_url)
    try:
        await redis.flushdb()
    finally:
        await redis.aclose()
    yield


@pytest.fixture
async def client(app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client


@pytest.fixture
async def worker(settings: Settings) -> AsyncIterator[Worker]:
    """A real arq worker consuming the test Redis, in this process and event loop."""
    kwargs = worker_settings(settings)
    kwargs.update(handle_signals=False, poll_delay=0.05)
    arq_worker = Worker(**kwargs)
    task = asyncio.create_task(arq_worker.async_run())
    try:
        yield arq_worker
    finally:
        await stop_worker(arq_worker, task)


async def stop_worker(worker: Worker, task: asyncio.Task[None], drain: float = 30) -> None:
    """Stop an in-process worker. A test ends as soon as it sees a job's row final, while arq
    may still be finishing that job in Redis; `close()` would cancel it there and raise
    CancelledError. So stop taking jobs and let those running end first (bounded)."""
    worker.allow_pick_jobs = False
    with suppress(TimeoutError):
        async with asyncio.timeout(drain):
            while any(not t.done() for t in worker.tasks.values()):
                await asyncio.sleep(0.01)
    await worker.close()
    task.cancel()
    with suppress(asyncio.CancelledError, Exception):
        await task
