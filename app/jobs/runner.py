"""Runs one job attempt: claim the lease, call the kind's handler while renewing the lease
(heartbeat) and watching the attempt's time limit, record the outcome."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.jobs import store as jobs
from app.jobs import workspace_events
from app.jobs.store import JobEvent, Publisher
from app.logging import get_logger
from app.models import Job
from app.settings import Settings

log = get_logger(__name__)


class PermanentJobError(Exception):
    """Raised by a handler when retrying cannot help (bad payload, rejected by a provider)."""


class AttemptTimedOut(Exception):
    """The attempt ran past JOB_TIMEOUT_SECONDS: stopped, and counted as a failed attempt."""


class _LeaseLost(Exception):
    """The heartbeat found the job handed on (our lease expired): stop, record nothing."""


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
    """Announce a state change of `job` (a row just returned by a guarded UPDATE): the full
    event to its followers (`job:{id}`), a slim one to its workspace's (`workspace:{id}`).
    Every state change goes through here: the runner, the sweeper, cancellation, progress."""
    sends = [publisher.publish(jobs.job_channel(job.id), JobEvent.of(job).to_message())]
    if (message := workspace_events.message_of(job)) is not None:
        sends.append(publisher.publish(jobs.workspace_channel(message["workspace_id"]), message))
    # Side by side (one round trip, not two); each channel's order holds, as the next change
    # is published only once these are done.
    for outcome in await asyncio.gather(*sends, return_exceptions=True):
        if isinstance(outcome, Exception):
            log.warning("job_publish_failed", job_id=str(job.id), error=repr(outcome))


def backoff_seconds(attempt: int) -> float:
    return float(min(2**attempt, 300))


async def _supervise(
    task: asyncio.Task[dict[str, Any]],
    *,
    factory: async_sessionmaker[AsyncSession],
    job_id: uuid.UUID,
    attempt: int,
    lease_seconds: float,
    deadline: float,
    timeout_seconds: float,
) -> dict[str, Any]:
    """Wait for the handler, renewing the lease every third of it; stop it at the deadline
    (AttemptTimedOut) or when the lease is lost (_LeaseLost)."""
    beat = max(0.2, lease_seconds / 3)
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            await _stop(task)
            raise AttemptTimedOut(f"the attempt ran longer than {timeout_seconds:g} s")
        done, _ = await asyncio.wait({task}, timeout=min(beat, remaining))
        if done:
            return task.result()
        if time.monotonic() >= deadline:
            continue
        try:
            renewed = await jobs.renew_lease(factory, job_id, attempt, lease_seconds)
        except Exception as exc:
            # Postgres hiccup: keep working; the next beat tries again before the lease ends.
            log.warning("job_heartbeat_failed", job_id=str(job_id), error=repr(exc))
            continue
        if not renewed:
            await _stop(task)
            raise _LeaseLost


async def _call(handler: Handler, ctx: JobContext) -> dict[str, Any]:
    return await handler(ctx)


async def _stop(task: asyncio.Task[Any]) -> None:
    """Cancel the handler and wait until it has stopped (it may clean up)."""
    task.cancel()
    await asyncio.wait({task})
    if not task.cancelled():
        task.exception()  # retrieved: a failure while stopping is not worth a warning


async def run(
    job_id: uuid.UUID,
    *,
    factory: async_sessionmaker[AsyncSession],
    publisher: Publisher,
    enqueuer: jobs.Enqueuer | None,
    lease_seconds: float,
    handlers: Mapping[str, Handler],
    settings: Settings | None = None,
    attempts: int | None = None,
    timeout_seconds: float | None = None,
) -> str:
    """Run one attempt of `job_id`, if the row still has `attempts` started (when given: the
    arq job's view; a stale or duplicate arq job then does nothing). Returns what happened
    (for logs and tests)."""
    if timeout_seconds is None:
        timeout_seconds = settings.job_timeout_seconds if settings is not None else 300
    job = await jobs.claim(factory, job_id, lease_seconds, attempts)
    if job is None:
        return "skipped"  # finished, running elsewhere, out of attempts, or a stale arq job
    deadline = time.monotonic() + timeout_seconds
    await publish(publisher, job)
    attempt = job.attempts
    handler = handlers.get(job.kind)
    try:
        if handler is None:
            raise PermanentJobError(f"no handler for job kind {job.kind!r}")
        task = asyncio.create_task(
            _call(
                handler,
                JobContext(job=job, factory=factory, publisher=publisher, settings=settings),
            ),
            name=f"job:{job_id}:{attempt}",
        )
        try:
            result = await _supervise(
                task,
                factory=factory,
                job_id=job_id,
                attempt=attempt,
                lease_seconds=lease_seconds,
                deadline=deadline,
                timeout_seconds=timeout_seconds,
            )
        except asyncio.CancelledError:
            if time.monotonic() < deadline:
                await asyncio.shield(_stop(task))
            else:
                task.cancel()  # it ignored our stop at the deadline: do not wait on it again
            raise
    except _LeaseLost:
        log.warning("job_lease_lost", job_id=str(job_id), kind=job.kind, attempt=attempt)
        return "lost-lease"
    except asyncio.CancelledError:
        if time.monotonic() < deadline:
            # Worker shutdown: hand the job back, attempt not counted, so its re-queued arq
            # job runs it at once. Shielded: we are being cancelled.
            row = await asyncio.shield(jobs.release(factory, job_id, attempt))
            if row is not None:
                await asyncio.shield(publish(publisher, row))
            raise
        # Cancelled past our own deadline (arq's timeout, set longer, caught up with a
        # handler that ignored ours): a timeout, not a shutdown. Count it.
        await asyncio.shield(
            _failed(
                AttemptTimedOut(f"the attempt ran longer than {timeout_seconds:g} s"),
                job,
                attempt,
                factory=factory,
                publisher=publisher,
                enqueuer=enqueuer,
            )
        )
        raise
    except Exception as exc:
        return await _failed(
            exc, job, attempt, factory=factory, publisher=publisher, enqueuer=enqueuer
        )
    row = await jobs.succeed(factory, job_id, attempt, result)
    if row is None:
        return "lost-lease"
    await publish(publisher, row)
    return "succeeded"


async def _failed(
    exc: Exception,
    job: Job,
    attempt: int,
    *,
    factory: async_sessionmaker[AsyncSession],
    publisher: Publisher,
    enqueuer: jobs.Enqueuer | None,
) -> str:
    """Record a failed attempt: retry later with back-off while attempts remain."""
    permanent = isinstance(exc, PermanentJobError) or attempt >= job.max_attempts
    delay = None if permanent else backoff_seconds(attempt)
    log.warning(
        "job_attempt_failed",
        job_id=str(job.id),
        kind=job.kind,
        attempt=attempt,
        error=repr(exc),
        retry_in=delay,
    )
    message = str(exc) if isinstance(exc, PermanentJobError) else f"{type(exc).__name__}: {exc}"
    row = await jobs.fail(factory, job.id, attempt, message[:2000], retry_in_seconds=delay)
    if row is None:
        return "lost-lease"
    await publish(publisher, row)
    if delay is not None:
        await jobs.enqueue(
            enqueuer, job.id, row.attempts, defer_seconds=delay, generation=row.enqueue_generation
        )
    return "retrying" if delay is not None else "failed"
