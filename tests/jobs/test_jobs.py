"""Job lifecycle: leases, retries, permanent failure, shutdown release, the sweeper."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.applications import Starlette

from app.jobs import runner as job_runner
from app.jobs import store as jobs
from app.jobs.runner import Handler, JobContext, PermanentJobError
from app.models import Job, JobStatus
from workers.tasks import HANDLERS, sweep

CALLS: dict[str, int] = {}


async def _flaky(ctx: JobContext) -> dict[str, Any]:
    """Fails on its first attempt, succeeds on the next."""
    key = str(ctx.job.id)
    CALLS[key] = CALLS.get(key, 0) + 1
    if CALLS[key] == 1:
        raise ConnectionError("provider hiccup")
    return {"calls": CALLS[key]}


async def _broken(ctx: JobContext) -> dict[str, Any]:
    raise PermanentJobError("payload is unusable")


async def _slow(ctx: JobContext) -> dict[str, Any]:
    await asyncio.sleep(30)
    return {}


TEST_HANDLERS: dict[str, Handler] = {
    "test_flaky": _flaky,
    "test_broken": _broken,
    "test_slow": _slow,
}


class Recorder:
    """Collects what the runner publishes, and what it enqueues."""

    def __init__(self) -> None:
        self.published: list[dict[str, Any]] = []
        self.enqueued: list[tuple[str, dict[str, Any]]] = []

    async def publish(self, channel: str, message: dict[str, Any]) -> None:
        self.published.append(message)

    async def enqueue_job(self, function: str, *args: Any, **kwargs: Any) -> Any:
        self.enqueued.append((args[0], kwargs))
        return None


@pytest.fixture
def factory(app: Starlette) -> async_sessionmaker[AsyncSession]:
    return app.state.smartcontent.session_factory  # type: ignore[no-any-return]


async def _new(
    factory: async_sessionmaker[AsyncSession], kind: str, max_attempts: int = 3
) -> uuid.UUID:
    async with factory() as session, session.begin():
        job = jobs.new_job(session, kind, {}, max_attempts, workspace_id=None)
    return job.id


async def _get(factory: async_sessionmaker[AsyncSession], job_id: uuid.UUID) -> Job:
    async with factory() as session:
        row = await session.get(Job, job_id)
        assert row is not None
        return row


async def _run(factory: async_sessionmaker[AsyncSession], job_id: uuid.UUID, rec: Recorder) -> str:
    return await job_runner.run(
        job_id,
        factory=factory,
        publisher=rec,
        enqueuer=rec,
        lease_seconds=60,
        handlers={**HANDLERS, **TEST_HANDLERS},
    )


async def test_a_job_is_claimed_once(factory: async_sessionmaker[AsyncSession]) -> None:
    job_id = await _new(factory, "ping")
    first, second = await asyncio.gather(
        jobs.claim(factory, job_id, 60), jobs.claim(factory, job_id, 60)
    )
    assert [first is None, second is None].count(True) == 1, "exactly one claimant wins"


async def test_failed_attempt_is_retried_with_backoff_then_succeeds(
    factory: async_sessionmaker[AsyncSession],
) -> None:
    rec = Recorder()
    job_id = await _new(factory, "test_flaky")
    assert await _run(factory, job_id, rec) == "retrying"
    row = await _get(factory, job_id)
    assert row.status == JobStatus.QUEUED and row.attempts == 1
    assert "ConnectionError: provider hiccup" in (row.error or "")
    assert row.run_after > row.updated_at.replace(microsecond=0)
    arq_id = rec.enqueued[-1][1]["_job_id"]
    assert arq_id == f"job:{job_id}:1" and rec.enqueued[-1][1]["_defer_by"] == 2.0

    assert await _run(factory, job_id, rec) == "succeeded"
    row = await _get(factory, job_id)
    assert row.status == JobStatus.SUCCEEDED and row.result == {"calls": 2} and row.attempts == 2
    seqs = [m["seq"] for m in rec.published]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    # A duplicate delivery of the finished job does nothing.
    assert await _run(factory, job_id, rec) == "skipped"


async def test_permanent_error_fails_at_once(factory: async_sessionmaker[AsyncSession]) -> None:
    rec = Recorder()
    job_id = await _new(factory, "test_broken")
    assert await _run(factory, job_id, rec) == "failed"
    row = await _get(factory, job_id)
    assert row.status == JobStatus.FAILED and row.error == "payload is unusable"
    assert rec.enqueued == []


async def test_attempts_are_bounded(factory: async_sessionmaker[AsyncSession]) -> None:
    rec = Recorder()
    job_id = await _new(factory, "test_flaky", max_attempts=1)
    assert await _run(factory, job_id, rec) == "failed"
    assert (await _get(factory, job_id)).status == JobStatus.FAILED


async def test_unknown_kind_fails_permanently(factory: async_sessionmaker[AsyncSession]) -> None:
    rec = Recorder()
    job_id = await _new(factory, "no_such_kind")
    assert await _run(factory, job_id, rec) == "failed"
    assert "no handler" in ((await _get(factory, job_id)).error or "")


async def test_cancelled_attempt_hands_the_job_back(
    factory: async_sessionmaker[AsyncSession],
) -> None:
    rec = Recorder()
    job_id = await _new(factory, "test_slow")
    task = asyncio.create_task(_run(factory, job_id, rec))
    for _ in range(100):
        if (await _get(factory, job_id)).status == JobStatus.RUNNING:
            break
        await asyncio.sleep(0.02)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    row = await _get(factory, job_id)
    assert row.status == JobStatus.QUEUED and row.attempts == 0 and row.locked_until is None


async def test_sweeper_requeues_lost_and_stuck_jobs(
    app: Starlette, factory: async_sessionmaker[AsyncSession]
) -> None:
    rec = Recorder()
    lost = await _new(factory, "ping")  # its arq job never reached Redis
    stuck = await _new(factory, "ping")  # its worker died holding the lease
    fresh = await _new(factory, "ping")  # just created: the normal path will run it
    await jobs.claim(factory, stuck, 60)
    async with factory() as session, session.begin():
        await session.execute(
            update(Job).where(Job.id == lost).values(run_after=Job.run_after - jobs_interval(120))
        )
        await session.execute(
            update(Job)
            .where(Job.id == stuck)
            .values(locked_until=Job.locked_until - jobs_interval(3600))
        )
    settings = app.state.smartcontent.settings
    count = await sweep({"session_factory": factory, "redis": rec, "settings": settings})
    assert count == 2
    assert {args for args, _ in rec.enqueued} == {str(lost), str(stuck)}
    keys = {kwargs["_job_id"] for _, kwargs in rec.enqueued}
    assert keys == {f"job:{lost}:0", f"job:{stuck}:1"}
    assert str(fresh) not in {args for args, _ in rec.enqueued}
    # The stuck job's lease expired, so a new attempt may claim it.
    assert await _run(factory, stuck, Recorder()) == "succeeded"


def jobs_interval(seconds: int) -> Any:
    from sqlalchemy import text

    return text(f"interval '{seconds} seconds'")


@pytest.fixture(autouse=True)
def _reset_calls() -> AsyncIterator[None] | None:
    CALLS.clear()
    return None
