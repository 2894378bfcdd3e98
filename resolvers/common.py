"""Small helpers every resolver module uses."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any, TypeVar

import strawberry

from app.auth import Principal
from app.errors import ValidationFailed
from app.state import AppState
from schema.context import Context
from schema.types.errors import UserError

T = TypeVar("T")
Info = strawberry.Info[Context, Any]


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
