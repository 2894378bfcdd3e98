"""Runs one job attempt: claim the lease, call the kind's handler, record the outcome."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.jobs import store as jobs
from app.jobs.store import JobEvent, Publisher
from app.logging import get_logger
from app.models import Job
from app.settings import Settings

log = get_logger(__name__)


class PermanentJobError(Exception):
    """Raised by a handler when retrying cannot help (bad payload, rejected by a provider)."""


@dataclass
class JobContext:
    """What a handler gets: its payload and a way to stream progress to subscribers."""

    job: Job
    factory: async_sessionmaker[AsyncSession]
    publisher: Publisher
    settings: Settings | None = None

    @property
    def payload(self) -> dict[str, Any]:
        return self.job.payload

    async def progress(self, fraction: float, message: str | None = None) -> None:
        row = await jobs.report_progress(
            self.factory, self.job.id, self.job.attempts, fraction, message
        )
        if row is not None:
            await publish(self.publisher, row)


# The coroutine that performs one kind of job (see app/jobs/registry.py).
Handler = Callable[[JobContext], Awaitable[dict[str, Any]]]


async def publish(publisher: Publisher, job: Job) -> None:
    try:
        await publisher.publish(jobs.job_channel(job.id), JobEvent.of(job).to_message())
    except Exception as exc:
        log.warning("job_publish_failed", job_id=str(job.id), error=repr(exc))


def backoff_seconds(attempt: int) -> float:
    return float(min(2**attempt, 300))


async def run(
    job_id: uuid.UUID,
    *,
    factory: async_sessionmaker[AsyncSession],
    publisher: Publisher,
    enqueuer: jobs.Enqueuer | None,
    lease_seconds: int,
    handlers: Mapping[str, Handler],
    settings: Settings | None = None,
) -> str:
    """Run one attempt of `job_id`; returns what happened (for logs and tests)."""
    job = await jobs.claim(factory, job_id, lease_seconds)
    if job is None:
        return "skipped"  # finished, or another worker holds the lease
    await publish(publisher, job)
    attempt = job.attempts
    handler = handlers.get(job.kind)
    try:
        if handler is None:
            raise PermanentJobError(f"no handler for job kind {job.kind!r}")
        result = await handler(
            JobContext(job=job, factory=factory, publisher=publisher, settings=settings)
        )
    except asyncio.CancelledError:
        # Worker shutdown: hand the job back so its re-queued arq job runs it without
        # waiting for the lease to expire. Shielded: we are being cancelled.
        row = await asyncio.shield(jobs.release(factory, job_id, attempt))
        if row is not None:
            await asyncio.shield(publish(publisher, row))
        raise
    except Exception as exc:
        permanent = isinstance(exc, PermanentJobError) or attempt >= job.max_attempts
        delay = None if permanent else backoff_seconds(attempt)
        log.warning(
            "job_attempt_failed",
            job_id=str(job_id),
            kind=job.kind,
            attempt=attempt,
            error=repr(exc),
            retry_in=delay,
        )
        message = str(exc) if isinstance(exc, PermanentJobError) else f"{type(exc).__name__}: {exc}"
        row = await jobs.fail(factory, job_id, attempt, message[:2000], retry_in_seconds=delay)
        if row is not None:
            await publish(publisher, row)
            if delay is not None:
                await jobs.enqueue(enqueuer, job_id, row.attempts, defer_seconds=delay)
        return "retrying" if delay is not None else "failed"
    row = await jobs.succeed(factory, job_id, attempt, result)
    if row is None:
        return "lost-lease"
    await publish(publisher, row)
    return "succeeded"
