"""Job lifecycle: leases and heartbeats, attempts, timeouts, retries, shutdown release, and
the sweeper (its own timer, its advisory lock, stale arq entries).

Longer than 400 lines because the job lifecycle (claims, leases, heartbeats, retries,
timeouts, the sweeper) is one state machine exercised with shared fixtures.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from arq import ArqRedis, create_pool
from arq.connections import RedisSettings
from arq.constants import in_progress_key_prefix, result_key_prefix
from arq.worker import Worker
from sqlalchemy import func, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.applications import Starlette

from app.jobs import runner as job_runner
from app.jobs import store as jobs
from app.jobs import sweeper
from app.jobs.runner import Handler, JobContext, PermanentJobError
from app.models import Job, JobStatus
from app.settings import Settings
from tests.conftest import Servers, make_settings, stop_worker
from workers.settings import worker_settings
from workers.tasks import HANDLERS, sweep

CALLS: dict[str, int] = {}
# Per-test signals between a handler and its test, created fresh for each test.
STARTED: dict[str, asyncio.Event] = {}
RELEASE: dict[str, asyncio.Event] = {}
CANCELLED: dict[str, asyncio.Event] = {}


def _event(table: dict[str, asyncio.Event], key: str) -> asyncio.Event:
    return table.setdefault(key, asyncio.Event())


async def _flaky(ctx: JobContext) -> dict[str, Any]:
    """Fails on its first attempt, succeeds on the next."""
    key = str(ctx.job.id)
    CALLS[key] = CALLS.get(key, 0) + 1
    if CALLS[key] == 1:
        await ctx.progress(0.7, "most of the way")
        raise ConnectionError("provider hiccup")
    return {"calls": CALLS[key]}


async def _broken(ctx: JobContext) -> dict[str, Any]:
    raise PermanentJobError("payload is unusable")


async def _blocked(ctx: JobContext) -> dict[str, Any]:
    """Runs until its test releases it; notes when it is cancelled."""
    key = str(ctx.job.id)
    _event(STARTED, key).set()
    try:
        await _event(RELEASE, key).wait()
    except asyncio.CancelledError:
        _event(CANCELLED, key).set()
        raise
    return {"released": True}


async def _stubborn(ctx: JobContext) -> dict[str, Any]:
    """Ignores the first cancellation (a handler with a bug), finishes when released."""
    key = str(ctx.job.id)
    _event(STARTED, key).set()
    try:
        await _event(RELEASE, key).wait()
    except asyncio.CancelledError:
        _event(CANCELLED, key).set()
        await _event(RELEASE, key).wait()
    return {}


TEST_HANDLERS: dict[str, Handler] = {
    "test_flaky": _flaky,
    "test_broken": _broken,
    "test_blocked": _blocked,
    "test_stubborn": _stubborn,
}


class Recorder:
    """Collects what the runner publishes, and what it enqueues."""

    def __init__(self) -> None:
        self.published: list[dict[str, Any]] = []
        self.enqueued: list[tuple[tuple[Any, ...], dict[str, Any]]] = []

    async def publish(self, channel: str, message: dict[str, Any]) -> None:
        self.published.append(message)

    async def enqueue_job(self, function: str, *args: Any, **kwargs: Any) -> Any:
        self.enqueued.append((args, kwargs))
        return None


@pytest.fixture
def factory(app: Starlette) -> async_sessionmaker[AsyncSession]:
    return app.state.smartcontent.session_factory  # type: ignore[no-any-return]


@pytest.fixture
async def arq_pool(servers: Servers) -> AsyncIterator[ArqRedis]:
    pool = await create_pool(RedisSettings.from_dsn(servers.redis_url))
    yield pool
    await pool.aclose()


@pytest.fixture(autouse=True)
def _reset() -> Iterator[None]:
    CALLS.clear()
    yield
    for event in RELEASE.values():
        event.set()  # let any handler still waiting finish
    for table in (STARTED, RELEASE, CANCELLED):
        table.clear()


async def _new(
    factory: async_sessionmaker[AsyncSession],
    kind: str,
    max_attempts: int = 3,
    payload: dict[str, Any] | None = None,
) -> uuid.UUID:
    async with factory() as session, session.begin():
        job = jobs.new_job(session, kind, payload or {}, max_attempts, workspace_id=None)
    return job.id


async def _get(factory: async_sessionmaker[AsyncSession], job_id: uuid.UUID) -> Job:
    async with factory() as session:
        row = await session.get(Job, job_id)
        assert row is not None
        return row


async def _set(factory: async_sessionmaker[AsyncSession], job_id: uuid.UUID, **values: Any) -> None:
    async with factory() as session, session.begin():
        await session.execute(update(Job).where(Job.id == job_id).values(**values))


def _ago(seconds: int) -> Any:
    return func.now() - text(f"interval '{seconds} seconds'")


async def _run(
    factory: async_sessionmaker[AsyncSession],
    job_id: uuid.UUID,
    rec: Recorder,
    **kwargs: Any,
) -> str:
    options: dict[str, Any] = {"lease_seconds": 60, **kwargs}
    return await job_runner.run(
        job_id,
        factory=factory,
        publisher=rec,
        enqueuer=rec,
        handlers={**HANDLERS, **TEST_HANDLERS},
        **options,
    )


async def _until(
    check: Callable[[], Coroutine[Any, Any, bool]], what: str, timeout: float = 30
) -> None:
    """Wait for a condition; the timeout only bounds a broken run."""
    async with asyncio.timeout(timeout):
        while not await check():
            await asyncio.sleep(0.02)


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
    args, kwargs = rec.enqueued[-1]
    assert args == (str(job_id), 1), "the arq job names the attempt count it expects"
    assert kwargs["_job_id"] == f"job:{job_id}:1" and kwargs["_defer_by"] == 2.0

    assert await _run(factory, job_id, rec, attempts=1) == "succeeded"
    row = await _get(factory, job_id)
    assert row.status == JobStatus.SUCCEEDED and row.result == {"calls": 2} and row.attempts == 2
    seqs = [m["seq"] for m in rec.published]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), "one event per change, in order"
    # A duplicate delivery of the finished job does nothing.
    assert await _run(factory, job_id, rec) == "skipped"


async def test_a_new_attempt_starts_without_the_previous_progress(
    factory: async_sessionmaker[AsyncSession],
) -> None:
    job_id = await _new(factory, "test_flaky")
    assert await _run(factory, job_id, Recorder()) == "retrying"
    assert (await _get(factory, job_id)).progress == pytest.approx(0.7)
    claimed = await jobs.claim(factory, job_id, 60)
    assert claimed is not None and claimed.attempts == 2
    assert (claimed.progress, claimed.message, claimed.result) == (0.0, None, None)


async def test_a_stale_arq_job_does_not_start_another_attempt(
    factory: async_sessionmaker[AsyncSession],
) -> None:
    """arq re-runs a killed worker's job after its timeout; by then the row has moved on."""
    job_id = await _new(factory, "ping")
    assert await jobs.claim(factory, job_id, 60, expected_attempts=0) is not None
    await _set(factory, job_id, status=JobStatus.QUEUED, locked_until=None)  # handed on
    assert await _run(factory, job_id, Recorder(), attempts=0) == "skipped"
    assert (await _get(factory, job_id)).attempts == 1
    assert await _run(factory, job_id, Recorder(), attempts=1) == "succeeded"


