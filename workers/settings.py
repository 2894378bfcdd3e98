"""arq WorkerSettings, built from app settings, and `run`, what `smartcontent worker` runs
(the workers themselves are workers/runtime.py's WakingWorker).

Two queues: arq's default one for durable jobs (`run_job`: generation, embeddings, ...) and
`arq:publish` for publishing attempts (`publish_target`), each consumed by its own arq
worker with its own concurrency, so a burst of one never delays the other.
`smartcontent worker` runs both in one process (`--queue jobs` or `--queue publish`: one).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Mapping
from typing import Any

from arq.connections import RedisSettings
from arq.constants import default_queue_name
from arq.cron import cron
from arq.worker import func
from redis.exceptions import RedisError

from app.db import create_engine, create_session_factory
from app.infra import outbound
from app.infra.queue import PUBLISH_QUEUE
from app.infra.storage import build_storage
from app.jobs import sweeper
from app.jobs.runner import Handler
from app.logging import configure_logging, get_logger
from app.security.keys import load_keys
from app.services.analytics import metrics_collector, partitions, rollups
from app.services.publishing import refresher
from app.services.publishing import sweeper as publishing_sweeper
from app.services.publishing.delivery import Delivery
from app.settings import Settings, get_settings
from workers.runtime import BatchingPublisher, serve
from workers.tasks import (
    HANDLERS,
    RedisPublisher,
    publish_target,
    retrain_engagement_models,
    rollup_engagement,
    run_job,
)

log = get_logger(__name__)


def _redis_settings(settings: Settings) -> RedisSettings:
    if not settings.redis_url or not settings.database_url:
        raise SystemExit("smartcontent: DATABASE_URL and REDIS_URL must be set for the worker")
    return RedisSettings.from_dsn(settings.redis_url)


async def _open_database(ctx: dict[str, Any], settings: Settings, *, batching: bool) -> None:
    engine = create_engine(
        str(settings.database_url), settings, application_name="smartcontent-worker"
    )
    ctx["settings"] = settings
    ctx["engine"] = engine
    ctx["session_factory"] = create_session_factory(engine)
    redis = ctx["redis"]
    ctx["publisher"] = BatchingPublisher(redis) if batching else RedisPublisher(redis)


async def _close(ctx: dict[str, Any], tasks: tuple[str, ...]) -> None:
    for name in tasks:
        task = ctx.pop(name, None)
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    engine = ctx.get("engine")
    if engine is not None:
        await engine.dispose()


def worker_settings(
    settings: Settings | None = None, handlers: Mapping[str, Handler] = HANDLERS
) -> dict[str, Any]:
    """Keyword arguments for `arq.worker.Worker` / `run_worker` on the jobs queue (arq's
    default, `run_job`: generation, embeddings, ...); `handlers` performs each job kind
    (tests add their own kinds). Posts have their own queue: `publish_worker_settings`."""
    settings = settings or get_settings()
    redis_settings = _redis_settings(settings)

    async def on_startup(ctx: dict[str, Any]) -> None:
        await _open_database(ctx, settings, batching=False)
        ctx["handlers"] = handlers
        # Its own timer, not an arq job: a backlog in the queue cannot delay it.
        ctx["sweeper"] = asyncio.create_task(
            sweeper.run_forever(
                ctx["session_factory"],
                ctx["redis"],
                ctx["publisher"],
                interval_seconds=settings.sweeper_interval_seconds,
                grace_seconds=settings.sweeper_interval_seconds,
            ),
            name="sweeper",
        )
        keys = load_keys(settings)
        ctx["metrics_collector"] = metrics_collector.start(
            ctx["session_factory"], settings, keys.box, ctx["publisher"]
        )
        # Engagement analytics: monthly partitions ahead (now, then hourly) and the rollup
        # sweep behind the jobs each ingest requests.
        ctx["engagement_partitions"] = asyncio.create_task(
            partitions.run_forever(
                ctx["session_factory"], settings.engagement_partition_months_ahead
            ),
            name="engagement-partitions",
        )
        ctx["engagement_rollups"] = asyncio.create_task(
            rollups.run_forever(ctx["session_factory"], settings.engagement_rollup_sweep_seconds),
            name="engagement-rollups",
        )
        log.info("worker_started", host=socket.gethostname(), queue=default_queue_name)

    async def on_shutdown(ctx: dict[str, Any]) -> None:
        await _close(
            ctx,
            ("sweeper", "metrics_collector", "engagement_partitions", "engagement_rollups"),
        )
        log.info("worker_stopped", queue=default_queue_name)

    return {
        "functions": [run_job, rollup_engagement],
        # Weekly, Monday 04:00 UTC; arq runs a cron once per time across workers.
        "cron_jobs": [cron(retrain_engagement_models, weekday="mon", hour=4, minute=0)],
        "queue_name": default_queue_name,
        "on_startup": on_startup,
        "on_shutdown": on_shutdown,
        "redis_settings": redis_settings,
        "max_jobs": settings.worker_concurrency,
        # A plain arq worker polls its queue this often; WakingWorker (what `smartcontent
        # worker` runs) polls when woken and only falls back to this period.
        "poll_delay": settings.worker_poll_seconds,
        # The runner stops an attempt at JOB_TIMEOUT_SECONDS itself (and counts it); arq's
        # timeout is only a backstop. arq re-runs a killed worker's job after this + 10 s:
        # by then the sweeper has handed the row on, and the claim's guard skips it.
        "job_timeout": settings.job_timeout_seconds + settings.job_lease_seconds,
        # SIGTERM: stop taking jobs, let running ones finish this long, then cancel (re-queued).
        "job_completion_wait": settings.graceful_shutdown_seconds,
        "keep_result": 60,
        "max_tries": 1000,  # retries are ours (jobs.fail + enqueue); arq only re-runs on shutdown
    }


def publish_worker_settings(settings: Settings | None = None) -> dict[str, Any]:
    """Keyword arguments for an arq worker on the publish queue (`publish_target`), with
    the publishing sweeper and the token refresher."""
    settings = settings or get_settings()
    redis_settings = _redis_settings(settings)

    async def on_startup(ctx: dict[str, Any]) -> None:
        await _open_database(ctx, settings, batching=True)
        keys = load_keys(settings)
        # One client per worker process: its pool keeps connections to each platform alive
        # across attempts (a new TLS connection per post cost more than the post).
        ctx["delivery"] = Delivery(
            factory=ctx["session_factory"],
            settings=settings,
            http=outbound.client(settings, max_connections=settings.publish_http_connections),
            box=keys.box,
            storage=build_storage(settings, keys.signing_secret),
            events=ctx["publisher"],
            enqueuer=ctx["redis"],
        )
        ctx["publishing_sweeper"] = asyncio.create_task(
            publishing_sweeper.run_forever(
                ctx["session_factory"],
                ctx["redis"],
                ctx["publisher"],
                interval_seconds=settings.sweeper_interval_seconds,
                grace_seconds=settings.sweeper_interval_seconds,
                batch=settings.publish_sweep_batch,
            ),
            name="publishing-sweeper",
        )
        ctx["refresh_http"] = outbound.client(settings, timeout=settings.oauth_timeout_seconds)
        ctx["token_refresher"] = asyncio.create_task(
            refresher.run_forever(
                ctx["session_factory"], settings, keys.box, ctx["refresh_http"], ctx["publisher"]
            ),
            name="token-refresher",
        )
        log.info("worker_started", host=socket.gethostname(), queue=PUBLISH_QUEUE)

    async def on_shutdown(ctx: dict[str, Any]) -> None:
        for name in ("publishing_sweeper", "token_refresher"):
            task = ctx.pop(name, None)
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        refresh_http = ctx.pop("refresh_http", None)
        if refresh_http is not None:
            await refresh_http.aclose()
        delivery = ctx.pop("delivery", None)
        if delivery is not None:
            await delivery.http.aclose()
        await _close(ctx, ())
        log.info("worker_stopped", queue=PUBLISH_QUEUE)

    concurrency = settings.publish_worker_concurrency
    return {
        # An attempt stops itself at PUBLISH_ATTEMPT_TIMEOUT_SECONDS; arq's is a backstop.
        "functions": [func(publish_target, timeout=settings.publish_attempt_timeout_seconds + 10)],
        "queue_name": PUBLISH_QUEUE,
        "on_startup": on_startup,
        "on_shutdown": on_shutdown,
        "redis_settings": redis_settings,
        # Attempts mostly wait on the platform (and hold no database connection meanwhile).
        "max_jobs": concurrency,
        # Due jobs read per wake-up: enough to skip the running ones at the queue's head.
        "queue_read_limit": max(2 * concurrency, 100),
        "poll_delay": settings.worker_poll_seconds,
        "job_timeout": settings.publish_attempt_timeout_seconds + 10,
        "job_completion_wait": settings.graceful_shutdown_seconds,
        # Postgres holds the outcome; a result key per post is only Redis memory and one
        # more write (and the sweeper treats a missing job as "enqueue it", which is safe:
        # the claim's guard makes a duplicate a no-op).
        "keep_result": 0,
        "max_tries": 1000,
    }


# The queues `smartcontent worker` consumes: both by default, or one (`--queue`), so that
# jobs and posts can also have workers of their own.
QUEUES = {"jobs": worker_settings, "publish": publish_worker_settings}


def __getattr__(name: str) -> Any:
    """`WorkerSettings` (jobs) and `PublishWorkerSettings` (posts) for the plain `arq` CLI,
    built on first use from the environment."""
    if name == "WorkerSettings":
        return type("WorkerSettings", (), worker_settings())
    if name == "PublishWorkerSettings":
        return type("PublishWorkerSettings", (), publish_worker_settings())
    raise AttributeError(name)


def run(settings: Settings | None = None, queues: tuple[str, ...] = tuple(QUEUES)) -> None:
    """`smartcontent worker`: one WakingWorker per queue in `queues`, in this process."""
    settings = settings or get_settings()
    configure_logging(settings.log_level, settings.log_json)
    try:
        asyncio.run(serve([QUEUES[name](settings) for name in queues]))
    except (RedisError, OSError) as exc:
        # arq's loop cannot outlive its Redis connection. Exit non-zero without a traceback:
        # the supervisor (`smartcontent dev`, systemd, Kubernetes) starts a new worker, and
        # the sweepers recover whatever this one held.
        log.error("worker_lost_redis", error=repr(exc))
        raise SystemExit(1) from None
