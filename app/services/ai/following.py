"""Following a generation: the stored state with the text so far, then every delta.

A subscriber arriving mid-stream gets the stored state (`catch_up`): each stage of the
attempt that already finished, with its whole text, then the current stage's text so far;
then every later delta. If the first live delta is ahead of what was stored, it waits for
the next flush and catches up again (app/services/ai/progress.py writes both).

While the hub is healthy a follower costs nothing while idle: no timer, no read. It reads
the stored state again only after a real gap, as jobEvents does (app/jobs/events.py): the
hub reported one (GAP), a state change skipped a sequence number, or the process's
JobWatcher found the stored sequence ahead of the stream for a whole period (a check).
Every read of stored state goes through one batched reader for the process (`_reads_for`):
N subscribers arriving together, or catching up together, cost a few statements.
"""

from __future__ import annotations

import asyncio
import time
import uuid
import weakref
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import any_, bindparam, select
from sqlalchemy.dialects.postgresql import ARRAY, UUID
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.auth import Principal
from app.errors import NotFound
from app.infra.batched_reads import BatchedReads
from app.infra.realtime import EventHub
from app.jobs.events import STORED_COLUMNS, Follower, JobWatcher, WatchCheck, watcher_for
from app.jobs.store import JobEvent, can_read_workspace, job_channel
from app.models import Generation, Job, JobStatus
from app.permissions import Action
from app.services.ai.progress import parse_stage

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


_SNAPSHOTS = (
    select(*STORED_COLUMNS, Generation.partial)
    .outerjoin(Generation, Generation.job_id == Job.id)
    .where(Job.id == any_(bindparam("ids", type_=ARRAY(UUID(as_uuid=True)))))
)


@dataclass(frozen=True)
class _Stored:
    """A job's stored state as one batched read found it (shared by every reader)."""

    snapshot: _Snapshot
    workspace_id: uuid.UUID | None
    kind: str


def _stored_of(row: Any) -> _Stored:
    job_id, workspace_id, kind, status, attempts, seq, progress, message, result, error = row[:10]
    partial = row[10] or {}
    stage, variation_index = parse_stage(message)
    same_attempt = partial.get("attempt") == attempts and status == JobStatus.RUNNING
    index = int(partial.get("index", 0)) if same_attempt else 0
    text = str(partial.get("text", "")) if same_attempt else None
    if same_attempt and partial.get("stage"):
        stage, variation_index = partial["stage"], partial.get("variation_index")
    done = tuple(
        (
            int(finished.get("end", 0)),
            ProgressEvent(
                job_id=job_id,
                status=status,
                attempt=attempts,
                sequence=seq,
                stage=finished.get("stage"),
                variation_index=finished.get("variation_index"),
                delta=None,
                text=str(finished.get("text", "")),
                progress=progress,
                result=None,
                error=None,
                catch_up=True,
            ),
        )
        for finished in (partial.get("done") or [] if same_attempt else [])
    )
    snapshot = _Snapshot(
        ProgressEvent(
            job_id=job_id,
            status=status,
            attempt=attempts,
            sequence=seq,
            stage=stage,
            variation_index=variation_index,
            delta=None,
            text=text,
            progress=progress,
            result=result if status == JobStatus.SUCCEEDED else None,
            error=error,
            catch_up=True,
        ),
        index,
        done,
    )
    return _Stored(snapshot, workspace_id, kind)


def _reads_for(factory: async_sessionmaker[AsyncSession]) -> BatchedReads[uuid.UUID, _Stored]:
    """The process's batched reader of generation jobs' stored state for this database:
    a subscribe storm on one job, or every follower's catch-up after a reconnect, costs a
    few statements, not one per subscriber."""
    reads = _reads.get(factory)
    if reads is None:

        async def read_many(ids: list[uuid.UUID]) -> dict[uuid.UUID, _Stored]:
            # A short session per read: never hold a pooled connection across a `yield`.
            async with factory() as session:
                rows = (await session.execute(_SNAPSHOTS, {"ids": ids})).all()
            return {row[0]: _stored_of(row) for row in rows}

        reads = _reads[factory] = BatchedReads(read_many, "generation-snapshots")
    return reads


