"""arq WorkerSettings, built from app settings."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Mapping
from typing import Any

from arq.connections import RedisSettings
from redis.exceptions import RedisError

from app.db import create_engine, create_session_factory
from app.jobs import sweeper
from app.jobs.runner import Handler
from app.logging import configure_logging, get_logger
from app.settings import Settings, get_settings
from workers.tasks import HANDLERS, RedisPublisher, run_job

log = get_logger(__name__)


def worker_settings(
    settings: Settings | None = None, handlers: Mapping[str, Handler] = HANDLERS
) -> dict[str, Any]:
    """Keyword arguments for `arq.worker.Worker` / `run_worker`; `handlers` performs each
    job kind (tests add their own kinds)."""
    settings = settings or get_settings()
    if not settings.redis_url or not settings.database_url:
        raise SystemExit("smartcontent: DATABASE_URL and REDIS_URL must be set for the worker")

    async def on_startup(ctx: dict[str, Any]) -> None:
        engine = create_engine(
            str(settings.database_url), settings, application_name="smartcontent-worker"
        )
        ctx["settings"] = settings
        ctx["engine"] = engine
        ctx["session_factory"] = create_session_factory(engine)
        ctx["publisher"] = RedisPublisher(ctx["redis"])
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
        log.info("worker_started", host=socket.gethostname())

    async def on_shutdown(ctx: dict[str, Any]) -> None:
        task = ctx.pop("sweeper", None)
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        engine = ctx.get("engine")
        if engine is not None:
            await engine.dispose()
        log.info("worker_stopped")

    return {
        "functions": [run_job],
        "on_startup": on_startup,
        "on_shutdown": on_shutdown,
        "redis_settings": RedisSettings.from_dsn(settings.redis_url),
        "max_jobs": settings.worker_concurrency,
        # arq polls its queue; at its default 0.5 s that wait alone was most of the time a
        # generation took to reach its first token (bench/README.md).
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


def __getattr__(name: str) -> Any:
    """`WorkerSettings` for the plain `arq` CLI, built on first use from the environment."""
    if name == "WorkerSettings":
        return type("WorkerSettings", (), worker_settings())
    raise AttributeError(name)


def run(settings: Settings | None = None) -> None:
    from arq.worker import Worker

    settings = settings or get_settings()
    configure_logging(settings.log_level, settings.log_json)
    try:
        Worker(**worker_settings(settings)).run()
    except (RedisError, OSError) as exc:
        # arq's loop cannot outlive its Redis connection. Exit non-zero without a traceback:
        # the supervisor (`smartcontent dev`, systemd, Kubernetes) starts a new worker, and
        # the sweeper recovers whatever this one held.
        log.error("worker_lost_redis", error=repr(exc))
        raise SystemExit(1) from None
