"""Background jobs: create with the domain rows, enqueue after commit, move through states.

State transitions are single guarded UPDATEs, so a job that arq delivers twice (it is
at-least-once) or that the sweeper re-enqueues runs its handler only while it holds the
lease, and completes at most once per attempt. Each arq job names the attempt count it
expects to find (`run_job(id, attempts)`): a stale or duplicate arq job finds the row
moved on and does nothing.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from sqlalchemy import func, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.auth import Principal
from app.errors import NotFound
from app.logging import get_logger
from app.models import Job, JobStatus
from app.permissions import Action

log = get_logger(__name__)


def job_channel(job_id: uuid.UUID | str) -> str:
    return f"job:{job_id}"


def workspace_channel(workspace_id: uuid.UUID | str) -> str:
    """Every job state change of one workspace (app/jobs/workspace_events.py)."""
    return f"workspace:{workspace_id}"


# A message here makes idle workers look at the queue now rather than at their next poll
# (workers/settings.py WakingWorker); published after each enqueue meant to run at once.
WAKE_CHANNEL = "jobs:wake"


def arq_job_id(job_id: uuid.UUID, attempts: int, generation: int = 0) -> str:
    """Dedup key: one arq job per (row, attempt about to start, enqueue generation). The
    sweeper bumps the generation when this id is held by a stale arq entry."""
    base = f"job:{job_id}:{attempts}"
    return base if generation == 0 else f"{base}:g{generation}"


class Publisher(Protocol):
    async def publish(self, channel: str, message: dict[str, Any]) -> None: ...


class Enqueuer(Protocol):
    async def enqueue_job(self, function: str, *args: Any, **kwargs: Any) -> Any: ...


@dataclass(frozen=True)
class JobEvent:
    """What subscribers see: the row's state at one point, ordered by `seq`."""

    job_id: uuid.UUID
    kind: str
    status: str
    attempt: int
    seq: int
    progress: float
    message: str | None
    result: dict[str, Any] | None
    error: str | None
    # Per subscriber, never published: this event is the stored state read after a gap
    # (or at subscription start), so the events before it may not all have been seen.
    catch_up: bool = False
    # Known for stored state only (never published): whose readers may follow the job.
    workspace_id: uuid.UUID | None = field(default=None, compare=False)

    @classmethod
    def of(cls, job: Job) -> JobEvent:
        return cls(
            job_id=job.id,
            kind=job.kind,
            status=job.status,
            attempt=job.attempts,
            seq=job.event_seq,
            progress=job.progress,
            message=job.message,
            result=job.result,
            error=job.error,
            workspace_id=job.workspace_id,
        )

    def to_message(self) -> dict[str, Any]:
        return {
            "job_id": str(self.job_id),
            "kind": self.kind,
            "status": self.status,
            "attempt": self.attempt,
            "seq": self.seq,
            "progress": self.progress,
            "message": self.message,
            "result": self.result,
            "error": self.error,
        }

    @classmethod
    def from_message(cls, data: dict[str, Any]) -> JobEvent:
        return cls(
            job_id=uuid.UUID(data["job_id"]),
            kind=data["kind"],
            status=data["status"],
            attempt=int(data["attempt"]),
            seq=int(data["seq"]),
            progress=float(data["progress"]),
            message=data.get("message"),
            result=data.get("result"),
            error=data.get("error"),
        )

    @property
    def order(self) -> int:
        """The row's event_seq only grows, across attempts too: a total order of events."""
        return self.seq

    @property
    def is_final(self) -> bool:
        return JobStatus(self.status).is_final


def new_job(
    session: AsyncSession,
    kind: str,
    payload: dict[str, Any],
    max_attempts: int,
    *,
    workspace_id: uuid.UUID | None,
) -> Job:
    """Add a job row to the caller's transaction (it commits with the domain rows)."""
    job = Job(
        id=uuid.uuid4(),
        workspace_id=workspace_id,
        kind=kind,
        status=JobStatus.QUEUED,
        payload=payload,
        max_attempts=max_attempts,
        attempts=0,
        event_seq=0,
        progress=0.0,
        enqueue_generation=0,
    )
    session.add(job)
    return job


async def enqueue(
    pool: Enqueuer | None,
    job_id: uuid.UUID,
    attempts: int,
    *,
    defer_seconds: float = 0,
    generation: int = 0,
) -> bool:
    """Hand a committed job to arq. A failure is logged, not raised: the sweeper recovers it."""
    if pool is None:
        return False
    try:
        await pool.enqueue_job(
            "run_job",
            str(job_id),
            attempts,
            _job_id=arq_job_id(job_id, attempts, generation),
            _defer_by=defer_seconds or None,
        )
    except Exception as exc:
        log.warning("job_enqueue_failed", job_id=str(job_id), error=repr(exc))
        return False
    if not defer_seconds:
        await wake_workers(pool)
    return True


async def wake_workers(pool: Any) -> None:
    """Tell idle workers a job is waiting. Best effort: without it they find the job at
    their next poll (WORKER_POLL_SECONDS)."""
    publish = getattr(pool, "publish", None)  # Redis clients have it; test doubles may not
    if publish is None:
        return
    try:
        await publish(WAKE_CHANNEL, "1")
    except Exception as exc:
        log.debug("job_wake_failed", error=repr(exc))


def can_read(principal: Principal, job: Job) -> bool:
    """Whoever may read the job's workspace may see and follow the job."""
    return can_read_workspace(principal, job.workspace_id)


