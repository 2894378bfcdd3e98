"""Follow a workspace's connected accounts: each status change as it happens
(`socialAccountStatusChanged`), for the workspace's admins and members.

Events arrive on the `accounts:{workspace}` channel (app/services/publishing/refresher.py
publishes a refused token refresh there, `announce` the rest); each only says which
account changed, and the subscriber reads the account's row, so it sees what Postgres
holds. It starts with the accounts that need reconnecting (catch-up), and after missed
events (a gap) it reads every account changed since. The caller's role is read again at
each event: a member removed meanwhile is cut off.

Both reads of an event go through batched readers for the process (`_reads`): the N
followers of a workspace woken by one event cost two statements together (their roles,
the account's row), not two each.
"""

from __future__ import annotations

import uuid
import weakref
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import any_, bindparam, func, or_, select, tuple_
from sqlalchemy.dialects.postgresql import ARRAY, UUID
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.auth import Principal
from app.errors import Forbidden
from app.infra.batched_reads import BatchedReads
from app.infra.realtime import GAP, EventHub
from app.logging import get_logger
from app.models import AccountStatus, ApiKey, Membership, PostTarget, SocialAccount
from app.permissions import Action, Role, allows
from app.services.publishing.events import EventPublisher
from app.services.publishing.refresher import channel

if TYPE_CHECKING:  # at run time transitions imports these modules
    from app.services.publishing.transitions import Target as AttemptTarget

log = get_logger(__name__)

# Who follows: the workspace's admins and members (not viewers).
FOLLOW = Action.CONTENT_EDIT
MAX_SNAPSHOT = 100
MAX_SEEN = 10_000


@dataclass(frozen=True)
class AccountChange:
    account: SocialAccount
    catch_up: bool


async def announce(
    publisher: EventPublisher | None, workspace_id: uuid.UUID, account_id: uuid.UUID
) -> None:
    """Tell followers an account's status may have changed (after the change committed).
    Best effort: a lost message is caught up after the next gap or from the row."""
    if publisher is None:
        return
    try:
        await publisher.publish(
            channel(workspace_id),
            {"account_id": str(account_id), "workspace_id": str(workspace_id)},
        )
    except Exception as exc:
        log.warning("account_event_publish_failed", account_id=str(account_id), error=repr(exc))


async def announce_account_of(
    publisher: EventPublisher | None, target: PostTarget | AttemptTarget
) -> None:
    """`announce` the account a target publishes through (its token was just refused)."""
    await announce(publisher, target.workspace_id, target.social_account_id)


# Who asks, in which workspace: ("user", user id, workspace) or ("key", api key id, ...).
_Asker = tuple[str, uuid.UUID, uuid.UUID]

_ACCOUNTS = select(SocialAccount).where(
    SocialAccount.id == any_(bindparam("ids", type_=ARRAY(UUID(as_uuid=True))))
)


class _Reads:
    """The process's batched readers for one database: accounts by id, and roles."""

    def __init__(self, factory: async_sessionmaker[AsyncSession]) -> None:
        self._factory = factory
        self.accounts: BatchedReads[uuid.UUID, SocialAccount] = BatchedReads(
            self._accounts, "account-event-rows"
        )
        self.roles: BatchedReads[_Asker, str] = BatchedReads(self._roles, "account-event-roles")

    async def _accounts(self, ids: list[uuid.UUID]) -> dict[uuid.UUID, SocialAccount]:
        # A short session per read: never hold a pooled connection across a `yield`.
        async with self._factory() as session:
            rows = await session.scalars(_ACCOUNTS, {"ids": ids})
            return {row.id: row for row in rows.all()}

    async def _roles(self, askers: list[_Asker]) -> dict[_Asker, str]:
        users = [(who, ws) for kind, who, ws in askers if kind == "user"]
        keys = [(who, ws) for kind, who, ws in askers if kind == "key"]
        found: dict[_Asker, str] = {}
        async with self._factory() as session:
            if users:
                rows = await session.execute(
                    select(Membership.user_id, Membership.workspace_id, Membership.role).where(
                        tuple_(Membership.user_id, Membership.workspace_id).in_(users)
                    )
                )
                found.update({("user", u, w): role for u, w, role in rows.all()})
            if keys:
                rows = await session.execute(
                    select(ApiKey.id, ApiKey.workspace_id, ApiKey.role).where(
                        tuple_(ApiKey.id, ApiKey.workspace_id).in_(keys),
                        ApiKey.revoked_at.is_(None),
                        or_(ApiKey.expires_at.is_(None), ApiKey.expires_at > func.now()),
                    )
                )
                found.update({("key", k, w): role for k, w, role in rows.all()})
        return found


