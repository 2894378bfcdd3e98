"""DataLoaders of A/B tests: tests (with their arms) by id, and their results, each one
statement for every test an operation touches."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from strawberry.dataloader import DataLoader

from app.services.analytics import ab_test_results, ab_tests

if TYPE_CHECKING:
    from app.state import AppState


class AbTestLoaders:
    def __init__(self, state: AppState) -> None:
        self.state = state
        self.tests: DataLoader[uuid.UUID, ab_tests.LoadedTest | None] = DataLoader(
            load_fn=self._tests
        )
        self.results: DataLoader[uuid.UUID, ab_test_results.Results | None] = DataLoader(
            load_fn=self._results
        )

    async def _tests(self, ids: Sequence[uuid.UUID]) -> list[ab_tests.LoadedTest | None]:
        async with self.state.read_session_factory() as session:
            found = await ab_tests.load_many(session, ids)
        return [found.get(i) for i in ids]

    async def _results(self, ids: Sequence[uuid.UUID]) -> list[ab_test_results.Results | None]:
        # One `now` for the batch: every running test of the operation ends at the same time.
        async with self.state.read_session_factory() as session:
            found = await ab_test_results.results_for(session, ids, datetime.now(UTC))
        return [found.get(i) for i in ids]
