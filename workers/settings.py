"""arq WorkerSettings, built from app settings, and the worker that `smartcontent worker` runs
(arq's, woken when a job is enqueued instead of polling its queue every few milliseconds).

Two queues: arq's default one for durable jobs (`run_job`: generation, embeddings, ...) and
`arq:publish` for publishing attempts (`publish_target`), each consumed by its own arq
worker with its own concurrency, so a burst of one never delays the other.
`smartcontent worker` runs both in one process (`--queue jobs` or `--queue publish`: one).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import socket
from collections.abc import Callable, Mapping
from typing import Any

from arq.connections import RedisSettings
from arq.constants import default_queue_name, in_progress_key_prefix
from arq.utils import timestamp_ms
from arq.worker import Worker, func
from redis.exceptions import RedisError

from app.db import create_engine, create_session_factory
from app.infra import outbound
from app.infra.queue import PUBLISH_QUEUE, PUBLISH_WAKE_CHANNEL
from app.infra.storage import build_storage
from app.jobs import sweeper
from app.jobs.runner import Handler
from app.jobs.store import WAKE_CHANNEL
from app.logging import configure_logging, get_logger
from app.security.keys import load_keys
from app.services.publishing import refresher
from app.services.publishing import sweeper as publishing_sweeper
from app.services.publishing.delivery import Delivery
from app.settings import Settings, get_settings
from workers.tasks import HANDLERS, RedisPublisher, publish_target, run_job

log = get_logger(__name__)


def _redis_settings(settings: Settings) -> RedisSettings:
    if not settings.redis_url or not settings.database_url:
        raise SystemExit("smartcontent: DATABASE_URL and REDIS_URL must be set for the worker")
    return RedisSettings.from_dsn(settings.redis_url)


class BatchingPublisher:
    """Publishes events on the worker's Redis connection, those published during one turn
    of the event loop in one pipeline: dozens of concurrent attempts each announcing a state
    change cost one write instead of one each (a syscall per write was a large part of a
    busy worker's CPU). `publish` returns once its message is sent (or raises as a plain
    PUBLISH would), so one caller's messages keep their order."""

    def __init__(self, redis: Any) -> None:
        self._redis = redis
        self._pending: list[tuple[str, str, asyncio.Future[None]]] = []
        self._flushes: set[asyncio.Task[None]] = set()  # held: the loop keeps weak references

    async def publish(self, channel: str, message: dict[str, Any]) -> None:
        loop = asyncio.get_running_loop()
        sent: asyncio.Future[None] = loop.create_future()
        self._pending.append((channel, json.dumps(message, default=str), sent))
        if len(self._pending) == 1:
            loop.call_soon(self._start_flush)  # after the others ready in this turn
        await sent

    def _start_flush(self) -> None:
        task = asyncio.get_running_loop().create_task(self._flush())
        self._flushes.add(task)
        task.add_done_callback(self._flushes.discard)

    async def _flush(self) -> None:
        batch, self._pending = self._pending, []
        if not batch:
            return
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                for channel, text, _ in batch:
                    pipe.publish(channel, text)
                await pipe.execute()
        except Exception as exc:
            for *_, sent in batch:
                if not sent.done():
                    sent.set_exception(exc)
            return
        for *_, sent in batch:
            if not sent.done():
                sent.set_result(None)


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
        log.info("worker_started", host=socket.gethostname(), queue=default_queue_name)

    async def on_shutdown(ctx: dict[str, Any]) -> None:
        await _close(ctx, ("sweeper",))
        log.info("worker_stopped", queue=default_queue_name)

    return {
        "functions": [run_job],
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
WAKE_CHANNELS = {default_queue_name: WAKE_CHANNEL, PUBLISH_QUEUE: PUBLISH_WAKE_CHANNEL}


# Takes up to ARGV[3] due jobs of the queue KEYS[1] that no worker runs, among the first
# ARGV[2] due ones: sets each one's in-progress key (ARGV[4] prefix, ARGV[5] ms) as arq's
# start_jobs does, atomically (a script runs alone), and returns id, score, id, score...
_TAKE_SCRIPT = """
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'WITHSCORES', 'LIMIT', 0, ARGV[2])
local out = {}
local want = 2 * tonumber(ARGV[3])
for i = 1, #due, 2 do
  local key = ARGV[4] .. due[i]
  if redis.call('EXISTS', key) == 0 then
    redis.call('PSETEX', key, ARGV[5], '1')
    out[#out + 1] = due[i]
    out[#out + 1] = due[i + 1]
    if #out >= want then break end
  end
end
return out
"""


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
        queue_name = kwargs.get("queue_name", default_queue_name)
        self._wake_channel = kwargs.pop("wake_channel", None) or WAKE_CHANNELS.get(
            queue_name, WAKE_CHANNEL
        )
        super().__init__(*args, poll_delay=0, **kwargs)  # arq's loop; we wait in the poll
        self._wake = asyncio.Event()
        self._listener: asyncio.Task[None] | None = None
        self.listening = asyncio.Event()  # subscribed to wake-ups (tests wait for it)

    async def _poll_iteration(self) -> None:
        if self._listener is None:  # the Redis pool exists from the first poll on
            self._listener = asyncio.create_task(self._listen(), name="worker-wake")
        self._wake.clear()  # a wake-up during the read below makes the next read
        if self.burst:
            await super()._poll_iteration()
        else:
            await self._take_due()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), self._idle_poll)

    async def _take_due(self) -> None:
        """arq's poll, with arq's claim of each job done in Redis for all of them at once.

        Running jobs stay in arq's queue until they end, so under load its head is all
        running jobs: arq read `queue_read_limit` ids per poll and checked each in a WATCH
        transaction of four round trips, then claimed it (most of a busy worker's Redis
        time and syscalls). Here one script takes at most the free slots' worth of due jobs
        nobody runs and marks them in progress (the key arq's own start_jobs sets, so plain
        arq workers on the same queue still never run a job twice)."""
        free = self.max_jobs - self.job_counter
        if self.allow_pick_jobs and free > 0:
            redis: Any = self.pool  # redis-py types eval's reply as str and its args as str
            taken = await redis.eval(
                _TAKE_SCRIPT,
                1,
                self.queue_name,
                timestamp_ms(),
                self.queue_read_limit,
                free,
                in_progress_key_prefix,
                int(self.in_progress_timeout_s * 1000),
            )
            for i in range(0, len(taken), 2):
                job_id, score = taken[i].decode(), int(float(taken[i + 1]))
                await self.sem.acquire()  # never waits: at most `free` were taken
                self.job_counter += 1
                task = self.loop.create_task(self.run_job(job_id, score))
                task.add_done_callback(lambda _: self._release_sem_dec_counter_on_complete())
                self.tasks[job_id] = task
        if self.allow_abort_jobs:
            await self._cancel_aborted_jobs()
        for job_id, task in list(self.tasks.items()):
            if task.done():
                del self.tasks[job_id]
                task.result()  # as arq does: errors of run_job itself surface here
        await self.heart_beat()

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
                await pubsub.subscribe(self._wake_channel)
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


