"""A probe of the event loop's iterations, for tests that bound the work one iteration
does (how many subscribers it wakes) structurally, not by wall time."""

from __future__ import annotations

import asyncio
from collections import Counter
from types import TracebackType


class LoopTicks:
    """Counts the event loop's iterations while entered: a callback that reschedules
    itself runs exactly once per iteration (asyncio runs only the callbacks that were
    ready when the iteration began, and polls its sockets before each)."""

    def __init__(self) -> None:
        self.count = 0
        self.seen: Counter[int] = Counter()
        self._handle: asyncio.Handle | None = None

    def mark(self) -> None:
        """Note one wake-up in the current iteration."""
        self.seen[self.count] += 1

    @property
    def busiest(self) -> int:
        """The most wake-ups noted in one iteration."""
        return max(self.seen.values(), default=0)

    def _tick(self) -> None:
        self.count += 1
        self._handle = asyncio.get_running_loop().call_soon(self._tick)

    def __enter__(self) -> LoopTicks:
        self._handle = asyncio.get_running_loop().call_soon(self._tick)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._handle is not None:
            self._handle.cancel()