async def test_the_claim_refuses_a_job_without_attempts_left(
    factory: async_sessionmaker[AsyncSession],
) -> None:
    job_id = await _new(factory, "ping", max_attempts=2)
    await _set(factory, job_id, attempts=2)
    assert await jobs.claim(factory, job_id, 60) is None
    assert (await _get(factory, job_id)).attempts == 2


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
    """Worker shutdown: the attempt is not counted and the handler is stopped."""
    rec = Recorder()
    job_id = await _new(factory, "test_blocked")
    task = asyncio.create_task(_run(factory, job_id, rec))
    await _event(STARTED, str(job_id)).wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert _event(CANCELLED, str(job_id)).is_set()
    row = await _get(factory, job_id)
    assert row.status == JobStatus.QUEUED and row.attempts == 0 and row.locked_until is None
    assert row.error is None


async def test_an_attempt_past_its_time_limit_is_a_counted_failure(
    factory: async_sessionmaker[AsyncSession],
) -> None:
    """Not handed back as if the worker shut down (QUEUED, attempts 0, no error, forever)."""
    rec = Recorder()
    job_id = await _new(factory, "test_blocked", max_attempts=2)
    assert await _run(factory, job_id, rec, timeout_seconds=0.2) == "retrying"
    assert _event(CANCELLED, str(job_id)).is_set(), "the handler was stopped"
    row = await _get(factory, job_id)
    assert row.status == JobStatus.QUEUED and row.attempts == 1
    assert "AttemptTimedOut" in (row.error or "") and "0.2 s" in (row.error or "")
    assert rec.enqueued[-1][0] == (str(job_id), 1)

    CANCELLED.clear()
    assert await _run(factory, job_id, rec, attempts=1, timeout_seconds=0.2) == "failed"
    row = await _get(factory, job_id)
    assert row.status == JobStatus.FAILED and row.attempts == 2 == row.max_attempts


