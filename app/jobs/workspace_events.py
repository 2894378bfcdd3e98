"""Follow every job of one workspace: a snapshot from Postgres, then each state change.

Publishing happens in one place: `app/jobs/runner.py publish`, which every state change of a
job goes through (the claim, progress and stage changes, success, failure and retry, the
release at shutdown, the sweeper's hand-overs, cancelGeneration), sends the full event on
`job:{id}` and, for a job of a workspace, this module's slim message on `workspace:{id}`: no
result, no generated text. Text deltas go to the job's channel only, so a workspace with
many generations costs its dashboards a few messages per job, not one per token.

A subscriber gets, in order:
1. a snapshot: every QUEUED or RUNNING job of the workspace, plus, when the client passes
   `since`, every job that finished after it (a reconnecting dashboard learns what ended
   while it was away). Subscribed before reading, so nothing published meanwhile is missed.
2. live changes, several per event when they arrive together. A change of status or attempt
   is delivered at once; a progress-only change of a job is delivered at most once per
   `progress_seconds` (the latest one wins, it is never dropped).
3. after a gap (queue overflow, Redis reconnect) a new snapshot, `since` the newest change
   delivered. Pub/sub is at-most-once, so the process's one `WorkspaceWatcher` compares,
   every `resync_seconds`, the stored sequence of every job its streams show (their
   workspaces' active jobs and those they believe active) with what each stream delivered,
   in ONE statement for all of them; a stream that stayed behind a whole period re-reads
   its jobs (a lost final event is late by at most two periods, never missing).

Each job's `seq` only grows, so a change at or below what was delivered for that job is
dropped here (and clients may do the same). The same watcher re-checks, each period and in
one statement per kind of caller, that every stream's caller may still read its workspace
(a removed member or revoked key is cut off).
"""

from __future__ import annotations

import time
import uuid
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, or_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.auth import Principal
from app.errors import Forbidden
from app.infra.realtime import GAP, EventHub
from app.jobs.store import workspace_channel
from app.jobs.workspace_watch import ACTIVE, Cutoff, Resync, Stream, watcher_for
from app.models import Job, JobStatus
from app.permissions import Action

MESSAGE_TYPE = "job"
FINAL = (JobStatus.SUCCEEDED.value, JobStatus.FAILED.value, JobStatus.CANCELLED.value)
# Jobs in one snapshot, newest change first when there are more (the event says so).
SNAPSHOT_LIMIT = 500
# `since` is compared with rows stamped by Postgres's transaction clock: a change committed
# just after the client's last event may carry an earlier stamp. Repeats are harmless.
SINCE_MARGIN = timedelta(seconds=10)
# Per subscriber: jobs whose last delivered sequence is remembered (older ones forgotten).
REMEMBERED_JOBS = 10_000


@dataclass(frozen=True)
class JobState:
    """One job as the workspace stream shows it."""

    job_id: uuid.UUID
    kind: str
    status: str
    attempt: int
    seq: int
    progress: float
    message: str | None
    error: str | None
    content_id: uuid.UUID | None
    updated_at: datetime
    # Per subscriber, never published: read from Postgres (snapshot, resync), not a change.
    catch_up: bool = False

    @property
    def is_final(self) -> bool:
        return JobStatus(self.status).is_final

    def to_message(self, workspace_id: uuid.UUID) -> dict[str, Any]:
        return {
            "type": MESSAGE_TYPE,
            "workspace_id": str(workspace_id),
            "job_id": str(self.job_id),
            "kind": self.kind,
            "status": self.status,
            "attempt": self.attempt,
            "seq": self.seq,
            "progress": self.progress,
            "message": self.message,
            "error": self.error,
            "content_id": str(self.content_id) if self.content_id else None,
            "updated_at": self.updated_at.isoformat(),
        }

    @classmethod
    def from_message(cls, data: dict[str, Any]) -> JobState:
        return cls(
            job_id=uuid.UUID(data["job_id"]),
            kind=str(data["kind"]),
            status=str(data["status"]),
            attempt=int(data["attempt"]),
            seq=int(data["seq"]),
            progress=float(data["progress"]),
            message=data.get("message"),
            error=data.get("error"),
            content_id=_uuid(data.get("content_id")),
            updated_at=datetime.fromisoformat(data["updated_at"]),
        )


