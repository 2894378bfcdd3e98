"""Follow a workspace's connected accounts: each status change as it happens
(`socialAccountStatusChanged`), for the workspace's admins and members.

Events arrive on the `accounts:{workspace}` channel (app/services/publishing/refresher.py
publishes a refused token refresh there, `announce` the rest); each only says which
account changed, and the subscriber reads the account's row, so it sees what Postgres
holds. It starts with the accounts that need reconnecting (catch-up), and after missed
events (a gap) it reads every account changed since. The caller's role is read again at
each event: a member removed meanwhile is cut off.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.auth import Principal
from app.errors import Forbidden
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


async def may_follow(
    factory: async_sessionmaker[AsyncSession], principal: Principal, workspace_id: uuid.UUID
) -> bool:
    """The caller's role in the workspace as stored now (a stream outlives the roles its
    connection started with)."""
    async with factory() as session:
        if principal.user_id is not None:
            role = await session.scalar(
                select(Membership.role).where(
                    Membership.user_id == principal.user_id,
                    Membership.workspace_id == workspace_id,
                )
            )
        elif principal.api_key_id is not None:
            role = await session.scalar(
                select(ApiKey.role).where(
                    ApiKey.id == principal.api_key_id,
                    ApiKey.workspace_id == workspace_id,
                    ApiKey.revoked_at.is_(None),
                    or_(ApiKey.expires_at.is_(None), ApiKey.expires_at > func.now()),
                )
            )
        else:
            return False
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
                async with factory() as session:
                    found = await session.get(SocialAccount, account_id)
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
