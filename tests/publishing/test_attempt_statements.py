"""An attempt's cost in SQL: two statements (claim with its load, then the outcome), no
explicit transaction; and the batched event publisher of the publish workers."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
from arq import create_pool
from arq.connections import RedisSettings
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from sqlalchemy import event

from app.embedded import free_port
from app.services.publishing import delivery as engine
from app.services.publishing.delivery import Delivery
from app.state import AppState
from tests.conftest import Servers
from tests.publishing.conftest import Team
from tests.publishing.receiver import Receiver
from tests.publishing.steps import due_target, post_node
from workers.runtime import BatchingPublisher


@contextmanager
def sql(state: AppState) -> Iterator[tuple[list[str], list[str]]]:
    """The statements sent, and the transactions begun at the driver (asyncpg's BEGIN)."""
    sync_engine = state.engine.sync_engine
    statements: list[str] = []
    begun: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    def began(conn: Any) -> None:
        # SQLAlchemy reports its own begin() either way; the asyncpg adapter sends BEGIN
        # (lazily, before the first statement) only when not in autocommit mode.
        if not conn.connection.dbapi_connection.autocommit:
            begun.append("BEGIN")

    event.listen(sync_engine, "before_cursor_execute", record)
    event.listen(sync_engine, "begin", began)
    try:
        yield statements, begun
    finally:
        event.remove(sync_engine, "before_cursor_execute", record)
        event.remove(sync_engine, "begin", began)


async def test_an_attempt_is_two_statements_without_a_transaction(
    client: httpx.AsyncClient, state: AppState, team: Team, receiver: Receiver, delivery: Delivery
) -> None:
    post_id, [first, second] = await due_target(client, state, team, receiver.url, accounts=2)
    with sql(state) as (statements, begun):
        assert await engine.run(delivery, first.id, 0) == "published"
    assert len(statements) == 2, statements
    claim, outcome = statements
    assert "UPDATE post_targets" in claim and "RETURNING" in claim and "contents" in claim
    # The first target moves the content SCHEDULED -> PUBLISHED in the same statement.
    assert "UPDATE post_targets" in outcome and "UPDATE contents" in outcome
    assert begun == []
    post = await post_node(client, team, post_id)
    assert post["content"]["status"] == "PUBLISHED"
    # The second target saw the content PUBLISHED already: its outcome leaves it alone.
    with sql(state) as (statements, begun):
        assert await engine.run(delivery, second.id, 0) == "published"
        assert await engine.run(delivery, second.id, 0) == "skipped"  # a duplicate arq job
    assert len(statements) == 3 and "UPDATE contents" not in statements[1]
    assert begun == []
    assert receiver.creations.total() == 2


async def test_batched_events_arrive_in_order_in_one_write(servers: Servers) -> None:
    pool = await create_pool(RedisSettings.from_dsn(servers.redis_url))
    pubsub = pool.pubsub()
    try:
        await pubsub.subscribe("posts:batch-test")
        publisher = BatchingPublisher(pool)

        async def one_target(n: int) -> None:
            for step in range(3):  # one caller's messages keep their order
                await publisher.publish("posts:batch-test", {"n": n, "step": step})

        await asyncio.gather(*(one_target(n) for n in range(20)))
        seen: list[dict[str, int]] = []
        async with asyncio.timeout(10):
            while len(seen) < 60:
                message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1)
                if message is not None:
                    seen.append(json.loads(message["data"]))
        for n in range(20):
            assert [m["step"] for m in seen if m["n"] == n] == [0, 1, 2]
    finally:
        await pubsub.aclose()
        await pool.aclose()


async def test_a_failed_batch_raises_for_each_caller() -> None:
    # A real client of a port nothing listens on: every PUBLISH of the batch fails.
    publisher = BatchingPublisher(Redis(host="127.0.0.1", port=free_port()))
    results = await asyncio.gather(
        *(publisher.publish("posts:x", {"n": n}) for n in range(3)), return_exceptions=True
    )
    assert len(results) == 3 and all(isinstance(r, RedisConnectionError) for r in results)
    with pytest.raises(RedisConnectionError):
        await publisher.publish("posts:x", {"n": 4})
