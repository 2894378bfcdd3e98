"""The embedded servers `make dev` and the tests start."""

from __future__ import annotations

import time
from pathlib import Path

import asyncpg
import pytest
import redis

from app.embedded import EmbeddedRedis
from tests.conftest import Servers, fresh_database

pytestmark = [pytest.mark.slow, pytest.mark.no_db]


def test_embedded_redis_is_ready_only_once_its_data_is_loaded(tmp_path: Path) -> None:
    """Redis accepts connections while it loads its append-only file and answers LOADING to
    everything; start() must return only when it answers commands."""
    server = EmbeddedRedis(tmp_path)
    client = redis.Redis.from_url(server.start())
    try:
        client.execute_command("DEBUG", "POPULATE", "1000000", "key", "64")
        client.bgrewriteaof()
        time.sleep(0.2)
        while client.info("persistence")["aof_rewrite_in_progress"]:
            time.sleep(0.05)
    finally:
        client.close()
        server.stop()
    restarted = EmbeddedRedis(tmp_path)
    client = redis.Redis.from_url(restarted.start())
    try:
        assert client.ping() is True  # not BusyLoadingError
        assert client.dbsize() == 1_000_000
    finally:
        client.close()
        restarted.stop()


async def test_pgvector_hnsw_builds_and_searches_on_this_cpu(servers: Servers) -> None:
    """The wheel's vector.so was built with -march=native on an AVX-512 machine: elsewhere an
    HNSW index past a few hundred rows killed Postgres with SIGILL. `make` rebuilds it
    portably (scripts/portable_pgvector.sh); this grows and searches one well past that."""
    async with fresh_database(servers, "hnsw") as url:
        conn = await asyncpg.connect(url)
        try:
            await conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
            await conn.execute("CREATE TABLE points (id int PRIMARY KEY, v vector(16))")
            await conn.execute("CREATE INDEX ON points USING hnsw (v vector_cosine_ops)")
            # Scattered, repeatable points: sin(i * k) made near-duplicate clusters (i, i + 710,
            # ...) in which the approximate index could miss the query point itself.
            await conn.execute(
                "INSERT INTO points SELECT i, (SELECT array_agg((hashint4(i * 16 + k) & 1023)"
                " / 1023.0 - 0.5)::vector(16) FROM generate_series(1, 16) k)"
                " FROM generate_series(1, 3000) i"
            )
            await conn.execute("SET enable_seqscan = off")
            nearest = await conn.fetch(
                "SELECT id FROM points ORDER BY v <=> (SELECT v FROM points WHERE id = 42) LIMIT 5"
            )
        finally:
            await conn.close()
    assert len(nearest) == 5
    assert nearest[0]["id"] == 42
