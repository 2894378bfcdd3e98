"""What runs an arq worker process: WakingWorker (an arq worker woken when a job is
enqueued instead of polling its queue every few milliseconds, taking due jobs with one
Redis script), `serve` (a worker per queue in one process) and BatchingPublisher (events
published once per loop turn)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
from collections.abc import Callable
from typing import Any

from arq.constants import default_queue_name, in_progress_key_prefix
from arq.utils import timestamp_ms
from arq.worker import Worker

from app.infra.queue import PUBLISH_QUEUE, PUBLISH_WAKE_CHANNEL
from app.jobs.store import WAKE_CHANNEL
from app.logging import get_logger

log = get_logger(__name__)

# The channel that wakes each queue's workers (a message after an enqueue due now).
WAKE_CHANNELS = {default_queue_name: WAKE_CHANNEL, PUBLISH_QUEUE: PUBLISH_WAKE_CHANNEL}


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