async def serve(
    configs: list[dict[str, Any]],
    *,
    stop_when: asyncio.Event | None = None,
    started: Callable[[list[WakingWorker]], None] | None = None,
) -> None:
    """Run a worker per config until SIGTERM/SIGINT or `stop_when` is set (each lets its
    running jobs finish, up to its `job_completion_wait`), or until one of them stops (the
    others are stopped the same way); the first error is raised. `started` is handed the
    workers (tests watch them)."""
    workers = [WakingWorker(**{**config, "handle_signals": False}) for config in configs]
    if started is not None:
        started(workers)
    loop = asyncio.get_running_loop()
    stopping = False

    def stop(signum: signal.Signals) -> None:
        nonlocal stopping
        if not stopping:
            stopping = True
            for worker in workers:
                worker.handle_sig_wait_for_completion(signum)

    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop, signum)
    runs = [asyncio.create_task(worker.async_run()) for worker in workers]
    stopper = asyncio.create_task((stop_when or asyncio.Event()).wait())
    try:
        await asyncio.wait([*runs, stopper], return_when=asyncio.FIRST_COMPLETED)
        stop(signal.SIGTERM)  # one stopped (signal or error): stop the others as well
        await asyncio.gather(*runs, return_exceptions=True)
    finally:
        stopper.cancel()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
        for worker in workers:
            with contextlib.suppress(asyncio.CancelledError):
                await worker.close()
    for task in runs:
        if not task.cancelled() and task.exception() is not None:
            raise task.exception()  # type: ignore[misc]
