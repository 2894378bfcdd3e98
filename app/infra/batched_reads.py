"""Reads by key for a whole process, batched: every read asked for while no statement is
running joins the next one, ONE statement for all the keys asked about.

The streams that answer each event from Postgres (postStatusChanged,
socialAccountStatusChanged, performanceUpdated, generationProgress's catch-ups) use it so
that N subscribers woken by one event cost one statement, not N. A read always starts
after it was asked for, so it sees every change committed before it was asked (the
jobs' StoredReads in app/jobs/events.py is one of them).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

from app.infra.realtime import WakeSlicer

# A fan-out wakes its subscribers a slice per loop iteration (WakeSlicer), and a slice can
# start mid-way through a fan-out (the slicer's count runs on across messages): a batch
# waits until one iteration brings no new reader, at most this many iterations.
SETTLE_ITERATIONS = 16

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class BatchedReads(Generic[K, V]):
    """`read(key)` through `read_many(keys)`; a key absent from its answer reads None.

    Each reader has its own future (one leaving cancels only its own), and a batch's
    readers are woken in slices (`WakeSlicer`): a thousand readers of one key do not all
    run in one loop iteration. Callers share the value they get: it must not be mutated."""

    def __init__(self, read_many: Callable[[list[K]], Awaitable[dict[K, V]]], name: str) -> None:
        self._read_many = read_many
        self._name = name
        self._wanted: dict[K, list[asyncio.Future[V | None]]] = {}
        self._task: asyncio.Task[None] | None = None
        self._slicer = WakeSlicer()
        self._asked = 0  # reads asked for, ever: tells a settling batch whether more came
        self.statements = 0  # batches read and answered (for tests and benches)

    async def read(self, key: K) -> V | None:
        waiter: asyncio.Future[V | None] = asyncio.get_running_loop().create_future()
        self._wanted.setdefault(key, []).append(waiter)
        self._asked += 1
        if self._task is None:
            self._task = asyncio.create_task(self._flush(), name=self._name)
        return await waiter

    async def _flush(self) -> None:
        batch: dict[K, list[asyncio.Future[V | None]]] = {}
        try:
            while self._wanted:
                await self._settle()
                batch, self._wanted = self._wanted, {}
                try:
                    found = await self._read_many(list(batch))
                except Exception as exc:
                    for waiters in batch.values():
                        for waiter in waiters:
                            if not waiter.done():
                                waiter.set_exception(exc)
                                waiter.exception()  # raised to its reader; else not logged
                                await self._slicer.woke()
                    continue
                self.statements += 1
                for key, waiters in batch.items():
                    value = found.get(key)
                    for waiter in waiters:
                        if not waiter.done():
                            waiter.set_result(value)
                            await self._slicer.woke()
        finally:
            self._task = None
            for waiters in (*batch.values(), *self._wanted.values()):
                for waiter in waiters:
                    waiter.cancel()  # only still pending if this task was cancelled

    async def _settle(self) -> None:
        """Readers woken by the same fan-out join this batch (one statement for all of
        them, not one per slice); costs one loop iteration when nobody else is coming."""
        for _ in range(SETTLE_ITERATIONS):
            asked = self._asked
            await asyncio.sleep(0)
            if self._asked == asked:
                return
