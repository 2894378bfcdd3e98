"""Loading a row on behalf of a principal: the one way every service does it.

A row in a workspace the caller has no role in does not exist for them (NOT_FOUND, so ids
cannot be probed); inside their workspaces the action is checked (FORBIDDEN).
"""

from __future__ import annotations

import uuid
from typing import Any, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from app.auth import Principal
from app.errors import NotFound
from app.models import (
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
from app.permissions import Action

T = TypeVar("T")

# What NOT_FOUND calls each kind of row ("No such <noun>.").
NOUNS: dict[type[Any], str] = {
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


async def own_user(
    session: AsyncSession, principal: Principal, *, for_update: bool = False
) -> User:
    """The signed-in caller's own account (API keys and anonymous callers are refused)."""
    user = await session.get(User, principal.require_user(), with_for_update=for_update)
    if user is None:
        raise NotFound("No such user.")
    return user
