"""The publishing sweeper: targets Postgres says should be published but no worker will.

A task in every worker (one pass at a time across workers through an advisory lock),
beside the jobs sweeper. Each pass:

1. A PUBLISHING target whose lease ran out lost its worker (killed, stuck). Its attempt
   counts and its outcome is in doubt (the platform may have the post): back to PENDING
   with `in_doubt`, so the next attempt looks the post up or relies on the idempotency key
   (or parks it as UNKNOWN); UNKNOWN at once if it has no attempts left.
2. A PENDING target overdue by the grace period is compared with its arq job: waiting in
   arq's queue is left alone (a backlog is not a fault); missing (lost with Redis, never
   enqueued) is enqueued; held by a stale entry (a result kept, a dead worker's
   in-progress key) is enqueued under the next enqueue generation, a fresh arq id. The
   claim's guard makes any duplicate a no-op.
3. Follow-ups no hook made: a first-comment job for a PUBLISHED target without one (the
   job is then the jobs sweeper's to recover when Redis loses it), a comment step whose
   job ended without an outcome is closed, a recurring series' next occurrence
   (comments.py, recurrence.py).
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import case, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.infra import queue
from app.jobs import store as jobs
from app.logging import get_logger
from app.models import PostTarget
from app.models import TargetStatus as S
from app.services.publishing import comments, delivery, events, recurrence
from app.services.publishing.events import EventPublisher
from app.services.publishing.transitions import seconds

log = get_logger(__name__)

SWEEPER_LOCK_KEY = 0x5C_9057  # "sc post"
LOST = " stopped without an answer (its worker was lost); the post may have gone out."


@dataclass
class SweepReport:
    skipped: bool = False
    recovered: list[uuid.UUID] = field(default_factory=list)  # back to PENDING, in doubt
    unknown: list[uuid.UUID] = field(default_factory=list)  # out of attempts, in doubt
    enqueued: list[str] = field(default_factory=list)  # arq job ids
    waiting: int = 0


async def _locked(session: AsyncSession) -> bool:
    return bool(await session.scalar(select(func.pg_try_advisory_xact_lock(SWEEPER_LOCK_KEY))))


async def _expire(session: AsyncSession, batch: int) -> list[PostTarget]:
    lapsed = (
        select(PostTarget.id)
        .where(PostTarget.status == S.PUBLISHING.value, PostTarget.locked_until < func.now())
        .limit(batch)
        .with_for_update(skip_locked=True)
    )
    out_of_attempts = PostTarget.attempts >= PostTarget.max_attempts
    stmt = (
        update(PostTarget)
        .where(PostTarget.id.in_(lapsed.scalar_subquery()))
        .values(
            status=case((out_of_attempts, S.UNKNOWN.value), else_=S.PENDING.value),
            in_doubt=True,
            locked_until=None,
            next_attempt_at=func.now(),
            error=func.concat("Attempt ", PostTarget.attempts, LOST),
            event_seq=PostTarget.event_seq + 1,
        )
        .returning(PostTarget)
        .execution_options(synchronize_session=False, populate_existing=True)
    )
    return list((await session.scalars(stmt)).all())


async def _overdue(
    session: AsyncSession, grace_seconds: float, batch: int
) -> list[tuple[uuid.UUID, int, int]]:
    stmt = (
        select(PostTarget.id, PostTarget.attempts, PostTarget.enqueue_generation)
        .where(
            PostTarget.status == S.PENDING.value,
            PostTarget.attempts < PostTarget.max_attempts,
            PostTarget.next_attempt_at < func.now() - seconds(grace_seconds),
        )
        .order_by(PostTarget.next_attempt_at)
        .limit(batch)
    )
    return [(r[0], r[1], r[2]) for r in (await session.execute(stmt)).all()]


async def _bump(session: AsyncSession, target_id: uuid.UUID, attempts: int, gen: int) -> bool:
    stmt = (
        update(PostTarget)
        .where(
            PostTarget.id == target_id,
            PostTarget.status == S.PENDING.value,
            PostTarget.attempts == attempts,
            PostTarget.enqueue_generation == gen,
        )
        .values(enqueue_generation=gen + 1)
        .returning(PostTarget.id)
        .execution_options(synchronize_session=False, populate_existing=True)
    )
    return (await session.execute(stmt)).first() is not None


async def sweep_once(
    factory: async_sessionmaker[AsyncSession],
    redis: Any,
    publisher: EventPublisher | None,
    *,
    grace_seconds: float,
    batch: int,
) -> SweepReport:
    report = SweepReport()
    async with factory() as session, session.begin():
        if not await _locked(session):
            return SweepReport(skipped=True)
        changed = await _expire(session, batch)
    for row in changed:
        (report.unknown if row.status == S.UNKNOWN.value else report.recovered).append(row.id)
    await events.emit(publisher, changed)
    if changed:
        log.warning(
            "publish_sweeper_recovered",
            pending=len(report.recovered),
            unknown=len(report.unknown),
            targets=[str(row.id) for row in changed[:20]],
        )
    to_enqueue: list[tuple[uuid.UUID, int, int]] = []
    async with factory() as session, session.begin():
        if not await _locked(session):
            return report
        recovered = {
            row.id: (row.id, row.attempts, row.enqueue_generation)
            for row in changed
            if row.status == S.PENDING.value
        }
        candidates = list(recovered.values())
        candidates += [
            c for c in await _overdue(session, grace_seconds, batch) if c[0] not in recovered
        ]
        states = await queue.arq_states(
            redis, [delivery.arq_job_id(*c) for c in candidates], queue_name=queue.PUBLISH_QUEUE
        )
        for (target_id, attempts, generation), state in zip(candidates, states, strict=True):
            if state == "waiting":
                report.waiting += 1
            elif state == "missing":
                to_enqueue.append((target_id, attempts, generation))
            elif await _bump(session, target_id, attempts, generation):
                to_enqueue.append((target_id, attempts, generation + 1))
    for target_id, attempts, generation in to_enqueue:
        if await delivery.enqueue(redis, target_id, attempts, generation=generation):
            report.enqueued.append(delivery.arq_job_id(target_id, attempts, generation))
    if report.enqueued:
        log.info("publish_sweeper_enqueued", count=len(report.enqueued), waiting=report.waiting)
    await _followups(factory, redis)
    return report


async def _followups(factory: async_sessionmaker[AsyncSession], redis: Any) -> None:
    """First comments and series' next occurrences that no hook made (one pass at a time)."""
    async with factory() as session, session.begin():
        if not await _locked(session):
            return
        made = await comments.sweep(session)
        await recurrence.sweep(session)
    for job_id in made:
        await jobs.enqueue(redis, job_id, 0)


async def run_forever(
    factory: async_sessionmaker[AsyncSession],
    redis: Any,
    publisher: EventPublisher | None,
    *,
    interval_seconds: float,
    grace_seconds: float,
    batch: int,
) -> None:
    """The worker's publishing sweeper task: a pass every `interval_seconds`. A failing
    pass (Postgres or Redis away) is logged and retried at the next tick."""
    while True:
        try:
            await sweep_once(factory, redis, publisher, grace_seconds=grace_seconds, batch=batch)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("publish_sweeper_failed", error=repr(exc))
        await asyncio.sleep(interval_seconds)
