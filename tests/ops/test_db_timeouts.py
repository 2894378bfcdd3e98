"""A database that never answers must not hang a request: connect and pool timeouts."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest
import sqlalchemy.exc
from sqlalchemy import text

from app.db import create_engine
from app.settings import Settings
from tests.conftest import Servers, make_settings


@pytest.fixture
async def black_hole() -> AsyncIterator[int]:
    """A TCP port that accepts connections and never says a word (a black-holed host)."""
    held: list[asyncio.StreamWriter] = []

    async def accept(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    yield port
    for writer in held:
        writer.close()
    server.close()
    await server.wait_closed()


async def test_connect_gives_up_after_the_connect_timeout(
    black_hole: int, settings: Settings
) -> None:
    quick = settings.model_copy(update={"db_connect_timeout_seconds": 0.3})
    engine = create_engine(f"postgresql://u:p@127.0.0.1:{black_hole}/db", quick)
    started = time.monotonic()
    try:
        # The outer bound only keeps a broken build from hanging the suite (asyncpg's own
        # default is 60 s); the connect timeout must end it long before.
        with pytest.raises((TimeoutError, sqlalchemy.exc.DBAPIError)):
            async with asyncio.timeout(20):
                async with engine.connect() as connection:
                    await connection.execute(text("SELECT 1"))
        assert time.monotonic() - started < 15
    finally:
        await engine.dispose()


async def test_a_request_waits_at_most_the_pool_timeout(servers: Servers) -> None:
    tight = make_settings(servers, db_pool_size=1, db_max_overflow=0, db_pool_timeout_seconds=0.2)
    assert tight.database_url is not None
    engine = create_engine(tight.database_url, tight)
    try:
        async with engine.connect() as held:
            await held.execute(text("SELECT 1"))
            started = time.monotonic()
            with pytest.raises(sqlalchemy.exc.TimeoutError):
                async with engine.connect() as second:
                    await second.execute(text("SELECT 1"))
            assert time.monotonic() - started < 10  # SQLAlchemy's default would be 30 s
    finally:
        await engine.dispose()
