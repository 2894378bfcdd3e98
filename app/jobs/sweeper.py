"""The sweeper: recovers jobs that Postgres says should run but that no worker will run.

It runs as its own asyncio task in every worker process (not as an arq job, which a
backlog would delay), one worker at a time through a Postgres advisory lock. Each pass:

1. A running job whose lease expired lost its worker (killed, or stuck without renewing
   the heartbeat): the attempt counts, its error is recorded, and the job goes back to
   QUEUED, or to FAILED when it has no attempts left. A queued job without attempts left
   (from before the claim checked them) fails too.
2. A queued job overdue by the grace period is compared with its arq job in Redis. Waiting
   in arq's queue: left alone (a backlog is not a fault). Missing (lost with Redis, or never
   enqueued): enqueued. Held by a stale entry (an in-progress key of a dead worker, possibly
   restored from the append-only file after a Redis restart; a kept result; a job key out of
   the queue), which arq would deduplicate a new enqueue against: enqueued under the next
   enqueue generation, a fresh arq id. The claim's guard in SQL makes any duplicate a no-op.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import case, func, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.infra import queue
from app.jobs import store as jobs
from app.jobs.runner import publish
from app.jobs.store import Publisher
from app.logging import get_logger
from app.models import Job, JobStatus

log = get_logger(__name__)

# pg_try_advisory_xact_lock key: one sweeper pass at a time across all workers.
SWEEPER_LOCK_KEY = 0x5C_5EE9  # "sc sweep"
BATCH = 500


@dataclass
class SweepReport:
    """What one pass did (for logs and tests); `skipped` when another worker held the lock."""

    skipped: bool = False
    expired: list[uuid.UUID] = field(default_factory=list)  # back to QUEUED
    failed: list[uuid.UUID] = field(default_factory=list)  # out of attempts
    enqueued: list[str] = field(default_factory=list)  # arq job ids
    waiting: int = 0  # overdue but waiting in arq's queue

    @property
    def requeued(self) -> int:
        return len(self.enqueued)


async def _locked(session: AsyncSession) -> bool:
    got = await session.scalar(select(func.pg_try_advisory_xact_lock(SWEEPER_LOCK_KEY)))
    return bool(got)


async def _expire(session: AsyncSession) -> list[Job]:
    """Hand on running jobs whose lease expired, and fail queued ones out of attempts."""
    lapsed = (
        select(Job.id)
        .where(
            ((Job.status == JobStatus.RUNNING) & (Job.locked_until < func.now()))
            | ((Job.status == JobStatus.QUEUED) & (Job.attempts >= Job.max_attempts))
        )
        .limit(BATCH)
        .with_for_update(skip_locked=True)
    )
    out_of_attempts = Job.attempts >= Job.max_attempts
    was_running = Job.status == JobStatus.RUNNING
    stmt = (
        update(Job)
        .where(Job.id.in_(lapsed.scalar_subquery()))
        .values(
            status=case((out_of_attempts, JobStatus.FAILED.value), else_=JobStatus.QUEUED.value),
            error=case(
                (
                    was_running,
                    func.concat(
                        "attempt ",
                        Job.attempts,
                        " stopped without finishing: its worker stopped renewing the lease",
                    ),
                ),
                else_=func.coalesce(Job.error, "no attempts left"),
            ),
            locked_until=None,
            run_after=func.now(),
            finished_at=case((out_of_attempts, func.now()), else_=None),
            event_seq=Job.event_seq + 1,
        )
        .returning(Job)
    )
    return list((await session.scalars(stmt)).all())


async def _overdue(session: AsyncSession, grace_seconds: float) -> list[tuple[uuid.UUID, int, int]]:
    stmt = (
        select(Job.id, Job.attempts, Job.enqueue_generation)
        .where(
            Job.status == JobStatus.QUEUED,
            Job.attempts < Job.max_attempts,
            Job.run_after < func.now() - text(f"interval '{float(grace_seconds)} seconds'"),
        )
        .order_by(Job.run_after)
        .limit(BATCH)
    )
    return [(row[0], row[1], row[2]) for row in (await session.execute(stmt)).all()]


async def _next_generation(
    session: AsyncSession, job_id: uuid.UUID, attempts: int, generation: int
) -> bool:
    stmt = (
        update(Job)
        .where(
            Job.id == job_id,
            Job.status == JobStatus.QUEUED,
            Job.attempts == attempts,
            Job.enqueue_generation == generation,
        )
        .values(enqueue_generation=generation + 1)
        .returning(Job.id)
    )
    return (await session.execute(stmt)).first() is not None


async def sweep_once(
    factory: async_sessionmaker[AsyncSession],
    redis: Any,
    publisher: Publisher | None,
    *,
    grace_seconds: float,
) -> SweepReport:
    """One pass (see the module docstring). Safe to run from any number of workers."""
    report = SweepReport()
    async with factory() as session, session.begin():
        if not await _locked(session):
            return SweepReport(skipped=True)
        changed = await _expire(session)
    for row in changed:
        (report.failed if row.status == JobStatus.FAILED else report.expired).append(row.id)
        if publisher is not None:
            await publish(publisher, row)
    if changed:
        log.warning(
            "sweeper_expired",
            requeued=len(report.expired),
            failed=len(report.failed),
            jobs=[str(row.id) for row in changed[:20]],
        )

    to_enqueue: list[tuple[uuid.UUID, int, int]] = []
    async with factory() as session, session.begin():
        if not await _locked(session):
            return report
        # Expired just now: their next attempt may start at once, no grace.
        expired = {row.id: (row.id, row.attempts, row.enqueue_generation) for row in changed}
        candidates = [expired[i] for i in report.expired]
        candidates += [c for c in await _overdue(session, grace_seconds) if c[0] not in expired]
        ids = [jobs.arq_job_id(*c) for c in candidates]
        states = await queue.arq_states(redis, ids)
        for (job_id, attempts, generation), state in zip(candidates, states, strict=True):
            if state == "waiting":
                report.waiting += 1
            elif state == "missing":
                to_enqueue.append((job_id, attempts, generation))
            elif await _next_generation(session, job_id, attempts, generation):
                to_enqueue.append((job_id, attempts, generation + 1))
    for job_id, attempts, generation in to_enqueue:
        if await jobs.enqueue(redis, job_id, attempts, generation=generation):
            report.enqueued.append(jobs.arq_job_id(job_id, attempts, generation))
    if report.enqueued:
        log.info("sweeper_requeued", count=len(report.enqueued), waiting=report.waiting)
    return report


async def run_forever(
    factory: async_sessionmaker[AsyncSession],
    redis: Any,
    publisher: Publisher | None,
    *,
    interval_seconds: float,
    grace_seconds: float,
) -> None:
    """The worker's sweeper task: a pass every `interval_seconds`, whatever the queue holds.
    A failing pass (Postgres or Redis away) is logged and retried at the next tick."""
    while True:
        try:
            await sweep_once(factory, redis, publisher, grace_seconds=grace_seconds)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("sweeper_failed", error=repr(exc))
        await asyncio.sleep(interval_seconds)
