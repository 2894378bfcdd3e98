"""Publishing has its own arq queue: posts go out while every slot of the jobs queue is
busy, through `serve` (what `smartcontent worker` runs: a worker per queue, one process)."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from arq import create_pool
from arq.connections import RedisSettings
from arq.constants import default_queue_name

from app.infra.queue import PUBLISH_QUEUE, arq_states
from app.jobs import store as jobs
from app.jobs.runner import JobContext
from app.models import PostTarget
from app.services.publishing.delivery import arq_job_id
from app.settings import Settings
from app.state import AppState
from tests.conftest import Servers
from tests.publishing.conftest import Team, approved_content, connect_webhook, schedule, targets_of
from tests.publishing.receiver import Receiver
from workers.runtime import WakingWorker, serve
from workers.settings import publish_worker_settings, worker_settings
from workers.tasks import HANDLERS

BLOCK_KIND = "test_block_queue"
RELEASE = asyncio.Event()
BLOCKED: list[str] = []


async def _block(ctx: JobContext) -> dict[str, Any]:
    BLOCKED.append(str(ctx.job.id))
    await RELEASE.wait()
    return {}


@contextlib.asynccontextmanager
async def both_queues(settings: Settings) -> AsyncIterator[list[WakingWorker]]:
    """`serve` with the jobs queue (one slot, plus the blocking kind) and the publish queue."""
    stop = asyncio.Event()
    workers: list[WakingWorker] = []
    jobs_config = worker_settings(settings, handlers={**HANDLERS, BLOCK_KIND: _block})
    configs = [
        {**jobs_config, "max_jobs": 1, "poll_delay": 0.05},
        {**publish_worker_settings(settings), "poll_delay": 0.05},
    ]
    running = asyncio.create_task(serve(configs, stop_when=stop, started=workers.extend))
    try:
        yield workers
    finally:
        RELEASE.set()
        stop.set()
        async with asyncio.timeout(30):
            await running
        RELEASE.clear()


async def _status(state: AppState, target_id: uuid.UUID) -> str:
    async with state.session_factory() as session:
        row = await session.get(PostTarget, target_id)
        assert row is not None
        return row.status


async def test_a_post_goes_out_while_every_jobs_slot_is_busy(
    pub_settings: Settings,
    servers: Servers,
    state: AppState,
    client: httpx.AsyncClient,
    team: Team,
    receiver: Receiver,
) -> None:
    account = (await connect_webhook(client, team, receiver.url))["account"]["id"]
    content = await approved_content(client, team)
    pool = await create_pool(RedisSettings.from_dsn(servers.redis_url))
    BLOCKED.clear()
    try:
        async with both_queues(pub_settings) as workers:
            # Two blocking jobs: one holds the jobs queue's only slot, one waits behind it.
            held = []
            for _ in range(2):
                async with state.session_factory() as session, session.begin():
                    job = jobs.new_job(session, BLOCK_KIND, {}, 1, workspace_id=None)
                held.append(job.id)
                assert await jobs.enqueue(pool, job.id, 0)
            async with asyncio.timeout(20):
                while not BLOCKED:
                    await asyncio.sleep(0.02)
            payload = await schedule(
                client, team, content, [account], datetime.now(UTC) + timedelta(seconds=1)
            )
            assert payload["errors"] == []
            [target] = await targets_of(state, payload["post"]["id"])
            arq_id = arq_job_id(target.id, 0)
            assert await pool.zscore(PUBLISH_QUEUE, arq_id) is not None
            assert await pool.zscore(default_queue_name, arq_id) is None
            async with asyncio.timeout(20):
                while await _status(state, target.id) != "PUBLISHED":
                    await asyncio.sleep(0.05)
            # Published while the jobs queue was full: the first job still runs, the second
            # still waits for its slot.
            assert [str(held[0])] == BLOCKED and not RELEASE.is_set()
            assert [w.queue_name for w in workers] == [default_queue_name, PUBLISH_QUEUE]
        assert receiver.creations.total() == 1
        # keep_result=0 on the publish queue: nothing of the finished job is left in Redis.
        assert await arq_states(pool, [arq_id], queue_name=PUBLISH_QUEUE) == ["missing"]
    finally:
        await pool.aclose()
