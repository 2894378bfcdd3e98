"""arq task functions. Thin: ids in, services do the work, Postgres holds the state."""

from __future__ import annotations

import json
import uuid
from typing import Any

from app.logging import get_logger
from app.services import job_runner, jobs

log = get_logger(__name__)

# Importing the domain modules registers their job handlers.
import app.services.diagnostics  # noqa: E402
import app.services.embedding_jobs  # noqa: E402,F401


class RedisPublisher:
    """Publishes job events on the worker's Redis connection."""

    def __init__(self, redis: Any) -> None:
        self._redis = redis

    async def publish(self, channel: str, message: dict[str, Any]) -> None:
        await self._redis.publish(channel, json.dumps(message, default=str))


async def run_job(ctx: dict[str, Any], job_id: str) -> str:
    return await job_runner.run(
        uuid.UUID(job_id),
        factory=ctx["session_factory"],
        publisher=ctx["publisher"],
        enqueuer=ctx["redis"],
        lease_seconds=ctx["settings"].job_lease_seconds,
        settings=ctx["settings"],
    )


async def sweep(ctx: dict[str, Any]) -> int:
    """Re-enqueue overdue queued jobs and jobs whose worker died (lease expired)."""
    settings = ctx["settings"]
    due = await jobs.due_for_sweep(
        ctx["session_factory"], grace_seconds=settings.sweeper_interval_seconds
    )
    for job_id, attempts in due:
        await jobs.enqueue(ctx["redis"], job_id, attempts)
    if due:
        log.info("sweeper_requeued", count=len(due))
    return len(due)
