"""The sharing of subscription results without a server (schema.shared_events): which
event types take part, and the bounded, short-lived cache of results."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import strawberry
from graphql import ExecutionResult, GraphQLError
from strawberry.types.base import get_object_definition

from app.infra.realtime import WAKE_SLICE
from schema.shared_events import (
    AUDITED,
    SharedData,
    SharedResults,
    reachable_resolvers,
    shareable_type,
)
from schema.types.ai import GenerationProgress
from schema.types.analytics.performance import PerformanceUpdate
from schema.types.jobs import JobEvent, WorkspaceEvent
from schema.types.publishing.account_events import SocialAccountStatusChange
from schema.types.publishing.posts import PostStatusChange
from tests.loop_probe import LoopTicks

# Every event type whose results are shared.
SHARED_TYPES = (
    JobEvent,
    WorkspaceEvent,
    PostStatusChange,
    SocialAccountStatusChange,
    PerformanceUpdate,
    GenerationProgress,
)


def test_audited_fields_are_exactly_those_reachable() -> None:
    reachable: set[tuple[str, str]] = set()
    for cls in SHARED_TYPES:
        definition = get_object_definition(cls)
        assert definition is not None
        found = reachable_resolvers(definition)
        assert found is not None
        reachable |= found
    assert reachable == set(AUDITED)
    assert all(shareable_type(cls) for cls in SHARED_TYPES)


@strawberry.type
class Mine:
    @strawberry.field
    def secret(self) -> str:
        return "depends on the caller"


@strawberry.type
class Leaky:
    value: int
    mine: Mine

    def shared_key(self) -> int:
        return self.value


@strawberry.type
class Plain:  # no shared_key: not an event type that takes part
    value: int


def test_an_unaudited_resolver_is_not_shared() -> None:
    assert not shareable_type(Leaky)
    assert not shareable_type(Plain)


def _event(value: int) -> WorkspaceEvent:
    return WorkspaceEvent(snapshot=bool(value), truncated=False, jobs=[])


def _ok(value: int) -> ExecutionResult:
    return ExecutionResult({"x": value}, None)


async def test_a_result_with_errors_is_not_shared() -> None:
    results = SharedResults()
    operation: Any = object()
    calls: list[int] = []

    def failing() -> ExecutionResult:
        calls.append(1)
        return ExecutionResult({"x": None}, [GraphQLError("boom")])

    for _ in range(3):
        result = results.execute("k", _event(1), operation, failing)
        assert result.errors
    assert len(calls) == 3 and len(results) == 0


async def test_concurrent_subscribers_wait_for_one_execution() -> None:
    results = SharedResults()
    operation: Any = object()
    started = asyncio.Event()
    release = asyncio.Event()
    calls: list[int] = []

    async def slow() -> ExecutionResult:
        calls.append(1)
        started.set()
        await release.wait()
        return _ok(1)

    async def one() -> Any:
        return await results.execute("k", _event(1), operation, slow)

    owner = asyncio.create_task(one())
    await started.wait()
    waiters = [asyncio.create_task(one()) for _ in range(5)]
    await asyncio.sleep(0)
    owner.cancel()  # the first subscriber leaves: the others still get the result
    release.set()
    done = await asyncio.gather(*waiters)
    assert len(calls) == 1
    assert all(isinstance(r.data, SharedData) and r.data == {"x": 1} for r in done)
    assert len({id(r) for r in done}) == 5, "each subscriber gets its own result object"
    with pytest.raises(asyncio.CancelledError):
        await owner


async def test_entries_are_bounded_and_short_lived() -> None:
    results = SharedResults(max_entries=4, seconds=0.05)
    operation: Any = object()
    for value in range(10):
        results.execute(value, _event(value), operation, lambda v=value: _ok(v))  # type: ignore[misc]
    assert len(results) == 4
    other: Any = object()
    assert results.execute(9, _event(9), other, lambda: _ok(-1)).data == {"x": -1}, (
        "another operation never reuses a result"
    )
    assert results.execute(8, _event(0), operation, lambda: _ok(-2)).data == {"x": -2}, (
        "an unequal event never reuses a result"
    )
    await asyncio.sleep(0.06)
    results.execute("late", _event(1), operation, lambda: _ok(0))
    assert len(results) == 1, "expired entries are dropped"


async def test_waiting_subscribers_are_woken_a_slice_per_loop_iteration() -> None:
    """1,000 subscribers waiting on one running selection get its result WAKE_SLICE per
    loop iteration (the loop polls its sockets in between), the owner first; a failure
    goes to the owner, and the others run the selection themselves."""
    results = SharedResults()
    operation: Any = object()
    release = asyncio.Event()

    async def slow() -> ExecutionResult:
        await release.wait()
        return _ok(1)

    with LoopTicks() as ticks:

        async def one() -> Any:
            result = await results.execute("k", _event(1), operation, slow)
            ticks.mark()
            return result

        tasks = [asyncio.create_task(one()) for _ in range(1000)]
        await asyncio.sleep(0)
        release.set()
        done = await asyncio.gather(*tasks)
    assert all(r.data == {"x": 1} for r in done)
    assert ticks.busiest <= WAKE_SLICE, f"{ticks.busiest} woken in one loop iteration"
    assert results.stats.executed == 1 and results.stats.shared == 999

    calls: list[int] = []

    async def broken() -> ExecutionResult:
        calls.append(1)
        await asyncio.sleep(0)
        if len(calls) == 1:
            raise RuntimeError("boom")
        return _ok(2)

    owner = asyncio.create_task(results.execute("f", _event(2), operation, broken))
    await asyncio.sleep(0)
    others = [asyncio.create_task(results.execute("f", _event(2), operation, broken))]
    with pytest.raises(RuntimeError):
        await owner
    assert (await others[0]).data == {"x": 2} and len(calls) == 2
