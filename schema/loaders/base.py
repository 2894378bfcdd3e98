"""The shapes every domain's DataLoaders share: rows by id, rows grouped by owner, and
nested pages batched across owners. Each loader reads in one short read session."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.errors import AppError
from app.pagination import Page

if TYPE_CHECKING:
    from app.state import AppState

K = TypeVar("K")
V = TypeVar("V")
NIL = uuid.UUID(int=0)
PageKey = tuple[uuid.UUID, int, str | None]  # (owner id, first, after)


def uuid_or_nil(value: str) -> uuid.UUID:
    """A node id's UUID, or one no row has (malformed ids simply match nothing)."""
    try:
        return uuid.UUID(value)
    except ValueError:
        return NIL


async def by_id(
    state: AppState, model: Any, ids: Sequence[uuid.UUID], base: Select[Any] | None = None
) -> list[Any]:
    """Rows of `model` for `ids`, in order, None where missing (`base`: columns to read)."""
    query = (base if base is not None else select(model)).where(model.id.in_(ids))
    async with state.read_session_factory() as session:
        rows = (await session.scalars(query)).all()
    found = {row.id: row for row in rows}
    return [found.get(i) for i in ids]


async def mapped(
    state: AppState,
    fetch: Callable[[AsyncSession, Sequence[K]], Awaitable[Mapping[K, V]]],
    keys: Sequence[K],
    default: Callable[[], V],
) -> list[V]:
    """`fetch(session, keys)` answers a mapping; keys it leaves out get `default()`."""
    async with state.read_session_factory() as session:
        found = await fetch(session, keys)
    return [found[key] if key in found else default() for key in keys]


async def pages(
    state: AppState,
    fetch: Callable[..., Awaitable[Mapping[uuid.UUID, Page[Any]]]],
    keys: Sequence[PageKey],
) -> list[Page[Any] | AppError]:
    """Nested lists: `fetch(session, owner ids, first=, after=)` pages many owners in one
    statement; owners asking for the same page size and cursor go together."""
    groups: dict[tuple[int, str | None], list[uuid.UUID]] = {}
    for owner, first, after in keys:
        groups.setdefault((first, after), []).append(owner)
    found: dict[PageKey, Page[Any] | AppError] = {}
    async with state.read_session_factory() as session:
        for (first, after), owners in groups.items():
            try:
                result = await fetch(session, owners, first=first, after=after)
            except AppError as exc:  # a malformed cursor fails its own lists only
                found.update({(owner, first, after): exc for owner in owners})
                continue
            found.update({(owner, first, after): page for owner, page in result.items()})
    return [found[key] for key in keys]
