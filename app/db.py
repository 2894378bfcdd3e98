"""Async SQLAlchemy engine and session factory."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from sqlalchemy import event
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import ConnectionPoolEntry

from app.settings import Settings

_RETURNED_AT = "smartcontent_returned_at"
HNSW_EF_SEARCH = 100  # candidates per HNSW scan: recall against speed (see bench/README.md)


def asyncpg_url(url: str) -> str:
    """Normalise any postgres:// URL to the asyncpg dialect SQLAlchemy expects."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(scheme="postgresql+asyncpg"))


def plain_pg_url(url: str) -> str:
    """The same URL for libpq-style clients (asyncpg.connect, psql)."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(scheme="postgresql"))


def create_engine(
    url: str, settings: Settings, *, application_name: str = "smartcontent"
) -> AsyncEngine:
    engine = create_async_engine(
        asyncpg_url(url),
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        # Pinged on checkout only after being idle (see _ping_when_idle), not every time.
        pool_pre_ping=False,
        pool_recycle=1800,
        pool_timeout=settings.db_pool_timeout_seconds,
        connect_args={
            "timeout": settings.db_connect_timeout_seconds,
            "server_settings": {
                "application_name": application_name,
                # Filtered HNSW scans (one workspace among many) keep searching until enough
                # rows pass the filter (pgvector >= 0.8 iterative scans) instead of returning
                # too few. Set per connection, so a search needs no transaction to SET LOCAL.
                "hnsw.ef_search": str(HNSW_EF_SEARCH),
                "hnsw.iterative_scan": "relaxed_order",
            },
            "command_timeout": 60,
        },
    )
    _ping_when_idle(engine, settings.db_ping_idle_seconds)
    return engine


def _ping_when_idle(engine: AsyncEngine, idle_seconds: float) -> None:
    """Check a pooled connection before use only if it sat idle for `idle_seconds`.

    SQLAlchemy's `pool_pre_ping` pings on every checkout, and with asyncpg a ping is three
    round trips (BEGIN, `;`, ROLLBACK): for a page whose loaders take five connections that
    was fifteen round trips. A connection back from a request a moment ago is alive; one
    that waited may have been dropped by a Postgres restart, a failover or an idle timeout
    in between, and is replaced here before a request sees the error.
    """
    pool = engine.sync_engine

    @event.listens_for(pool, "checkin")
    def _returned(dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
        record.info[_RETURNED_AT] = time.monotonic()

    @event.listens_for(pool, "checkout")
    def _check(dbapi_connection: Any, record: ConnectionPoolEntry, proxy: Any) -> None:
        returned = record.info.get(_RETURNED_AT)
        if returned is None or time.monotonic() - returned < idle_seconds:
            return  # new, or busy a moment ago
        try:
            dbapi_connection.ping()
        except Exception as exc:
            # The pool discards this connection and checks out another (up to 3 tries).
            raise DisconnectionError("pooled connection is gone") from exc


def create_session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)


def create_read_session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions for reads that need no transaction: each statement runs on its own
    (autocommit), which saves the BEGIN and ROLLBACK round trips of a default session.

    Only single-statement writes may go through them: nothing makes two statements atomic.
    """
    return async_sessionmaker(
        engine.execution_options(isolation_level="AUTOCOMMIT"),
        expire_on_commit=False,
        autoflush=False,
    )


@asynccontextmanager
async def transaction(factory: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    """A short session that commits on success and rolls back on any error."""
    async with factory() as session, session.begin():
        yield session
