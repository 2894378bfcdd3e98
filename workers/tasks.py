"""arq task functions. Thin: ids in, services do the work, Postgres holds the state."""

from __future__ import annotations

import json
import uuid
from typing import Any

from app.jobs import runner as job_runner
from app.jobs import sweeper
from app.jobs.registry import combine
from app.jobs.runner import Handler
from app.jobs.sweeper import SweepReport
from app.logging import get_logger
from app.services.ai import editing, generate_job, personalization, variants
from app.services.analytics import engagement_model, rollups
from app.services.content import embedding, text_metrics
from app.services.ops import diagnostics
from app.services.outgoing import mail as outgoing_mail
from app.services.outgoing import sending as outgoing_webhooks
from app.services.publishing import comments
from app.services.publishing import delivery as publishing
from app.services.publishing import sweeper as publishing_sweeper

log = get_logger(__name__)

# Every domain's job kinds, listed explicitly: a domain whose table is missing here has
# no worker (tests/jobs/test_registry.py checks every enqueued kind has a handler).
HANDLERS: dict[str, Handler] = combine(
    diagnostics.JOB_HANDLERS,
    embedding.JOB_HANDLERS,
    generate_job.JOB_HANDLERS,
    editing.JOB_HANDLERS,
    text_metrics.JOB_HANDLERS,
    personalization.JOB_HANDLERS,
    variants.JOB_HANDLERS,
    engagement_model.JOB_HANDLERS,
    outgoing_webhooks.JOB_HANDLERS,
    outgoing_mail.JOB_HANDLERS,
    comments.JOB_HANDLERS,
)


class RedisPublisher:
    """Publishes job events on the worker's Redis connection."""

    def __init__(self, redis: Any) -> None:
        self._redis = redis

    async def publish(self, channel: str, message: dict[str, Any]) -> None:
        await self._redis.publish(channel, json.dumps(message, default=str))


async def run_job(ctx: dict[str, Any], job_id: str, attempts: int | None = None) -> str:
    settings = ctx["settings"]
    return await job_runner.run(
        uuid.UUID(job_id),
        factory=ctx["session_factory"],
        publisher=ctx["publisher"],
        enqueuer=ctx["redis"],
        lease_seconds=settings.job_lease_seconds,
        timeout_seconds=settings.job_timeout_seconds,
        handlers=ctx["handlers"],
        settings=settings,
        attempts=attempts,
    )


async def publish_target(ctx: dict[str, Any], target_id: str, attempts: int) -> str:
    """One publishing attempt of a scheduled post's target (app/services/publishing)."""
    return await publishing.run(ctx["delivery"], uuid.UUID(target_id), attempts)


async def rollup_engagement(ctx: dict[str, Any]) -> int:
    """Add pending engagement deltas to the rollups (requested after each ingest)."""
    return await rollups.apply_pending(ctx["session_factory"])


async def sweep_publishing(ctx: dict[str, Any]) -> publishing_sweeper.SweepReport:
    """One publishing sweeper pass with the worker's connections."""
    settings = ctx["settings"]
    return await publishing_sweeper.sweep_once(
        ctx["session_factory"],
        ctx["redis"],
        ctx.get("publisher"),
        grace_seconds=settings.sweeper_interval_seconds,
        batch=settings.publish_sweep_batch,
    )


async def sweep(ctx: dict[str, Any]) -> SweepReport:
    """One sweeper pass with the worker's connections (the worker runs it on a timer)."""
    return await sweeper.sweep_once(
        ctx["session_factory"],
        ctx["redis"],
        ctx.get("publisher"),
        grace_seconds=ctx["settings"].sweeper_interval_seconds,
    )


async def retrain_engagement_models(ctx: dict[str, Any]) -> int:
    """The weekly cron: a training job per workspace with history, and the instance prior."""
    return await engagement_model.queue_weekly(
        ctx["session_factory"], ctx["redis"], ctx["settings"].job_max_attempts
    )
