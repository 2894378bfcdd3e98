"""BatchedReads: the readers woken by one fan-out share one statement even though the
fan-out wakes them a slice per loop iteration, and a slice boundary can fall anywhere
(the slicer's count runs on across messages: CI once split 16 followers 10 + 6)."""

from __future__ import annotations

import asyncio

import pytest

from app.infra.batched_reads import SETTLE_ITERATIONS, BatchedReads
from app.infra.realtime import Subscription, WakeSlicer


async def _fan_out(count: int, charged: int) -> tuple[BatchedReads[int, str], list[str | None]]:
    asked: list[list[int]] = []

    async def read_many(keys: list[int]) -> dict[int, str]:
        asked.append(keys)
        await asyncio.sleep(0)  # a statement's round trip
        return {key: f"row {key}" for key in keys}

    reads: BatchedReads[int, str] = BatchedReads(read_many, "test-reads")
    subscriptions = [Subscription("channel", 8) for _ in range(count)]

    async def follower(index: int, sub: Subscription) -> str | None:
        await sub.get()
        return await reads.read(index % 3)

    followers = [asyncio.create_task(follower(i, s)) for i, s in enumerate(subscriptions)]
    await asyncio.sleep(0)  # every follower is waiting on its queue
    slicer = WakeSlicer(per_iteration=100)
    for _ in range(100 - charged):
        await slicer.woke()  # earlier messages used most of the slice
    await slicer.offer(subscriptions, {"n": 1})
    return reads, list(await asyncio.gather(*followers))


@pytest.mark.parametrize(("count", "charged"), [(16, 10), (16, 100), (1_000, 37)])
async def test_one_fan_out_is_one_statement(count: int, charged: int) -> None:
    reads, answers = await _fan_out(count, charged)
    assert answers == [f"row {i % 3}" for i in range(count)]
    assert reads.statements == 1


async def test_a_steady_stream_of_readers_is_still_read() -> None:
    """A batch does not wait for ever while readers keep coming: at most
    SETTLE_ITERATIONS loop iterations."""
    statements: list[int] = []

    async def read_many(keys: list[int]) -> dict[int, int]:
        statements.append(len(keys))
        return {key: key for key in keys}

    reads: BatchedReads[int, int] = BatchedReads(read_many, "test-reads")
    readers = []
    for i in range(SETTLE_ITERATIONS * 3):
        readers.append(asyncio.create_task(reads.read(i)))
        await asyncio.sleep(0)
    assert await asyncio.gather(*readers) == list(range(SETTLE_ITERATIONS * 3))
    assert 2 <= len(statements) <= 4