async def test_a_cancel_after_the_time_limit_counts_as_a_timeout(
    factory: async_sessionmaker[AsyncSession],
) -> None:
    """A handler that ignores our stop keeps the runner until arq's own timeout cancels it:
    that cancellation is a timeout too, not a shutdown."""
    rec = Recorder()
    job_id = await _new(factory, "test_stubborn")
    task = asyncio.create_task(_run(factory, job_id, rec, timeout_seconds=0.2))
    await _event(CANCELLED, str(job_id)).wait()  # our deadline passed and we asked it to stop
    task.cancel()  # what arq's job_timeout does
    with pytest.raises(asyncio.CancelledError):
        await task
    row = await _get(factory, job_id)
    assert row.status == JobStatus.QUEUED and row.attempts == 1
    assert "AttemptTimedOut" in (row.error or "")


async def test_a_running_attempt_renews_its_lease(
    factory: async_sessionmaker[AsyncSession],
) -> None:
    job_id = await _new(factory, "test_blocked")
    task = asyncio.create_task(_run(factory, job_id, Recorder(), lease_seconds=2))
    await _event(STARTED, str(job_id)).wait()
    first = (await _get(factory, job_id)).locked_until
    assert first is not None

    async def renewed() -> bool:
        current = (await _get(factory, job_id)).locked_until
        return current is not None and current > first

    await _until(renewed, "the heartbeat extends locked_until")
    _event(RELEASE, str(job_id)).set()
    assert await task == "succeeded"


async def test_an_attempt_that_lost_its_lease_stops_and_records_nothing(
    factory: async_sessionmaker[AsyncSession],
) -> None:
    """Its heartbeat came late (a stalled worker) and the sweeper handed the job on: the
    old attempt must stop, not finish the job a second time."""
    rec = Recorder()
    job_id = await _new(factory, "test_blocked")
    task = asyncio.create_task(_run(factory, job_id, rec, lease_seconds=2))
    await _event(STARTED, str(job_id)).wait()
    # What the sweeper does to an expired lease (tested below); done directly here so no
    # heartbeat can slip in between expiring the lease and handing the job on.
    await _set(factory, job_id, status=JobStatus.QUEUED, locked_until=None, error="handed on")
    assert await task == "lost-lease"
    assert _event(CANCELLED, str(job_id)).is_set()
    row = await _get(factory, job_id)
    assert row.status == JobStatus.QUEUED and row.attempts == 1 and row.error == "handed on"
    assert row.result is None


