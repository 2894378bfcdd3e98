"""Background jobs: create with the domain rows, enqueue after commit, move through states.

State transitions are single guarded UPDATEs, so a job that arq delivers twice (it is
at-least-once) or that the sweeper re-enqueues runs its handler only while it holds the
lease, and completes at most once per attempt.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
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


def arq_job_id(job_id: uuid.UUID, attempts: int) -> str:
    """Dedup key: one arq job per (row, attempt about to start)."""
    return f"job:{job_id}:{attempts}"


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
    )
    session.add(job)
    return job


async def enqueue(
    pool: Enqueuer | None, job_id: uuid.UUID, attempts: int, *, defer_seconds: float = 0
) -> bool:
    """Hand a committed job to arq. A failure is logged, not raised: the sweeper recovers it."""
    if pool is None:
        return False
    try:
        await pool.enqueue_job(
            "run_job",
            str(job_id),
            _job_id=arq_job_id(job_id, attempts),
            _defer_by=defer_seconds or None,
        )
        return True
    except Exception as exc:
        log.warning("job_enqueue_failed", job_id=str(job_id), error=repr(exc))
        return False


def can_read(principal: Principal, job: Job) -> bool:
    """Whoever may read the job's workspace may see and follow the job."""
    return job.workspace_id is not None and principal.role_in(job.workspace_id) is not None


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


async def claim(
    factory: async_sessionmaker[AsyncSession], job_id: uuid.UUID, lease_seconds: int
) -> Job | None:
    """Take the lease on a queued job (or one whose lease expired). None: not ours to run."""
    async with factory() as session, session.begin():
        stmt = (
            update(Job)
            .where(
                Job.id == job_id,
                (Job.status == JobStatus.QUEUED)
                | ((Job.status == JobStatus.RUNNING) & (Job.locked_until < func.now())),
            )
            .values(
                status=JobStatus.RUNNING,
                attempts=Job.attempts + 1,
                event_seq=Job.event_seq + 1,
                locked_until=func.now() + text(f"interval '{int(lease_seconds)} seconds'"),
                started_at=func.now(),
                message=None,
                error=None,
            )
            .returning(Job)
        )
        return (await session.scalars(stmt)).one_or_none()


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
            "run_after": func.now() + text(f"interval '{float(retry_in_seconds)} seconds'"),
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


async def due_for_sweep(
    factory: async_sessionmaker[AsyncSession], *, grace_seconds: int, limit: int = 500
) -> list[tuple[uuid.UUID, int]]:
    """Queued jobs overdue by `grace_seconds`, and running jobs whose lease expired."""
    async with factory() as session:
        grace = text(f"interval '{int(grace_seconds)} seconds'")
        queued = select(Job.id, Job.attempts).where(
            Job.status == JobStatus.QUEUED, Job.run_after < func.now() - grace
        )
        stuck = select(Job.id, Job.attempts).where(
            Job.status == JobStatus.RUNNING, Job.locked_until < func.now()
        )
        rows = (await session.execute(queued.union_all(stuck).limit(limit))).all()
        return [(row[0], row[1]) for row in rows]


async def counts_by_status(session: AsyncSession) -> dict[str, int]:
    rows = (await session.execute(select(Job.status, func.count()).group_by(Job.status))).all()
    return {status: count for status, count in rows}
