"""The process's one watcher of workspace job streams (app/jobs/workspace_events.py):
pub/sub is at-most-once, so every period the stored sequences of every job the streams
show are compared with what each delivered, and every caller's access is re-checked, in
a few statements for all of them instead of two per stream."""

from __future__ import annotations

import asyncio
import uuid
import weakref
from typing import Any, Protocol

from sqlalchemy import and_, any_, bindparam, func, or_, select, tuple_
from sqlalchemy.dialects.postgresql import ARRAY, UUID
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.auth import Principal
from app.infra.realtime import EventHub, Signal, Subscription, WakeSlicer
from app.logging import get_logger
from app.models import ApiKey, Job, JobStatus, Membership
from app.permissions import Action, Role, allows

log = get_logger(__name__)

ACTIVE = (JobStatus.QUEUED.value, JobStatus.RUNNING.value)


class Delivered(Protocol):
    """What a stream delivered (workspace_events._Pacer)."""

    def behind(
        self, stored: dict[uuid.UUID, int], active: set[uuid.UUID]
    ) -> dict[uuid.UUID, int]: ...

    def unfinished(self) -> list[uuid.UUID]: ...


def _uuids(name: str) -> Any:
    return bindparam(name, type_=ARRAY(UUID(as_uuid=True)))


async def readable_by(
    session: AsyncSession, callers: list[tuple[Principal, uuid.UUID]]
) -> list[bool]:
    """`may_read` for many (caller, workspace) pairs: one statement per kind of caller."""
    users = {(p.user_id, w) for p, w in callers if p.user_id is not None}
    keys = {(p.api_key_id, w) for p, w in callers if p.user_id is None and p.api_key_id}
    roles: dict[tuple[uuid.UUID, uuid.UUID], str] = {}
    if users:
        rows = await session.execute(
            select(Membership.user_id, Membership.workspace_id, Membership.role).where(
                tuple_(Membership.user_id, Membership.workspace_id).in_(users)
            )
        )
        roles.update({(who, ws): role for who, ws, role in rows})
    if keys:
        now = func.now()
        rows = await session.execute(
            select(ApiKey.id, ApiKey.workspace_id, ApiKey.role).where(
                tuple_(ApiKey.id, ApiKey.workspace_id).in_(keys),
                ApiKey.revoked_at.is_(None),
                or_(ApiKey.expires_at.is_(None), ApiKey.expires_at > now),
            )
        )
        roles.update({(key, ws): role for key, ws, role in rows})
    answers = []
    for principal, workspace_id in callers:
        who = principal.user_id if principal.user_id is not None else principal.api_key_id
        role = roles.get((who, workspace_id)) if who is not None else None
        answers.append(role is not None and allows(Role.parse(role), Action.WORKSPACE_READ))
    return answers


class Resync(Signal):
    """From the watcher: stored state stayed ahead of this stream a whole period."""

    __slots__ = ()


class Cutoff(Signal):
    """From the watcher: the caller may no longer read the workspace."""

    __slots__ = ()


class Stream:
    """One follow_workspace() as the watcher sees it."""

    __slots__ = ("ahead", "pacer", "principal", "subscription", "workspace_id")

    def __init__(
        self,
        principal: Principal,
        workspace_id: uuid.UUID,
        subscription: Subscription,
        pacer: Delivered,
    ) -> None:
        self.principal = principal
        self.workspace_id = workspace_id
        self.subscription = subscription
        self.pacer = pacer
        self.ahead: dict[uuid.UUID, int] = {}  # what the last round found it behind on


_ACTIVE_JOBS = select(Job.id, Job.workspace_id, Job.event_seq, Job.status).where(
    or_(
        and_(Job.workspace_id == any_(_uuids("workspaces")), Job.status.in_(ACTIVE)),
        Job.id == any_(_uuids("ids")),
    )
)


class WorkspaceWatcher:
    """Every `period` seconds, for every workspace stream of this process: one statement
    for the stored sequences of all the jobs they show, one per kind of caller for their
    access; a resync only to a stream that stayed behind a whole period, queued behind
    every message already published (`hub.fence`). Runs only while someone follows."""

    def __init__(
        self, factory: async_sessionmaker[AsyncSession], hub: EventHub, period: float
    ) -> None:
        self._factory = factory
        self._hub = hub
        self._period = period
        self._streams: set[Stream] = set()
        self._task: asyncio.Task[None] | None = None
        self._sleeping = False
        self._slicer = WakeSlicer()
        self.rounds = 0

    def add(self, stream: Stream) -> None:
        self._streams.add(stream)
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="workspace-watcher")

    def discard(self, stream: Stream) -> None:
        self._streams.discard(stream)
        if not self._streams and self._task is not None and self._sleeping:
            self._task.cancel()  # nobody left; only ever while asleep, never mid-statement
            self._task = None

    async def _run(self) -> None:
        while self._streams:
            self._sleeping = True
            try:
                await asyncio.sleep(self._period)
            finally:
                self._sleeping = False
            if not self._streams:
                break
            try:
                await self._round()
            except Exception as exc:  # Postgres hiccup: the next round tries again
                log.warning("workspace_watch_failed", error=repr(exc))
        self._task = None

    async def _round(self) -> None:
        streams = list(self._streams)
        workspaces = list({stream.workspace_id for stream in streams})
        ids = list({job for stream in streams for job in stream.pacer.unfinished()})
        async with self._factory() as session:
            rows = (
                await session.execute(_ACTIVE_JOBS, {"workspaces": workspaces, "ids": ids})
            ).all()
            readable = await readable_by(session, [(s.principal, s.workspace_id) for s in streams])
        self.rounds += 1
        stored: dict[uuid.UUID, dict[uuid.UUID, int]] = {}
        active: set[uuid.UUID] = set()
        for job_id, workspace_id, seq, status in rows:
            if workspace_id is not None:
                stored.setdefault(workspace_id, {})[job_id] = seq
            if status in ACTIVE:
                active.add(job_id)
        cut: list[Stream] = []
        due: list[Stream] = []
        for stream, may in zip(streams, readable, strict=True):
            if not may:
                cut.append(stream)
                continue
            behind = stream.pacer.behind(stored.get(stream.workspace_id, {}), active)
            if any(behind.get(job, -1) >= seq for job, seq in stream.ahead.items()):
                due.append(stream)
                stream.ahead = {}
            else:
                stream.ahead = behind
        for stream in cut:
            stream.subscription.offer(Cutoff())
            await self._slicer.woke()
        # Behind every message already published: a resync must not overtake late events.
        if due and await self._hub.fence():
            for stream in due:
                stream.subscription.offer(Resync())
                await self._slicer.woke()


_watchers: weakref.WeakKeyDictionary[
    EventHub, dict[tuple[async_sessionmaker[AsyncSession], float], WorkspaceWatcher]
] = weakref.WeakKeyDictionary()


def watcher_for(
    hub: EventHub, factory: async_sessionmaker[AsyncSession], period: float
) -> WorkspaceWatcher:
    """The process's one watcher for this hub, database and period."""
    by_key = _watchers.setdefault(hub, {})
    watcher = by_key.get((factory, period))
    if watcher is None:
        watcher = by_key[(factory, period)] = WorkspaceWatcher(factory, hub, period)
    return watcher