async def test_a_job_that_kills_its_worker_every_time_ends_failed(
    factory: async_sessionmaker[AsyncSession], arq_pool: ArqRedis
) -> None:
    job_id = await _new(factory, "ping", max_attempts=3)
    seen = []
    for _ in range(5):
        row = await _get(factory, job_id)
        if row.status == JobStatus.FAILED:
            break
        claimed = await jobs.claim(factory, job_id, 60, expected_attempts=row.attempts)
        assert claimed is not None
        seen.append(claimed.attempts)
        await _set(factory, job_id, locked_until=_ago(1))  # the worker died; lease ran out
        await sweeper.sweep_once(factory, arq_pool, None, grace_seconds=5)
    row = await _get(factory, job_id)
    assert seen == [1, 2, 3]
    assert row.status == JobStatus.FAILED and row.attempts == 3 == row.max_attempts
    assert "attempt 3 stopped" in (row.error or "") and row.finished_at is not None
    assert await jobs.claim(factory, job_id, 60) is None


async def test_the_sweeper_fails_queued_jobs_without_attempts_left(
    factory: async_sessionmaker[AsyncSession], arq_pool: ArqRedis
) -> None:
    """Rows the old claim pushed past max_attempts must not stay QUEUED forever."""
    job_id = await _new(factory, "ping", max_attempts=3)
    await _set(factory, job_id, attempts=5)
    report = await sweeper.sweep_once(factory, arq_pool, None, grace_seconds=5)
    assert report.failed == [job_id]
    assert (await _get(factory, job_id)).status == JobStatus.FAILED


async def test_sweeper_requeues_lost_and_stuck_jobs(
    factory: async_sessionmaker[AsyncSession], arq_pool: ArqRedis, settings: Settings
) -> None:
    rec = Recorder()
    lost = await _new(factory, "ping")  # its arq job never reached Redis
    stuck = await _new(factory, "ping")  # its worker died holding the lease
    fresh = await _new(factory, "ping")  # just created: the normal path will run it
    await jobs.claim(factory, stuck, 60)
    await _set(factory, lost, run_after=_ago(120))
    await _set(factory, stuck, locked_until=_ago(1))
    report = await sweep(
        {"session_factory": factory, "redis": arq_pool, "publisher": rec, "settings": settings}
    )
    assert report.expired == [stuck]
    assert set(report.enqueued) == {f"job:{lost}:0", f"job:{stuck}:1"}
    assert str(fresh) not in " ".join(report.enqueued)
    assert [m["status"] for m in rec.published] == ["QUEUED"], "the hand-on is an event"
    # The next attempt of the stuck job may run at once.
    assert await _run(factory, stuck, Recorder(), attempts=1) == "succeeded"
    # Enqueued and waiting in arq's queue: the next pass leaves it alone.
    again = await sweeper.sweep_once(factory, arq_pool, None, grace_seconds=5)
    assert again.enqueued == [] and again.waiting == 1


@pytest.mark.parametrize("stale", ["in-progress", "result"])
async def test_sweeper_looks_past_a_stale_arq_entry(
    factory: async_sessionmaker[AsyncSession], arq_pool: ArqRedis, stale: str
) -> None:
    """After a Redis restart the append-only file can bring back an in-progress key of a
    worker that is gone (or a kept result): arq would skip the job and deduplicate a new
    enqueue against it for minutes. The sweeper enqueues the next generation instead."""
    job_id = await _new(factory, "ping")
    await _set(factory, job_id, run_after=_ago(120))
    arq_id = jobs.arq_job_id(job_id, 0)
    assert await jobs.enqueue(arq_pool, job_id, 0)
    if stale == "in-progress":
        await arq_pool.psetex(in_progress_key_prefix + arq_id, 300_000, b"1")
    else:
        await arq_pool.delete("arq:job:" + arq_id)
        await arq_pool.zrem("arq:queue", arq_id)
        await arq_pool.psetex(result_key_prefix + arq_id, 60_000, b"x")
    duplicate = await arq_pool.enqueue_job("run_job", str(job_id), 0, _job_id=arq_id)
    assert duplicate is None, "arq deduplicates against the stale entry"

    report = await sweeper.sweep_once(factory, arq_pool, None, grace_seconds=5)
    assert report.enqueued == [f"job:{job_id}:0:g1"]
    assert (await _get(factory, job_id)).enqueue_generation == 1
    again = await sweeper.sweep_once(factory, arq_pool, None, grace_seconds=5)
    assert again.enqueued == [], "the new generation is waiting in the queue"


