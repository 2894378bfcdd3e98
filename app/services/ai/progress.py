"""Generated text streamed to subscribers as it arrives, and followed by late subscribers.

The worker publishes each delta on the job's channel (`job:{id}`) as a job event carrying
the row's current `seq` plus a `delta` object numbered per attempt (`index` 1, 2, ...).
Deltas do not advance the row's `event_seq` (a database write per token would be the
bottleneck), so job-event followers see them as already-covered repeats and skip them;
stage changes are ordinary progress events that do advance it.

A job publishes at most one delta every AI_DELTA_BATCH_SECONDS (chunks arriving sooner are
sent together; the first of a stage at once). The text so far is flushed to the generation
row (`partial`) every AI_PROGRESS_FLUSH_SECONDS and at each stage change. A subscriber
arriving mid-stream gets the stored state with the text so far (`catch_up`), then every
later delta; if the first live delta is ahead of what was stored, it waits for the next
flush and catches up again (app/services/ai/following.py).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from typing import Any

from sqlalchemy import func, update

from app.jobs import store as jobs
from app.jobs.runner import JobContext, publish
from app.jobs.store import JobEvent, job_channel
from app.logging import get_logger
from app.models import Generation, Job

log = get_logger(__name__)

# A stage's first deltas are stored as they go out: a client subscribing as its request
# returns often arrives just after them, and would wait for the next flush otherwise.
EARLY_STORES = 3


def stage_message(stage: str, variation_index: int | None) -> str:
    return stage if variation_index is None else f"{stage}:{variation_index}"


def parse_stage(message: str | None) -> tuple[str | None, int | None]:
    if not message:
        return None, None
    stage, _, index = message.partition(":")
    return stage, int(index) if index.isdigit() else None


class Streamer:
    """The worker side: stage changes, deltas, and flushing the text so far.

    A job publishes at most one delta every AI_DELTA_BATCH_SECONDS: chunks arriving sooner
    wait for that slot and go out together; the first chunk of a stage never waits.
    """

    def __init__(
        self,
        ctx: JobContext,
        generation_id: uuid.UUID,
        *,
        flush_seconds: float = 0.25,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._ctx = ctx
        self._clock = clock
        self._generation_id = generation_id
        self._flush_seconds = flush_seconds
        settings = ctx.settings
        self._batch_seconds = settings.ai_delta_batch_seconds if settings is not None else 0.0
        self._row: Job = ctx.job
        self.attempt = ctx.job.attempts
        self.index = 0  # deltas published in this attempt
        self.stage = "queued"
        self.variation_index: int | None = None
        self._text: list[str] = []  # the stage's published text
        # Stages of this attempt already finished, with their whole text and the index of
        # their last delta: a subscriber arriving later gets them too, not only the current.
        self._done: list[dict[str, Any]] = []
        self._pending: list[str] = []  # chunks waiting for their slot
        self._sent_at = 0.0  # when the last delta went out
        self._timer: asyncio.Task[None] | None = None  # waiting for the next slot
        self._timers: set[asyncio.Task[None]] = set()
        # One delta at a time, in order (the timer and the token loop both send).
        self._sending = asyncio.Lock()
        self._stored: tuple[int, str, int | None] | None = None  # what `partial` holds
        self._last_flush = clock()
        # The current row's event fields, which every delta message repeats: built once per
        # row (a stage change), not once per chunk.
        self._base: dict[str, Any] | None = None

    @property
    def text(self) -> str:
        return "".join(self._text + self._pending)

    async def begin(self, stage: str, variation_index: int | None, fraction: float) -> None:
        """A new stage: reset the text, store it, and publish the change as a job event."""
        await self._drain()  # the previous stage's last chunks go out under its name
        if self._text:
            self._done.append(
                {
                    "stage": self.stage,
                    "variation_index": self.variation_index,
                    "text": "".join(self._text),
                    "end": self.index,
                }
            )
        self.stage, self.variation_index = stage, variation_index
        self._text = []
        self._stored = None  # the stage's (empty) text is stored even if its name repeats
        # Both land before the stage's event and first delta; together (the first waits).
        _, row = await asyncio.gather(
            self.flush(force=True),
            jobs.report_progress(
                self._ctx.factory,
                self._row.id,
                self.attempt,
                fraction,
                stage_message(stage, variation_index),
            ),
        )
        if row is not None:
            self._row = row
            self._base = None
            await publish(self._ctx.publisher, row)

    async def delta(self, text: str) -> None:
        self._pending.append(text)
        wait = self._sent_at + self._batch_seconds - self._clock()
        if wait <= 0 or not self._text:
            await self._send()
        elif self._timer is None:
            self._timer = asyncio.create_task(self._send_later(wait), name="delta-batch")
            # The loop keeps only weak references to tasks: hold it until it is done.
            self._timers.add(self._timer)
            self._timer.add_done_callback(self._timers.discard)

    async def _send_later(self, wait: float) -> None:
        await asyncio.sleep(wait)
        self._timer = None  # from here on, _drain waits for this send instead of stopping it
        try:
            await self._send()
        except Exception as exc:  # the stage's end sends (and stores) again
            log.warning("delta_batch_failed", job_id=str(self._row.id), error=repr(exc))

    async def _drain(self) -> None:
        """Send what is waiting now and stop the timer (stage end, before a flush)."""
        timer, self._timer = self._timer, None
        if timer is not None:
            timer.cancel()
        await self._send()

    async def _send(self) -> None:
        async with self._sending:
            if not self._pending:
                return
            chunk = "".join(self._pending)
            self._pending = []
            self._text.append(chunk)
            self.index += 1
            self._sent_at = self._clock()
            if self._base is None:
                self._base = JobEvent.of(self._row).to_message()
            message = dict(self._base)
            message["delta"] = {
                "attempt": self.attempt,
                "index": self.index,
                "stage": self.stage,
                "variation_index": self.variation_index,
                "text": chunk,
            }
            try:
                await self._ctx.publisher.publish(job_channel(self._row.id), message)
            except Exception as exc:  # subscribers catch up from the flushed text
                log.warning("delta_publish_failed", job_id=str(self._row.id), error=repr(exc))
            early = len(self._text) <= EARLY_STORES
            if early or self._clock() - self._last_flush >= self._flush_seconds:
                await self._store()

    async def flush(self, *, force: bool = False) -> None:
        """Store the text so far if it changed since it was last stored: now (`force`) or
        once AI_PROGRESS_FLUSH_SECONDS have passed. What waits for its slot is published
        first, so the stored `index` covers exactly the stored text."""
        await self._drain()
        async with self._sending:
            due = force or self._clock() - self._last_flush >= self._flush_seconds
            if due and self._stored != self._position():
                await self._store()

    def _position(self) -> tuple[int, str, int | None]:
        return self.index, self.stage, self.variation_index

    async def _store(self) -> None:
        partial = {
            "attempt": self.attempt,
            "index": self.index,
            "stage": self.stage,
            "variation_index": self.variation_index,
            "text": "".join(self._text),
            "done": self._done,
        }
        # A cache for late subscribers, worthless after a crash (the attempt starts over):
        # one autocommit statement whose commit does not wait for a WAL fsync (set_config
        # local to its transaction). Fsyncs queued behind each other held up every chunk.
        async with self._ctx.factory() as session:
            connection = await session.connection(
                execution_options={"isolation_level": "AUTOCOMMIT"}
            )
            await connection.execute(
                update(Generation)
                .where(
                    Generation.id == self._generation_id,
                    func.set_config("synchronous_commit", "off", True) == "off",
                )
                .values(partial=partial)
            )
        self._stored = self._position()
        self._last_flush = self._clock()
