"""Resolved principals, cached in-process by credential, dropped everywhere on a change.

A request's credential (access token or API key) resolves to a Principal with one statement
(app.auth). Here the result is kept for a few seconds (PRINCIPAL_CACHE_SECONDS), keyed by
a SHA-256 of the credential, never the credential itself, and never past the token's or
key's own expiry; failures are not kept (each still counts as a guess, see admission).

Revocation stays immediate. Every committed ORM change to what a principal is made of
(users, memberships, workspaces, API keys: a password change's token version, a role, a
membership added or removed, 2FA, a plan, a key revoked or rotated, an account or workspace
deleted) is noticed by Session hooks below, whatever service made it: the committing
process drops the entries at once and publishes the change on Redis
(`principals:invalidate`, through the hub), so every other API process drops them within
milliseconds. While that channel is not live (hub disconnected, listener not subscribed)
entries are trusted only PRINCIPAL_CACHE_OFFLINE_SECONDS; after a gap (reconnect,
overflow) every entry is dropped, as messages may have been missed.

Sign-out and refresh-token reuse revoke refresh tokens only: an access token stays valid
until it expires (or the token version changes), with or without this cache.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import time
import uuid
import weakref
from collections.abc import Iterable
from dataclasses import dataclass, replace
from itertools import chain
from typing import Any

from sqlalchemy import Engine, event
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import ORMExecuteState, Session, UOWTransaction

from app.auth import PRINCIPALS_UNCHANGED, Principal, RequestMeta, resolve
from app.infra.realtime import GAP, EventHub
from app.logging import get_logger
from app.models import ApiKey, Membership, User, Workspace

log = get_logger(__name__)

CHANNEL = "principals:invalidate"
MAX_ENTRIES = 10_000
_CHANGES = "principal_changes"
_TABLES = frozenset(t.__tablename__ for t in (User, Membership, Workspace, ApiKey))


@dataclass(frozen=True, slots=True)
class Changes:
    """What a transaction changed: principals of these users, of these workspaces (their
    members' roles, their API keys), or of everyone (a bulk statement)."""

    users: frozenset[uuid.UUID] = frozenset()
    workspaces: frozenset[uuid.UUID] = frozenset()
    everything: bool = False

    def message(self, origin: str) -> dict[str, Any]:
        return {
            "origin": origin,
            "users": [str(u) for u in self.users],
            "workspaces": [str(w) for w in self.workspaces],
            "all": self.everything,
        }

    @classmethod
    def from_message(cls, message: dict[str, Any]) -> Changes:
        return cls(
            frozenset(uuid.UUID(u) for u in message.get("users", ())),
            frozenset(uuid.UUID(w) for w in message.get("workspaces", ())),
            bool(message.get("all")),
        )


@dataclass(frozen=True, slots=True)
class _Entry:
    principal: Principal  # with an empty RequestMeta: each request gets its own
    resolved_at: float  # time.monotonic()
    expires_at: float | None  # unix time: the token's or key's own expiry

    def concerns(self, changes: Changes) -> bool:
        principal = self.principal
        return (
            changes.everything
            or (principal.user_id is not None and principal.user_id in changes.users)
            or not changes.workspaces.isdisjoint(principal.access)
        )


class PrincipalCache:
    def __init__(
        self,
        factory: async_sessionmaker[AsyncSession],
        secret: str,
        hub: EventHub,
        *,
        seconds: float,
        offline_seconds: float,
    ) -> None:
        self.factory = factory
        self.secret = secret
        self.hub = hub
        self.seconds = seconds
        self.offline_seconds = min(offline_seconds, seconds)
        self._entries: dict[bytes, _Entry] = {}
        # Bumped by every invalidation: a resolution that started before one is not kept.
        self._generation = 0
        self._subscribed = False
        self._task: asyncio.Task[None] | None = None
        self._publishing: set[asyncio.Task[None]] = set()
        # Names this process's messages: it dropped their entries when it committed.
        self._origin = uuid.uuid4().hex

    async def start(self, engine: Engine) -> None:
        """Listen for other processes' changes; announce this engine's commits."""
        _caches[engine] = self
        if self.seconds > 0 and self._task is None:
            self._task = asyncio.create_task(self._listen(), name="principal-invalidations")

    async def stop(self) -> None:
        for engine, cache in list(_caches.items()):
            if cache is self:
                del _caches[engine]
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._publishing:
            await asyncio.gather(*self._publishing, return_exceptions=True)

    @property
    def live(self) -> bool:
        """Whether other processes' invalidations reach this one now."""
        return self._subscribed and self.hub.connected.is_set()

    async def authenticate(
        self, authorization: str | None, meta: RequestMeta, *, fresh: bool = False
    ) -> Principal:
        """app.auth.authenticate, without its statement for a credential seen lately;
        `fresh`: read it from the database anyway (and keep what it finds)."""
        if not authorization or self.seconds <= 0:
            principal, _ = await resolve(self.factory, self.secret, authorization, meta)
            return principal
        key = hashlib.sha256(authorization.encode()).digest()
        entry = None if fresh else self._entries.get(key)
        if entry is not None:
            trusted = self.seconds if self.live else self.offline_seconds
            if time.monotonic() - entry.resolved_at < trusted and (
                entry.expires_at is None or time.time() < entry.expires_at
            ):
                # Its own access dict: an operation may add a role it just gained
                # (workspaces.teams.joined), which must not reach the entry.
                cached = entry.principal
                return replace(cached, meta=meta, access=dict(cached.access))
            del self._entries[key]
        generation = self._generation
        resolved_at = time.monotonic()
        principal, expires = await resolve(self.factory, self.secret, authorization, meta)
        if generation == self._generation and principal.is_authenticated:
            if len(self._entries) >= MAX_ENTRIES:
                self._evict()
            self._entries[key] = _Entry(
                replace(principal, meta=_NO_META, access=dict(principal.access)),
                resolved_at,
                expires.timestamp() if expires is not None else None,
            )
        return principal

    def invalidate(self, changes: Changes) -> None:
        self._generation += 1
        if changes.everything:
            self._entries.clear()
            return
        for key in [k for k, e in self._entries.items() if e.concerns(changes)]:
            del self._entries[key]

    def committed(self, changes: Changes) -> None:
        """A commit through this process's engine: drop at once here, announce elsewhere."""
        self.invalidate(changes)
        try:
            task = asyncio.get_running_loop().create_task(self._publish(changes))
        except RuntimeError:  # no loop (a synchronous script): others rely on expiry
            return
        self._publishing.add(task)
        task.add_done_callback(self._publishing.discard)

    async def _publish(self, changes: Changes) -> None:
        try:
            await self.hub.publish(CHANNEL, changes.message(self._origin))
        except Exception as exc:  # other processes fall back to their entries' expiry
            log.warning("principal_invalidation_unpublished", error=repr(exc))

    def _evict(self) -> None:
        now = time.monotonic()
        for key in [k for k, e in self._entries.items() if now - e.resolved_at >= self.seconds]:
            del self._entries[key]
        while len(self._entries) >= MAX_ENTRIES:  # oldest first (insertion order)
            del self._entries[next(iter(self._entries))]

    async def _listen(self) -> None:
        while True:
            try:
                async with self.hub.subscribe(CHANNEL) as subscription:
                    self._subscribed = True
                    async for message in subscription:
                        if message is GAP or not isinstance(message, dict):
                            self.invalidate(Changes(everything=True))  # some may be lost
                        elif message.get("origin") != self._origin:
                            self.invalidate(Changes.from_message(message))
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("principal_invalidations_lost", error=repr(exc))
                self.invalidate(Changes(everything=True))
            finally:
                self._subscribed = False
            await asyncio.sleep(1.0)


_NO_META = RequestMeta()
# Which cache hears about commits through which engine (the app's; tests run several).
_caches: weakref.WeakKeyDictionary[Engine, PrincipalCache] = weakref.WeakKeyDictionary()


def _pending(session: Session) -> dict[str, Any]:
    changes: dict[str, Any] = session.info.setdefault(
        _CHANGES, {"users": set(), "workspaces": set(), "everything": False}
    )
    return changes


def _touched(objects: Iterable[object]) -> tuple[set[uuid.UUID], set[uuid.UUID]]:
    users: set[uuid.UUID] = set()
    workspaces: set[uuid.UUID] = set()
    for obj in objects:
        if isinstance(obj, User):
            users.add(obj.id)
        elif isinstance(obj, Membership):
            users.add(obj.user_id)
        elif isinstance(obj, Workspace):
            workspaces.add(obj.id)
        elif isinstance(obj, ApiKey):
            workspaces.add(obj.workspace_id)
    return users, workspaces


@event.listens_for(Session, "after_flush")
def _after_flush(session: Session, _flush: UOWTransaction) -> None:
    users, workspaces = _touched(chain(session.new, session.dirty, session.deleted))
    if users or workspaces:
        pending = _pending(session)
        pending["users"] |= users
        pending["workspaces"] |= workspaces


@event.listens_for(Session, "do_orm_execute")
def _bulk_statement(state: ORMExecuteState) -> None:
    if not (state.is_update or state.is_delete) or state.execution_options.get(
        PRINCIPALS_UNCHANGED
    ):
        return
    table = getattr(state.statement, "table", None)
    if getattr(table, "name", None) in _TABLES:
        _pending(state.session)["everything"] = True  # rare: a workspace or account deleted


@event.listens_for(Session, "after_commit")
def _after_commit(session: Session) -> None:
    pending = session.info.pop(_CHANGES, None)
    if pending is None:
        return
    cache = _caches.get(session.bind) if isinstance(session.bind, Engine) else None
    if cache is not None:
        cache.committed(
            Changes(
                frozenset(pending["users"]),
                frozenset(pending["workspaces"]),
                pending["everything"],
            )
        )


@event.listens_for(Session, "after_rollback")
def _after_rollback(session: Session) -> None:
    session.info.pop(_CHANGES, None)
