"""Keyset pagination shared by every list: opaque cursors over (sort key, id)."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

from sqlalchemy import Select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.errors import BadUserInput

T = TypeVar("T")


@dataclass(frozen=True)
class Page(Generic[T]):
    items: Sequence[T]
    has_next: bool
    cursors: Sequence[str]


def encode_cursor(values: Sequence[Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(list(values), default=str).encode()).decode()


def decode_cursor(cursor: str | None, arity: int) -> list[Any] | None:
    if cursor is None:
        return None
    try:
        values = json.loads(base64.urlsafe_b64decode(cursor.encode()))
    except ValueError as exc:
        raise BadUserInput("Malformed cursor.") from exc
    if not isinstance(values, list) or len(values) != arity:
        raise BadUserInput("Malformed cursor.")
    return values


def check_first(first: int, maximum: int) -> int:
    if first < 1 or first > maximum:
        raise BadUserInput(f"`first` must be between 1 and {maximum}.", extra={"field": "first"})
    return first


def make_page(rows: Sequence[T], first: int, key: Callable[[T], Sequence[Any]]) -> Page[T]:
    """`rows` were fetched with LIMIT first + 1: the extra row only says there is more."""
    items = rows[:first]
    return Page(
        items=items, has_next=len(rows) > first, cursors=[encode_cursor(key(r)) for r in items]
    )


async def newest_first(
    factory: async_sessionmaker[AsyncSession],
    query: Select[Any],
    model: Any,
    *,
    first: int,
    after: str | None,
) -> Page[Any]:
    """One keyset page of `query` ordered by (created_at, id) descending: the order of every
    "newest first" list, served by a (..., created_at DESC, id DESC) index."""
    cursor = decode_cursor(after, 2)
    if cursor is not None:
        try:
            bound = tuple_(datetime.fromisoformat(cursor[0]), uuid.UUID(cursor[1]))
        except (TypeError, ValueError) as exc:
            raise BadUserInput("Malformed cursor.") from exc
        query = query.where(tuple_(model.created_at, model.id) < bound)
    query = query.order_by(model.created_at.desc(), model.id.desc()).limit(first + 1)
    async with factory() as session:
        rows = (await session.scalars(query)).all()
    return make_page(rows, first, lambda r: (r.created_at.isoformat(), str(r.id)))
