"""The embedded servers `make dev` and the tests start."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import redis

from app.embedded import EmbeddedRedis

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