async def test_only_one_sweeper_pass_runs_at_a_time(
    factory: async_sessionmaker[AsyncSession], arq_pool: ArqRedis
) -> None:
    job_id = await _new(factory, "ping")
    await _set(factory, job_id, run_after=_ago(120))
    async with factory() as holder, holder.begin():
        await holder.execute(select(func.pg_advisory_xact_lock(sweeper.SWEEPER_LOCK_KEY)))
        assert (await sweeper.sweep_once(factory, arq_pool, None, grace_seconds=5)).skipped
    report = await sweeper.sweep_once(factory, arq_pool, None, grace_seconds=5)
    assert not report.skipped and report.enqueued == [f"job:{job_id}:0"]


@asynccontextmanager
async def running_worker(
    settings: Settings, handlers: dict[str, Handler] | None = None
) -> AsyncIterator[Worker]:
    kwargs = worker_settings(settings, handlers={**HANDLERS, **(handlers or {})})
    kwargs.update(handle_signals=False, poll_delay=0.05)
    worker = Worker(**kwargs)
    task = asyncio.create_task(worker.async_run())
    try:
        yield worker
    finally:
        worker.allow_pick_jobs = False
        releasing = asyncio.create_task(_keep_releasing())
        try:
            await stop_worker(worker, task)
        finally:
            releasing.cancel()


async def _keep_releasing() -> None:
    """Let blocked handlers finish, also those that start while the worker stops."""
    while True:
        for event in RELEASE.values():
            event.set()
        await asyncio.sleep(0.01)


async def _status(factory: async_sessionmaker[AsyncSession], job_id: uuid.UUID) -> str:
    return (await _get(factory, job_id)).status


async def test_the_sweeper_runs_on_its_own_timer_behind_a_full_queue(
    servers: Servers, factory: async_sessionmaker[AsyncSession], arq_pool: ArqRedis
) -> None:
    """Every job slot is taken and a backlog waits: the sweeper still recovers a dead
    worker's job and a lost one, on schedule."""
    settings = make_settings(servers, worker_concurrency=1, sweeper_interval_seconds=1)
    blockers = [await _new(factory, "test_blocked") for _ in range(20)]
    for job_id in blockers:
        await jobs.enqueue(arq_pool, job_id, 0)
    stuck = await _new(factory, "ping")
    await jobs.claim(factory, stuck, 60)
    await _set(factory, stuck, locked_until=_ago(1))
    lost = await _new(factory, "ping")
    await _set(factory, lost, run_after=_ago(120))
    async with running_worker(settings, TEST_HANDLERS):

        async def recovered() -> bool:
            stuck_row = await _get(factory, stuck)
            return (
                stuck_row.status == JobStatus.QUEUED
                and "stopped renewing" in (stuck_row.error or "")
                and await arq_pool.zscore("arq:queue", jobs.arq_job_id(lost, 0)) is not None
                and await arq_pool.zscore("arq:queue", jobs.arq_job_id(stuck, 1)) is not None
            )

        await _until(recovered, "the sweeper handled both while the only slot is busy")
        assert sum([await _status(factory, b) == JobStatus.RUNNING for b in blockers]) == 1


async def test_a_dead_workers_job_runs_again_within_seconds(
    servers: Servers, factory: async_sessionmaker[AsyncSession]
) -> None:
    """Its lease is short and was renewed by a heartbeat that stopped with the worker:
    another worker runs the job after about lease + sweeper interval, not minutes."""
    settings = make_settings(servers, job_lease_seconds=2, sweeper_interval_seconds=1)
    job_id = await _new(factory, "ping")
    await jobs.claim(factory, job_id, 2)  # a worker took it, then died without a trace
    async with running_worker(settings):
        loop = asyncio.get_running_loop()
        started = loop.time()

        async def done() -> bool:
            return await _status(factory, job_id) == JobStatus.SUCCEEDED

        await _until(done, "the job ran again", timeout=60)
        # Generous for a busy machine; the old lease alone was 300 s.
        assert loop.time() - started < 30
    row = await _get(factory, job_id)
    assert row.attempts == 2 and row.error is None