_reads: weakref.WeakKeyDictionary[
    async_sessionmaker[AsyncSession], BatchedReads[uuid.UUID, _Stored]
] = weakref.WeakKeyDictionary()


async def _snapshot(
    factory: async_sessionmaker[AsyncSession], job_id: uuid.UUID
) -> _Snapshot | None:
    stored = await _reads_for(factory).read(job_id)
    return stored.snapshot if stored is not None else None


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
    watcher: JobWatcher | None = None,
) -> AsyncIterator[ProgressEvent]:
    """Yield the stored state with the text so far, then each delta and state change in
    order, until the job is final."""
    # Subscribe before reading the row so nothing published in between is missed. The
    # one (batched) read is both the visibility check and the stored state.
    async with hub.subscribe(job_channel(job_id)) as subscription:
        stored = await _reads_for(factory).read(job_id)
        if stored is None or not can_read_workspace(principal, stored.workspace_id):
            raise NotFound("No job with this id.")
        assert stored.workspace_id is not None
        principal.require(stored.workspace_id, Action.WORKSPACE_READ)
        if stored.kind not in kinds:
            raise NotFound("No job with this id.")
        snap: _Snapshot | None = stored.snapshot
        assert snap is not None
        for event in snap.events(snap.event.attempt, -1):
            yield event
        if snap.event.is_final:
            return
        sequence, attempt, index = snap.event.sequence, snap.event.attempt, snap.index
        # No timer of our own: the process's watcher checks the stored sequence for every
        # follower in one statement, and offers a check only when it stayed ahead of us.
        watch = watcher or watcher_for(hub, factory)
        me = Follower(subscription, sequence)
        watch.add(job_id, me)
        try:
            while True:
                message = await subscription.get()
                resync = not isinstance(message, dict)
                state: ProgressEvent | None = None
                if isinstance(message, dict) and message.get("delta") is None:
                    state = _from_state(message)
                    if state.sequence <= sequence:
                        continue
                    # The stream skipped a change (a lost publish): catch up from the row.
                    resync = state.sequence > sequence + 1
                if resync:
                    check = isinstance(message, WatchCheck)
                    ahead = message.ahead if isinstance(message, WatchCheck) else None
                    if ahead is not None and sequence >= ahead:
                        continue  # the events it was about came meanwhile
                    snap = await _snapshot(factory, job_id)
                    if snap is None:
                        return
                    moved = snap.event.sequence > sequence or snap.event.attempt != attempt
                    # GAP: deltas may be lost too; a check is only about the sequence.
                    if not moved and (check or snap.index <= index):
                        continue
                    for event in snap.events(attempt, index):
                        yield event
                    sequence, attempt, index = snap.event.sequence, snap.event.attempt, snap.index
                    me.last = sequence
                    if snap.event.is_final:
                        return
                    continue
                assert isinstance(message, dict)
                if state is not None:
                    sequence = me.last = state.sequence
                    if state.attempt != attempt:
                        attempt, index = state.attempt, 0
                    yield state
                    if state.is_final:
                        return
                    continue
                delta = message["delta"]
                delta_attempt, delta_index = int(delta["attempt"]), int(delta["index"])
                if delta_attempt < attempt or (delta_attempt == attempt and delta_index <= index):
                    continue  # already in a catch-up's text
                if delta_attempt > attempt:
                    attempt, index = delta_attempt, 0
                if delta_index > index + 1:
                    # Deltas published before we subscribed and after the last flush: wait
                    # for a flush that covers them, then catch up from it.
                    snap = await _wait_for_flush(factory, job_id, attempt, delta_index - 1)
                    if snap is None:
                        return
                    for event in snap.events(attempt, index):
                        yield event
                    sequence = me.last = max(sequence, snap.event.sequence)
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
        finally:
            watch.discard(job_id, me)


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
