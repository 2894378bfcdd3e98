"""arq WorkerSettings, built from app settings, and the worker that `smartcontent worker` runs
(arq's, woken when a job is enqueued instead of polling its queue every few milliseconds)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Mapping
from typing import Any

from arq.connections import RedisSettings
from arq.cron import cron
from arq.worker import Worker, func
from redis.exceptions import RedisError

from app.db import create_engine, create_session_factory
from app.infra import outbound
from app.infra.storage import build_storage
from app.jobs import sweeper
from app.jobs.runner import Handler
from app.jobs.store import WAKE_CHANNEL
from app.logging import configure_logging, get_logger
from app.security.keys import load_keys
from app.services.analytics import metrics_collector, partitions, rollups
from app.services.publishing import refresher
from app.services.publishing import sweeper as publishing_sweeper
from app.services.publishing.delivery import Delivery
from app.settings import Settings, get_settings
from workers.tasks import (
    HANDLERS,
    RedisPublisher,
    publish_target,
    retrain_engagement_models,
    rollup_engagement,
    run_job,
)

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
        keys = load_keys(settings)
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
        log.info("worker_started", host=socket.gethostname())

    async def on_shutdown(ctx: dict[str, Any]) -> None:
        for name in (
            "sweeper",
            "publishing_sweeper",
            "token_refresher",
            "metrics_collector",
            "engagement_partitions",
            "engagement_rollups",
        ):
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
        engine = ctx.get("engine")
        if engine is not None:
            await engine.dispose()
        log.info("worker_stopped")

    return {
        "functions": [
            run_job,
            # An attempt stops itself at PUBLISH_ATTEMPT_TIMEOUT_SECONDS; arq's is a backstop.
            func(publish_target, timeout=settings.publish_attempt_timeout_seconds + 10),
            rollup_engagement,
        ],
        # Weekly, Monday 04:00 UTC; arq runs a cron once per time across workers.
        "cron_jobs": [cron(retrain_engagement_models, weekday="mon", hour=4, minute=0)],
        "on_startup": on_startup,
        "on_shutdown": on_shutdown,
        "redis_settings": RedisSettings.from_dsn(settings.redis_url),
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


class WakingWorker(Worker):
    """An arq worker that looks at its queue when a job is enqueued (a message on
    WAKE_CHANNEL, sent by `app.jobs.store.enqueue`) or one of its own jobs ends, and
    otherwise every `poll_delay` seconds (deferred retries, a lost wake-up).

    arq only polls, every `poll_delay` (0.5 s by default): that wait was most of the time a
    generation took to reach its first token (bench/README.md), and polling every 10 ms
    instead cost an idle worker 5 % of a core. Waking costs one Redis PUBLISH per enqueue
    and one queue read per wake-up; several wake-ups during one read make one more read.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._idle_poll = float(kwargs.pop("poll_delay", 0.5))
        super().__init__(*args, poll_delay=0, **kwargs)  # arq's loop; we wait in the poll
        self._wake = asyncio.Event()
        self._listener: asyncio.Task[None] | None = None
        self.listening = asyncio.Event()  # subscribed to wake-ups (tests wait for it)

    async def _poll_iteration(self) -> None:
        if self._listener is None:  # the Redis pool exists from the first poll on
            self._listener = asyncio.create_task(self._listen(), name="worker-wake")
        self._wake.clear()  # a wake-up during the read below makes the next read
        await super()._poll_iteration()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), self._idle_poll)

    async def run_job(self, job_id: str, score: int) -> None:
        try:
            await super().run_job(job_id, score)
        finally:
            self._wake.set()  # a slot is free: take the next queued job now

    async def _listen(self) -> None:
        backoff = 0.1
        while True:
            pubsub: Any = self.pool.pubsub()
            try:
                await pubsub.subscribe(WAKE_CHANNEL)
                self.listening.set()
                backoff = 0.1
                async for message in pubsub.listen():
                    if message.get("type") == "message":
                        self._wake.set()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # polling goes on meanwhile
                self.listening.clear()
                log.warning("worker_wake_listener_failed", error=repr(exc), retry_in=backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()

    async def close(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await listener
        await super().close()


def __getattr__(name: str) -> Any:
    """`WorkerSettings` for the plain `arq` CLI, built on first use from the environment."""
    if name == "WorkerSettings":
        return type("WorkerSettings", (), worker_settings())
    raise AttributeError(name)


def run(settings: Settings | None = None) -> None:
    settings = settings or get_settings()
    configure_logging(settings.log_level, settings.log_json)
    try:
        WakingWorker(**worker_settings(settings)).run()
    except (RedisError, OSError) as exc:
        # arq's loop cannot outlive its Redis connection. Exit non-zero without a traceback:
        # the supervisor (`smartcontent dev`, systemd, Kubernetes) starts a new worker, and
        # the sweeper recovers whatever this one held.
        log.error("worker_lost_redis", error=repr(exc))
        raise SystemExit(1) from None
