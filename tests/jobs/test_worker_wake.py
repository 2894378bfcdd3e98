"""WakingWorker (what `smartcontent worker` runs) starts a job as soon as it is enqueued, and
the next queued one as soon as a slot frees, not at its next poll: the poll period here is
far longer than the tests wait, so only a wake-up can make them pass."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
from starlette.applications import Starlette

from app.models import Job
from app.settings import Settings
from tests.conftest import stop_worker
from tests.helpers import create_workspace, ping, register
from tests.teams import state_of, uid
from workers.runtime import WakingWorker
from workers.settings import worker_settings

POLL_SECONDS = 5.0  # the fallback poll; each test must finish well before a second one


async def _start(settings: Settings, max_jobs: int) -> tuple[WakingWorker, asyncio.Task[None]]:
    kwargs = worker_settings(settings)
    kwargs.update(handle_signals=False, poll_delay=POLL_SECONDS, max_jobs=max_jobs)
    worker = WakingWorker(**kwargs)
    task = asyncio.create_task(worker.async_run())
    await asyncio.wait_for(worker.listening.wait(), 30)
    return worker, task


@pytest.fixture
async def waking(settings: Settings) -> AsyncIterator[WakingWorker]:
    worker, task = await _start(settings, max_jobs=1)
    # The first poll ran at start with nothing queued; the next one is POLL_SECONDS away.
    try:
        yield worker
    finally:
        await stop_worker(worker, task)


async def _finished(app: Starlette, job_ids: list[uuid.UUID]) -> list[str]:
    factory = state_of(app).session_factory
    async with asyncio.timeout(POLL_SECONDS * 0.8):  # a poll would come too late
        while True:
            async with factory() as session:
                rows = [await session.get(Job, job_id) for job_id in job_ids]
            if all(row is not None and row.finished_at is not None for row in rows):
                return [row.status for row in rows if row is not None]
            await asyncio.sleep(0.02)


async def test_an_enqueued_job_starts_at_once_and_the_next_when_a_slot_frees(
    app: Starlette, client: httpx.AsyncClient, waking: WakingWorker
) -> None:
    owner = await register(client)
    workspace = await create_workspace(client, owner)
    # One slot: the second job waits for the first, then starts when it ends.
    first = (await ping(client, owner, workspace, "one", delay_ms=200))["job"]["id"]
    second = (await ping(client, owner, workspace, "two"))["job"]["id"]
    assert await _finished(app, [uid(first), uid(second)]) == ["SUCCEEDED", "SUCCEEDED"]
