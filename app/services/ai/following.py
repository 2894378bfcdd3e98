"""Following a generation: the stored state with the text so far, then every delta.

A subscriber arriving mid-stream gets the stored state (`catch_up`): each stage of the
attempt that already finished, with its whole text, then the current stage's text so far;
then every later delta. If the first live delta is ahead of what was stored, it waits for
the next flush and catches up again (app/services/ai/progress.py writes both).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.auth import Principal
from app.errors import NotFound
from app.infra.realtime import GAP, EventHub
from app.jobs import store as jobs
from app.jobs.store import JobEvent, job_channel
from app.models import Generation, Job, JobStatus
from app.services.ai.progress import parse_stage

RESYNC_SECONDS = 15.0


# How long a subscriber waits for a flush covering deltas it missed before it subscribed.
CATCH_UP_WAIT_SECONDS = 5.0


@dataclass(frozen=True)
class ProgressEvent:
    """One event of `generationProgress`."""

    job_id: uuid.UUID
    status: str
    attempt: int
    sequence: int
    stage: str | None
    variation_index: int | None
    delta: str | None
    text: str | None  # catch-up events: the current stage's text so far
    progress: float
    result: dict[str, Any] | None
    error: str | None
    catch_up: bool = False

    @property
    def is_final(self) -> bool:
        return JobStatus(self.status).is_final


@dataclass(frozen=True)
class _Snapshot:
    event: ProgressEvent
    index: int  # deltas of this attempt covered by `event.text`
    # Finished stages of this attempt: (index of their last delta, their catch-up event).
    done: tuple[tuple[int, ProgressEvent], ...] = ()

    def events(self, seen_attempt: int, seen_index: int) -> list[ProgressEvent]:
        """What a subscriber that has seen deltas up to `seen_index` of `seen_attempt` is
        missing: each finished stage it did not see to its end, then the current state."""
        missed = [
            event
            for end, event in self.done
            if self.event.attempt != seen_attempt or end > seen_index
        ]
        return [*missed, self.event]


async def _snapshot(
    factory: async_sessionmaker[AsyncSession], job_id: uuid.UUID
) -> _Snapshot | None:
    # A short session per read: never hold a pooled connection across a `yield`.
    async with factory() as session:
        row = (
            await session.execute(
                select(Job, Generation.partial)
                .outerjoin(Generation, Generation.job_id == Job.id)
                .where(Job.id == job_id)
            )
        ).first()
    if row is None:
        return None
    job, partial = row[0], row[1] or {}
    stage, variation_index = parse_stage(job.message)
    same_attempt = partial.get("attempt") == job.attempts and job.status == JobStatus.RUNNING
    index = int(partial.get("index", 0)) if same_attempt else 0
    text = str(partial.get("text", "")) if same_attempt else None
    if same_attempt and partial.get("stage"):
        stage, variation_index = partial["stage"], partial.get("variation_index")
    done = tuple(
        (
            int(finished.get("end", 0)),
            ProgressEvent(
                job_id=job.id,
                status=job.status,
                attempt=job.attempts,
                sequence=job.event_seq,
                stage=finished.get("stage"),
                variation_index=finished.get("variation_index"),
                delta=None,
                text=str(finished.get("text", "")),
                progress=job.progress,
                result=None,
                error=None,
                catch_up=True,
            ),
        )
        for finished in (partial.get("done") or [] if same_attempt else [])
    )
    return _Snapshot(
        ProgressEvent(
            job_id=job.id,
            status=job.status,
            attempt=job.attempts,
            sequence=job.event_seq,
            stage=stage,
            variation_index=variation_index,
            delta=None,
            text=text,
            progress=job.progress,
            result=job.result if job.status == JobStatus.SUCCEEDED else None,
            error=job.error,
            catch_up=True,
        ),
        index,
        done,
    )


def _from_state(message: dict[str, Any]) -> ProgressEvent:
    event = JobEvent.from_message(message)
    stage, variation_index = parse_stage(event.message)
    return ProgressEvent(
        job_id=event.job_id,
        status=event.status,
        attempt=event.attempt,
        sequence=event.seq,
        stage=stage,
        variation_index=variation_index,
        delta=None,
        text=None,
        progress=event.progress,
        result=event.result if event.status == JobStatus.SUCCEEDED else None,
        error=event.error,
    )


async def follow(
    factory: async_sessionmaker[AsyncSession],
    hub: EventHub,
    principal: Principal,
    job_id: uuid.UUID,
    kinds: frozenset[str],
    *,
    resync_seconds: float = RESYNC_SECONDS,
) -> AsyncIterator[ProgressEvent]:
    """Yield the stored state with the text so far, then each delta and state change in
    order, until the job is final."""
    job = await jobs.get_visible(factory, principal, job_id)
    if job.kind not in kinds:
        raise NotFound("No job with this id.")
    async with hub.subscribe(job_channel(job_id)) as subscription:
        snap = await _snapshot(factory, job_id)
        if snap is None:
            raise NotFound("No job with this id.")
        for event in snap.events(snap.event.attempt, -1):
            yield event
        if snap.event.is_final:
            return
        sequence, attempt, index = snap.event.sequence, snap.event.attempt, snap.index
        while True:
            try:
                message = await subscription.get(wait=resync_seconds)
            except TimeoutError:
                message = None
            if message is None or message is GAP:
                snap = await _snapshot(factory, job_id)
                if snap is None:
                    return
                moved = snap.event.sequence > sequence or snap.event.attempt != attempt
                if not moved and (message is None or snap.index <= index):
                    continue
                for event in snap.events(attempt, index):
                    yield event
                sequence, attempt, index = snap.event.sequence, snap.event.attempt, snap.index
                if snap.event.is_final:
                    return
                continue
            assert isinstance(message, dict)
            delta = message.get("delta")
            if delta is None:
                event = _from_state(message)
                if event.sequence <= sequence:
                    continue
                sequence = event.sequence
                if event.attempt != attempt:
                    attempt, index = event.attempt, 0
                yield event
                if event.is_final:
                    return
                continue
            delta_attempt, delta_index = int(delta["attempt"]), int(delta["index"])
            if delta_attempt < attempt or (delta_attempt == attempt and delta_index <= index):
                continue  # already in a catch-up's text
            if delta_attempt > attempt:
                attempt, index = delta_attempt, 0
            if delta_index > index + 1:
                # Deltas published before we subscribed and after the last flush: wait for
                # a flush that covers them, then catch up from it.
                snap = await _wait_for_flush(factory, job_id, attempt, delta_index - 1)
                if snap is None:
                    return
                for event in snap.events(attempt, index):
                    yield event
                sequence = max(sequence, snap.event.sequence)
                index = snap.index
                if snap.event.is_final:
                    return
                if delta_index <= index:
                    continue
            index = delta_index
            yield ProgressEvent(
                job_id=job_id,
                status=JobStatus.RUNNING,
                attempt=attempt,
                sequence=sequence,
                stage=delta.get("stage"),
                variation_index=delta.get("variation_index"),
                delta=str(delta["text"]),
                text=None,
                progress=float(message.get("progress", 0.0)),
                result=None,
                error=None,
            )


async def _wait_for_flush(
    factory: async_sessionmaker[AsyncSession], job_id: uuid.UUID, attempt: int, needed: int
) -> _Snapshot | None:
    deadline = time.monotonic() + CATCH_UP_WAIT_SECONDS
    while True:
        snap = await _snapshot(factory, job_id)
        if snap is None or snap.event.is_final:
            return snap
        covered = snap.event.attempt != attempt or snap.index >= needed
        if covered or time.monotonic() > deadline:
            return snap
        await asyncio.sleep(0.05)