def _uuid(value: Any) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value)) if value else None
    except ValueError:
        return None


def state_of(job: Job) -> JobState:
    """The stream's view of a job row (a succeeded generation names its saved content)."""
    result = job.result if isinstance(job.result, dict) else {}
    succeeded = job.status == JobStatus.SUCCEEDED
    return JobState(
        job_id=job.id,
        kind=job.kind,
        status=job.status,
        attempt=job.attempts,
        seq=job.event_seq,
        progress=job.progress,
        message=job.message,
        error=job.error,
        content_id=_uuid(result.get("content_id")) if succeeded else None,
        updated_at=job.updated_at,
    )


def message_of(job: Job) -> dict[str, Any] | None:
    """What the runner publishes on the job's workspace channel (None: no workspace)."""
    if job.workspace_id is None:
        return None
    return state_of(job).to_message(job.workspace_id)


@dataclass(frozen=True)
class WorkspaceEvent:
    jobs: list[JobState]
    # True: `jobs` holds every active job (and those finished since `since`); reconcile.
    snapshot: bool = False
    truncated: bool = False  # the snapshot held more than SNAPSHOT_LIMIT jobs


_COLUMNS = (
    Job.id,
    Job.kind,
    Job.status,
    Job.attempts,
    Job.event_seq,
    Job.progress,
    Job.message,
    Job.error,
    Job.result["content_id"].astext,
    Job.updated_at,
)


def _row_state(row: Any) -> JobState:
    job_id, kind, status, attempts, seq, progress, message, error, content_id, updated = row
    return JobState(
        job_id=job_id,
        kind=kind,
        status=status,
        attempt=attempts,
        seq=seq,
        progress=progress,
        message=message,
        error=error,
        content_id=_uuid(content_id) if status == JobStatus.SUCCEEDED else None,
        updated_at=updated,
        catch_up=True,
    )


async def read_snapshot(
    factory: async_sessionmaker[AsyncSession],
    workspace_id: uuid.UUID,
    *,
    since: datetime | None = None,
    also: Iterable[uuid.UUID] = (),
    limit: int = SNAPSHOT_LIMIT,
) -> tuple[list[JobState], bool]:
    """The workspace's active jobs, those finished after `since` and the jobs in `also`,
    oldest change first; and whether `limit` left some out. Columns only: never a result."""
    wanted: list[ColumnElement[bool]] = [Job.status.in_(ACTIVE)]
    if since is not None:
        wanted.append(Job.updated_at >= since - SINCE_MARGIN)
    if ids := list(also):
        wanted.append(Job.id.in_(ids))
    query = (
        select(*_COLUMNS)
        .where(Job.workspace_id == workspace_id, or_(*wanted))
        .order_by(Job.updated_at.desc())
        .limit(limit + 1)
    )
    # A short session: never hold a pooled connection across a `yield`.
    async with factory() as session:
        rows = (await session.execute(query)).all()
    states = [_row_state(row) for row in rows[:limit]]
    states.reverse()
    return states, len(rows) > limit


