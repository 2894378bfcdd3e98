"""Loading a row on behalf of a principal: the one way every service does it.

A row in a workspace the caller has no role in does not exist for them (NOT_FOUND, so ids
cannot be probed); inside their workspaces the action is checked (FORBIDDEN).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.auth import Principal
from app.errors import NotFound
from app.models import (
    AbTest,
    ApiKey,
    AudienceSegment,
    Campaign,
    Content,
    ContentVariation,
    ContentVersion,
    MediaAsset,
    ReviewLink,
    User,
    Workspace,
)
from app.pagination import Page, fetch_page, newest_first
from app.permissions import Action

T = TypeVar("T")

# What NOT_FOUND calls each kind of row ("No such <noun>.").
NOUNS: dict[type[Any], str] = {
    AbTest: "A/B test",
    ApiKey: "API key",
    AudienceSegment: "audience segment",
    Campaign: "campaign",
    Content: "content",
    ContentVariation: "variation",
    ContentVersion: "version",
    MediaAsset: "media",
    ReviewLink: "review link",
    Workspace: "workspace",
}


def not_found(model: type[Any]) -> NotFound:
    return NotFound(f"No such {NOUNS.get(model, model.__name__.lower())}.")


def workspace_of(row: Any) -> uuid.UUID:
    """The workspace a row belongs to (a workspace belongs to itself)."""
    scope: uuid.UUID = row.id if isinstance(row, Workspace) else row.workspace_id
    return scope


async def scoped_row(
    session: AsyncSession,
    model: type[T],
    row_id: uuid.UUID,
    principal: Principal,
    action: Action | None,
    *,
    for_update: bool = False,
    conceal: bool = True,
) -> T:
    """`model` row `row_id` if `principal` may do `action` in its workspace.

    `for_update` locks the row for the rest of the transaction. `conceal=False` is for
    operations addressed to a workspace (not hidden in the access table): a row of another
    workspace then answers FORBIDDEN like the workspace itself would.
    """
    row = await session.get(model, row_id, with_for_update=for_update)
    if row is None:
        raise not_found(model)
    workspace_id = workspace_of(row)
    if conceal and principal.role_in(workspace_id) is None:
        raise not_found(model)
    if action is not None:
        principal.require(workspace_id, action)
    return row


async def fetch_scoped(
    factory: async_sessionmaker[AsyncSession],
    model: type[T],
    row_id: uuid.UUID,
    principal: Principal,
    action: Action,
) -> T:
    """`scoped_row` in a session of its own, for reads."""
    async with factory() as session:
        return await scoped_row(session, model, row_id, principal, action)


async def workspace_page(
    factory: async_sessionmaker[AsyncSession],
    principal: Principal,
    model: Any,
    workspace_id: uuid.UUID,
    action: Action,
    *,
    first: int,
    after: str | None,
    where: Sequence[ColumnElement[bool]] = (),
) -> Page[Any]:
    """A newest-first page of a workspace's `model` rows, if `principal` may do `action`."""
    principal.require(workspace_id, action)
    query = select(model).where(model.workspace_id == workspace_id, *where)
    return await fetch_page(factory, query, newest_first(model), first=first, after=after)


async def own_user(
    session: AsyncSession, principal: Principal, *, for_update: bool = False
) -> User:
    """The signed-in caller's own account (API keys and anonymous callers are refused)."""
    user = await session.get(User, principal.require_user(), with_for_update=for_update)
    if user is None:
        raise NotFound("No such user.")
    return user
