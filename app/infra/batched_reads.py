"""Reads by key for a whole process, batched: every read asked for while no statement is
running joins the next one, ONE statement for all the keys asked about.

The streams that answer each event from Postgres (postStatusChanged,
socialAccountStatusChanged, performanceUpdated, generationProgress's catch-ups) use it so
that N subscribers woken by one event cost one statement, not N. A read always starts
after it was asked for, so it sees every change committed before it was asked (the same
rule as app/jobs/events.py StoredReads).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class BatchedReads(Generic[K, V]):
    """`read(key)` through `read_many(keys)`; a key absent from its answer reads None.

    Callers share the value they get: it must not be mutated."""

    def __init__(self, read_many: Callable[[list[K]], Awaitable[dict[K, V]]], name: str) -> None:
        self._read_many = read_many
        self._name = name
        self._wanted: dict[K, asyncio.Future[V | None]] = {}
        self._task: asyncio.Task[None] | None = None
        self.statements = 0  # batches read and answered (for tests and benches)

    async def read(self, key: K) -> V | None:
        wanted = self._wanted.get(key)
        if wanted is None:
            wanted = self._wanted[key] = asyncio.get_running_loop().create_future()
            if self._task is None:
                self._task = asyncio.create_task(self._flush(), name=self._name)
        # Shielded: one reader leaving must not cancel the others' answer.
        return await asyncio.shield(wanted)

    async def _flush(self) -> None:
        batch: dict[K, asyncio.Future[V | None]] = {}
        try:
            while self._wanted:
                batch, self._wanted = self._wanted, {}
                try:
                    found = await self._read_many(list(batch))
                except Exception as exc:
                    for wanted in batch.values():
                        if not wanted.done():
                            wanted.set_exception(exc)
                            wanted.exception()  # raised to whoever awaits it; else not logged
                    continue
                self.statements += 1
                for key, wanted in batch.items():
                    if not wanted.done():
                        wanted.set_result(found.get(key))
        finally:
            self._task = None
            for wanted in (*batch.values(), *self._wanted.values()):
                wanted.cancel()  # only still pending if this task was cancelled