class _Pacer:
    """Per subscriber: what was delivered for each job, and the progress changes held back
    until their job's next slot."""

    def __init__(self, progress_seconds: float, clock: Callable[[], float]) -> None:
        self._interval = progress_seconds
        self._clock = clock
        # job -> (seq, status, attempt, delivered at); least recently changed first.
        self._sent: OrderedDict[uuid.UUID, tuple[int, str, int, float]] = OrderedDict()
        self._held: dict[uuid.UUID, JobState] = {}
        self.newest: datetime | None = None  # the latest `updated_at` delivered

    def offer(self, state: JobState, out: list[JobState]) -> None:
        """Append `state` to `out` if it is due now, hold it if it is a progress change
        that came too soon, drop it if an equal or newer one was already delivered."""
        held = self._held.get(state.job_id)
        if held is not None and held.seq >= state.seq:
            return
        last = self._sent.get(state.job_id)
        if last is not None and state.seq <= last[0]:
            return
        if (
            last is None
            or state.status != last[1]
            or state.attempt != last[2]
            or self._clock() - last[3] >= self._interval
        ):
            self._held.pop(state.job_id, None)
            out[:] = [s for s in out if s.job_id != state.job_id]  # superseded in this batch
            out.append(state)
        else:
            self._held[state.job_id] = state

    def due(self, out: list[JobState]) -> None:
        """Move held progress changes whose slot has come into `out`."""
        now = self._clock()
        for job_id, state in list(self._held.items()):
            if now - self._sent[job_id][3] >= self._interval:
                del self._held[job_id]
                out.append(state)

    def next_due(self) -> float | None:
        if not self._held:
            return None
        return min(self._sent[job_id][3] for job_id in self._held) + self._interval

    def delivered(self, states: list[JobState]) -> None:
        now = self._clock()
        for state in states:
            self._sent[state.job_id] = (state.seq, state.status, state.attempt, now)
            held = self._held.get(state.job_id)
            if held is not None and held.seq <= state.seq:
                del self._held[state.job_id]
            self._sent.move_to_end(state.job_id)
            if self.newest is None or state.updated_at > self.newest:
                self.newest = state.updated_at
        while len(self._sent) > REMEMBERED_JOBS:
            job_id, _ = self._sent.popitem(last=False)
            self._held.pop(job_id, None)

    def behind(self, stored: dict[uuid.UUID, int], active: set[uuid.UUID]) -> dict[uuid.UUID, int]:
        """The jobs (of `stored`: job -> stored sequence) this stream has not caught up
        with: an active job it never delivered, or one it delivered at a lower sequence."""
        found = {}
        for job_id, seq in stored.items():
            sent = self._sent.get(job_id)
            if sent is None:
                if job_id in active and job_id not in self._held:
                    found[job_id] = seq
            elif sent[0] < seq and job_id not in self._held:
                found[job_id] = seq
        return found

    def unfinished(self) -> list[uuid.UUID]:
        """Jobs last seen active: a resync checks they did not finish unheard."""
        active = [job for job, sent in self._sent.items() if not JobStatus(sent[1]).is_final]
        return active[-SNAPSHOT_LIMIT:]


async def follow_workspace(
    factory: async_sessionmaker[AsyncSession],
    hub: EventHub,
    principal: Principal,
    workspace_id: uuid.UUID,
    *,
    since: datetime | None = None,
    progress_seconds: float = 1.0,
    resync_seconds: float = 30.0,
    clock: Callable[[], float] = time.monotonic,
) -> AsyncIterator[WorkspaceEvent]:
    """Yield the snapshot, then the workspace's job changes (see the module docstring).
    Never ends by itself; raises Forbidden once the caller may no longer read it."""
    principal.require(workspace_id, Action.WORKSPACE_READ)
    pacer = _Pacer(progress_seconds, clock)
    async with hub.subscribe(workspace_channel(workspace_id)) as subscription:
        states, truncated = await read_snapshot(factory, workspace_id, since=since)
        pacer.delivered(states)
        yield WorkspaceEvent(states, snapshot=True, truncated=truncated)
        watcher = watcher_for(hub, factory, resync_seconds)
        me = Stream(principal, workspace_id, subscription, pacer)
        watcher.add(me)
        try:
            while True:
                due = pacer.next_due()
                try:
                    message = await subscription.get(
                        wait=None if due is None else max(0.0, due - clock())
                    )
                except TimeoutError:
                    message = None
                batch: list[JobState] = []
                gap = resync = False
                while message is not None:
                    if message is GAP:
                        gap = True
                    elif isinstance(message, Cutoff):
                        raise Forbidden("You can no longer read this workspace.")
                    elif isinstance(message, Resync):
                        resync = True
                    elif isinstance(message, dict) and message.get("type") == MESSAGE_TYPE:
                        pacer.offer(JobState.from_message(message), batch)
                    message = subscription.get_nowait()  # what else arrived: one event for all
                if gap:
                    states, truncated = await read_snapshot(
                        factory, workspace_id, since=pacer.newest, also=pacer.unfinished()
                    )
                    pacer.delivered(states)
                    yield WorkspaceEvent(states, snapshot=True, truncated=truncated)
                    continue
                if resync:
                    stored, _ = await read_snapshot(factory, workspace_id, also=pacer.unfinished())
                    for state in stored:
                        pacer.offer(state, batch)
                pacer.due(batch)
                if batch:
                    pacer.delivered(batch)
                    yield WorkspaceEvent(batch)
        finally:
            watcher.discard(me)
