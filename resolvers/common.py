"""Small helpers every resolver module uses."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, TypeVar

import strawberry
from strawberry import relay

from app.auth import Principal
from app.errors import ValidationFailed
from app.pagination import Page
from app.state import AppState
from schema.context import Info
from schema.ids import parse_id
from schema.pagination import page_size
from schema.types.errors import UserError

T = TypeVar("T")

# Argument types shared by every domain's resolvers.
WorkspaceId = Annotated[
    relay.GlobalID, strawberry.argument(description="Global ID of the workspace.")
]
First = Annotated[int, strawberry.argument(description="Page size (at most 100).")]
After = Annotated[str | None, strawberry.argument(description="Cursor to start after.")]


async def attempt(call: Awaitable[T]) -> tuple[T | None, list[UserError]]:
    """Run a service call; input the caller can fix comes back as payload errors."""
    try:
        return await call, []
    except ValidationFailed as exc:
        return None, UserError.many(exc.errors)


def state_of(info: Info) -> AppState:
    return info.context.state


def principal_of(info: Info) -> Principal:
    return info.context.principal


def page_limit(info: Info) -> int:
    return info.context.state.settings.max_page_size


def workspace_of(workspace_id: relay.GlobalID) -> uuid.UUID:
    """The workspace a list or mutation argument names."""
    return parse_id(workspace_id, "Workspace", "workspaceId")


async def workspace_page(
    info: Info,
    fetch: Callable[..., Awaitable[Page[T]]],
    workspace_id: relay.GlobalID,
    first: int,
    after: str | None,
    **filters: Any,
) -> Page[T]:
    """One page of a workspace list: `fetch(state, principal, workspace, first=, after=,
    **filters)` with the page size checked against the configured maximum."""
    return await fetch(
        state_of(info),
        principal_of(info),
        workspace_of(workspace_id),
        first=page_size(first, page_limit(info)),
        after=after,
        **filters,
    )