def can_read_workspace(principal: Principal, workspace_id: uuid.UUID | None) -> bool:
    """`can_read` for a job known by its workspace (a job of no workspace: nobody)."""
    return workspace_id is not None and principal.role_in(workspace_id) is not None


async def get_visible(
    factory: async_sessionmaker[AsyncSession], principal: Principal, job_id: uuid.UUID
) -> Job:
    async with factory() as session:
        job = await session.get(Job, job_id)
    if job is None or not can_read(principal, job):
        raise NotFound("No job with this id.")
    assert job.workspace_id is not None
    principal.require(job.workspace_id, Action.WORKSPACE_READ)
    return job


async def get_jobs(session: AsyncSession, ids: Sequence[uuid.UUID]) -> list[Job | None]:
    rows = (await session.scalars(select(Job).where(Job.id.in_(ids)))).all()
    by_id = {row.id: row for row in rows}
    return [by_id.get(i) for i in ids]


def _seconds(value: float) -> Any:
    return text(f"interval '{float(value)} seconds'")


async def claim(
    factory: async_sessionmaker[AsyncSession],
    job_id: uuid.UUID,
    lease_seconds: float,
    expected_attempts: int | None = None,
) -> Job | None:
    """Start the next attempt of a queued job and take its lease. None: not ours to run
    (finished, running elsewhere, out of attempts, or `expected_attempts` is stale)."""
    conditions = [
        Job.id == job_id,
        Job.status == JobStatus.QUEUED,
        Job.attempts < Job.max_attempts,
    ]
    if expected_attempts is not None:
        conditions.append(Job.attempts == expected_attempts)
    async with factory() as session, session.begin():
        stmt = (
            update(Job)
            .where(*conditions)
            .values(
                status=JobStatus.RUNNING,
                attempts=Job.attempts + 1,
                event_seq=Job.event_seq + 1,
                locked_until=func.now() + _seconds(lease_seconds),
                started_at=func.now(),
                # A new attempt starts from nothing: no progress of the previous one.
                progress=0.0,
                message=None,
                result=None,
                error=None,
            )
            .returning(Job)
        )
        return (await session.scalars(stmt)).one_or_none()


async def renew_lease(
    factory: async_sessionmaker[AsyncSession],
    job_id: uuid.UUID,
    attempt: int,
    lease_seconds: float,
) -> bool:
    """Heartbeat: extend this attempt's lease. False: the attempt lost the job (its lease
    expired and the sweeper handed it on), so it must stop."""
    async with factory() as session, session.begin():
        stmt = (
            update(Job)
            .where(Job.id == job_id, Job.status == JobStatus.RUNNING, Job.attempts == attempt)
            .values(locked_until=func.now() + _seconds(lease_seconds))
            .returning(Job.id)
        )
        return (await session.execute(stmt)).first() is not None


async def _transition(
    factory: async_sessionmaker[AsyncSession],
    job_id: uuid.UUID,
    attempt: int,
    values: dict[str, Any],
) -> Job | None:
    """Apply `values` only while this attempt still holds the job; bump the event sequence."""
    async with factory() as session, session.begin():
        stmt = (
            update(Job)
            .where(Job.id == job_id, Job.status == JobStatus.RUNNING, Job.attempts == attempt)
            .values(event_seq=Job.event_seq + 1, **values)
            .returning(Job)
        )
        return (await session.scalars(stmt)).one_or_none()


async def report_progress(
    factory: async_sessionmaker[AsyncSession],
    job_id: uuid.UUID,
    attempt: int,
    progress: float,
    message: str | None,
) -> Job | None:
    return await _transition(
        factory, job_id, attempt, {"progress": max(0.0, min(1.0, progress)), "message": message}
    )


async def succeed(
    factory: async_sessionmaker[AsyncSession],
    job_id: uuid.UUID,
    attempt: int,
    result: dict[str, Any],
) -> Job | None:
    return await _transition(
        factory,
        job_id,
        attempt,
        {
            "status": JobStatus.SUCCEEDED,
            "result": result,
            "progress": 1.0,
            "locked_until": None,
            "finished_at": func.now(),
        },
    )


async def fail(
    factory: async_sessionmaker[AsyncSession],
    job_id: uuid.UUID,
    attempt: int,
    error: str,
    *,
    retry_in_seconds: float | None,
) -> Job | None:
    """Fail this attempt: back to QUEUED after a delay, or FAILED for good."""
    if retry_in_seconds is not None:
        values: dict[str, Any] = {
            "status": JobStatus.QUEUED,
            "error": error,
            "locked_until": None,
            "run_after": func.now() + _seconds(retry_in_seconds),
        }
    else:
        values = {
            "status": JobStatus.FAILED,
            "error": error,
            "locked_until": None,
            "finished_at": func.now(),
        }
    return await _transition(factory, job_id, attempt, values)


async def release(
    factory: async_sessionmaker[AsyncSession], job_id: uuid.UUID, attempt: int
) -> Job | None:
    """Give the lease back at shutdown so the re-queued arq job can run it at once."""
    return await _transition(
        factory,
        job_id,
        attempt,
        {"status": JobStatus.QUEUED, "locked_until": None, "attempts": attempt - 1},
    )


async def counts_by_status(session: AsyncSession) -> dict[str, int]:
    rows = (await session.execute(select(Job.status, func.count()).group_by(Job.status))).all()
    return {status: count for status, count in rows}
