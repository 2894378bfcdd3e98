"""The Streamer's delta batching: the first chunk of a stage goes out at once, chunks that
arrive within AI_DELTA_BATCH_SECONDS go out together as the next numbered delta, a stage
change sends what waits under the old stage's name, and the stored text so far always
matches the deltas published (what late subscribers rely on)."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.applications import Starlette

from app.jobs import store as jobs
from app.jobs.runner import JobContext
from app.models import Generation
from app.services.ai import following, generation
from app.services.ai.generation import GenerateRequest
from app.services.ai.progress import Streamer
from tests.ai.test_generation import Collector, owner_in_workspace
from tests.conftest import Servers, make_settings
from tests.teams import state_of


async def _streamer(
    app: Starlette,
    client: httpx.AsyncClient,
    servers: Servers,
    batch_seconds: float,
    *,
    frozen: bool = False,
) -> tuple[Streamer, Collector, async_sessionmaker[AsyncSession], uuid.UUID]:
    """A streamer for a claimed generation job; `frozen`: its clock stands still, so no slot
    ever comes by itself (the test decides when chunks go out)."""
    state = state_of(app)
    principal, workspace_id = await owner_in_workspace(client)
    job = await generation.start_generation(
        state, principal, GenerateRequest(workspace_id=workspace_id, brief="Tea")
    )
    row = await jobs.claim(state.session_factory, job.id, 60)
    assert row is not None
    collector = Collector()
    settings = make_settings(servers, ai_delta_batch_seconds=batch_seconds)
    ctx = JobContext(job=row, factory=state.session_factory, publisher=collector, settings=settings)
    generation_id = uuid.UUID(row.payload["generation_id"])
    streamer = Streamer(ctx, generation_id, clock=(lambda: 1000.0) if frozen else time.monotonic)
    return streamer, collector, state.session_factory, generation_id


def _deltas(collector: Collector) -> list[tuple[int, str, str]]:
    return [
        (m["delta"]["index"], m["delta"]["stage"], m["delta"]["text"])
        for m in collector.messages
        if "delta" in m
    ]


async def _partial(factory: async_sessionmaker[AsyncSession], generation_id: uuid.UUID) -> Any:
    async with factory() as session:
        record = await session.get(Generation, generation_id)
    assert record is not None
    return record.partial


async def test_chunks_within_the_window_go_out_together_after_the_first(
    app: Starlette, client: httpx.AsyncClient, servers: Servers
) -> None:
    streamer, collector, factory, generation_id = await _streamer(
        app, client, servers, 2, frozen=True
    )
    await streamer.begin("draft", None, 0.0)
    for chunk in ("Title: Tea\n\n", "Green ", "tea."):
        await streamer.delta(chunk)
    assert _deltas(collector) == [(1, "draft", "Title: Tea\n\n")], "the first at once, then held"
    early = await _partial(factory, generation_id)
    assert (early["index"], early["text"]) == (1, "Title: Tea\n\n"), "stored as it went out"
    await streamer.flush(force=True)  # the stage's end: what waits goes out, then is stored
    assert _deltas(collector) == [(1, "draft", "Title: Tea\n\n"), (2, "draft", "Green tea.")]
    partial = await _partial(factory, generation_id)
    assert (partial["index"], partial["stage"]) == (2, "draft")
    assert partial["text"] == "Title: Tea\n\nGreen tea."


async def test_a_held_chunk_goes_out_when_its_slot_comes(
    app: Starlette, client: httpx.AsyncClient, servers: Servers
) -> None:
    streamer, collector, _factory, _generation_id = await _streamer(app, client, servers, 0.01)
    await streamer.begin("draft", None, 0.0)
    await streamer.delta("one ")
    await streamer.delta("two")  # right after the first: waits for the timer, not a next chunk
    async with asyncio.timeout(30):  # bounds a broken run only
        while len(_deltas(collector)) < 2:
            await asyncio.sleep(0.005)
    assert _deltas(collector) == [(1, "draft", "one "), (2, "draft", "two")]


async def test_a_stage_change_sends_what_waits_under_the_old_stage(
    app: Starlette, client: httpx.AsyncClient, servers: Servers
) -> None:
    streamer, collector, factory, generation_id = await _streamer(
        app, client, servers, 2, frozen=True
    )
    await streamer.begin("draft", None, 0.0)
    await streamer.delta("a")
    await streamer.delta("b")
    await streamer.begin("variation", 0, 0.5)
    await streamer.delta("c")  # the first chunk of the new stage: at once
    assert _deltas(collector) == [(1, "draft", "a"), (2, "draft", "b"), (3, "variation", "c")]
    partial = await _partial(factory, generation_id)
    # A stage's first deltas are stored as they go out (for subscribers arriving just then).
    assert (partial["index"], partial["stage"], partial["text"]) == (3, "variation", "c")


async def test_no_batching_publishes_every_chunk(
    app: Starlette, client: httpx.AsyncClient, servers: Servers
) -> None:
    streamer, collector, _factory, _generation_id = await _streamer(app, client, servers, 0)
    await streamer.begin("draft", None, 0.0)
    for chunk in ("a", "b", "c"):
        await streamer.delta(chunk)
    assert [d[2] for d in _deltas(collector)] == ["a", "b", "c"]


async def test_a_late_subscriber_gets_every_finished_stage_then_the_current_one(
    app: Starlette, client: httpx.AsyncClient, servers: Servers
) -> None:
    """Joining after a stage ended (its last deltas published before the subscription),
    the subscriber still gets that stage's whole text, then the current stage so far."""
    state = state_of(app)
    principal, workspace_id = await owner_in_workspace(client)
    job = await generation.start_generation(
        state, principal, GenerateRequest(workspace_id=workspace_id, brief="Tea")
    )
    row = await jobs.claim(state.session_factory, job.id, 60)
    assert row is not None
    settings = make_settings(servers, ai_delta_batch_seconds=0)
    ctx = JobContext(
        job=row, factory=state.session_factory, publisher=Collector(), settings=settings
    )
    streamer = Streamer(ctx, uuid.UUID(row.payload["generation_id"]))
    await streamer.begin("draft", None, 0.0)
    for chunk in ("Title: Tea\n\n", "Green ", "tea."):
        await streamer.delta(chunk)
    await streamer.begin("variation", 0, 0.5)
    await streamer.delta("Tea, ")
    await streamer.delta("thread.")
    await streamer.flush(force=True)

    stream = following.follow(
        state.session_factory, state.hub, principal, job.id, generation.GENERATION_KINDS
    )
    try:
        first, second = await anext(stream), await anext(stream)
    finally:
        await stream.aclose()
    assert (first.catch_up, first.stage, first.variation_index, first.text) == (
        True,
        "draft",
        None,
        "Title: Tea\n\nGreen tea.",
    )
    assert (second.catch_up, second.stage, second.variation_index, second.text) == (
        True,
        "variation",
        0,
        "Tea, thread.",
    )