_readers: weakref.WeakKeyDictionary[async_sessionmaker[AsyncSession], _Reads] = (
    weakref.WeakKeyDictionary()
)


def _reads(factory: async_sessionmaker[AsyncSession]) -> _Reads:
    reads = _readers.get(factory)
    if reads is None:
        reads = _readers[factory] = _Reads(factory)
    return reads


async def may_follow(
    factory: async_sessionmaker[AsyncSession], principal: Principal, workspace_id: uuid.UUID
) -> bool:
    """The caller's role in the workspace as stored now (a stream outlives the roles its
    connection started with)."""
    if principal.user_id is not None:
        asker: _Asker = ("user", principal.user_id, workspace_id)
    elif principal.api_key_id is not None:
        asker = ("key", principal.api_key_id, workspace_id)
    else:
        return False
    role = await _reads(factory).roles.read(asker)
    return role is not None and allows(Role.parse(role), FOLLOW)


async def _needing_attention(session: AsyncSession, workspace_id: uuid.UUID) -> list[SocialAccount]:
    rows = await session.scalars(
        select(SocialAccount)
        .where(
            SocialAccount.workspace_id == workspace_id,
            SocialAccount.status == AccountStatus.NEEDS_RECONNECT.value,
        )
        .order_by(SocialAccount.updated_at, SocialAccount.id)
        .limit(MAX_SNAPSHOT)
    )
    return list(rows.all())


async def _changed_since(
    session: AsyncSession, workspace_id: uuid.UUID, since: datetime
) -> list[SocialAccount]:
    rows = await session.scalars(
        select(SocialAccount)
        .where(SocialAccount.workspace_id == workspace_id, SocialAccount.updated_at >= since)
        .order_by(SocialAccount.updated_at, SocialAccount.id)
        .limit(MAX_SNAPSHOT)
    )
    return list(rows.all())


async def follow(
    factory: async_sessionmaker[AsyncSession],
    hub: EventHub,
    principal: Principal,
    workspace_id: uuid.UUID,
) -> AsyncIterator[AccountChange]:
    principal.require(workspace_id, FOLLOW)
    seen: dict[uuid.UUID, tuple[str, datetime]] = {}
    async with hub.subscribe(channel(workspace_id)) as subscription:
        # Short sessions only: never hold a pooled connection across a `yield`.
        async with factory() as session:
            now = await session.scalar(select(func.now()))
            snapshot = await _needing_attention(session, workspace_id)
        assert isinstance(now, datetime)
        since = now
        for row in snapshot:
            seen[row.id] = (row.status, row.updated_at)
            yield AccountChange(row, True)
        async for message in subscription:
            if not await may_follow(factory, principal, workspace_id):
                raise Forbidden("You can no longer follow this workspace's accounts.")
            if message is GAP:
                async with factory() as session:
                    rows = await _changed_since(session, workspace_id, since)
                changes = [AccountChange(row, True) for row in rows]
            else:
                assert isinstance(message, dict)
                try:
                    account_id = uuid.UUID(str(message.get("account_id")))
                except ValueError:
                    continue
                found = await _reads(factory).accounts.read(account_id)
                if found is None or found.workspace_id != workspace_id:
                    continue
                changes = [AccountChange(found, False)]
            for change in changes:
                row = change.account
                state = (row.status, row.updated_at)
                if seen.get(row.id) == state:
                    continue  # already delivered this state
                if len(seen) >= MAX_SEEN:
                    seen.clear()
                seen[row.id] = state
                since = max(since, row.updated_at)
                yield change
