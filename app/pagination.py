"""Keyset pagination shared by every list: opaque, validated cursors over a sort key.

Every connection goes through `Keyset`: it orders a query, turns an `after` cursor into a
typed bound (a well-formed cursor holding values of the wrong type is BAD_USER_INPUT, never
an internal error) and makes the page's cursors from the rows.
"""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar, overload

from sqlalchemy import ColumnElement, Select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import InstrumentedAttribute
from sqlalchemy.sql.elements import KeyedColumnElement

from app.errors import BadUserInput

T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)
MAX_CURSOR = 1024  # characters; real cursors are well under 200


@dataclass(frozen=True)
class Page(Generic[T_co]):
    """Covariant: a page of entities is a page of what they satisfy (ContentRecord)."""

    items: Sequence[T_co]
    has_next: bool
    cursors: Sequence[str]


def check_first(first: int, maximum: int) -> int:
    if first < 1 or first > maximum:
        raise BadUserInput(f"`first` must be between 1 and {maximum}.", extra={"field": "first"})
    return first


def _malformed() -> BadUserInput:
    return BadUserInput("Malformed cursor.", extra={"field": "after"})


def _decode_value(kind: type, value: Any) -> Any:
    if kind is datetime:
        if not isinstance(value, str):
            raise _malformed()
        parsed = datetime.fromisoformat(value)
        if parsed.tzinfo is None:  # every stored time is aware; comparing naive ones fails
            raise _malformed()
        return parsed
    if kind is uuid.UUID:
        if not isinstance(value, str):
            raise _malformed()
        return uuid.UUID(value)
    if kind is int:
        if not isinstance(value, int) or isinstance(value, bool):
            raise _malformed()
        return value
    if kind is str:
        if not isinstance(value, str):
            raise _malformed()
        return value
    raise TypeError(f"no cursor encoding for {kind!r}")


def _encode_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    return value


@dataclass(frozen=True)
class Keyset:
    """An order over `columns` (the last one unique, so the order is total): ORM
    attributes, or table columns for a plain-rows statement."""

    columns: tuple[InstrumentedAttribute[Any] | KeyedColumnElement[Any], ...]
    descending: bool = True

    @property
    def _kinds(self) -> list[type]:
        return [column.type.python_type for column in self.columns]

    def decode(self, cursor: str | None) -> tuple[Any, ...] | None:
        if cursor is None:
            return None
        if len(cursor) > MAX_CURSOR:
            raise _malformed()
        try:
            values = json.loads(base64.urlsafe_b64decode(cursor.encode("ascii")))
        except (ValueError, binascii.Error, UnicodeError) as exc:
            raise _malformed() from exc
        if not isinstance(values, list) or len(values) != len(self.columns):
            raise _malformed()
        try:
            return tuple(_decode_value(k, v) for k, v in zip(self._kinds, values, strict=True))
        except (ValueError, OverflowError) as exc:
            raise _malformed() from exc

    def encode(self, row: Any) -> str:
        values = [_encode_value(getattr(row, column.key)) for column in self.columns]
        return base64.urlsafe_b64encode(json.dumps(values).encode()).decode()

    def after(self, cursor: str | None) -> ColumnElement[bool] | None:
        """The condition for rows after `cursor` in this order (None: from the start)."""
        bound = self.decode(cursor)
        if bound is None:
            return None
        key = tuple_(*self.columns)
        return key < tuple_(*bound) if self.descending else key > tuple_(*bound)

    def order_by(self) -> list[Any]:
        return [c.desc() if self.descending else c.asc() for c in self.columns]

    def apply(self, query: Select[Any], cursor: str | None, first: int) -> Select[Any]:
        """`query` ordered, past `cursor`, limited to one more row than the page."""
        condition = self.after(cursor)
        if condition is not None:
            query = query.where(condition)
        return query.order_by(*self.order_by()).limit(first + 1)

    def page(self, rows: Sequence[T], first: int) -> Page[T]:
        """`rows` were fetched with LIMIT first + 1: the extra row only says there is more."""
        items = rows[:first]
        return Page(items=items, has_next=len(rows) > first, cursors=Cursors(self, items))


class Cursors(Sequence[str]):
    """A page's cursors, each encoded when read: most queries read none but the last
    (`endCursor`), and encoding every row's was more of a 50-item page than its rows."""

    __slots__ = ("_keyset", "_rows")

    def __init__(self, keyset: Keyset, rows: Sequence[Any]) -> None:
        self._keyset = keyset
        self._rows = rows

    def __len__(self) -> int:
        return len(self._rows)

    @overload
    def __getitem__(self, index: int) -> str: ...
    @overload
    def __getitem__(self, index: slice) -> list[str]: ...
    def __getitem__(self, index: int | slice) -> str | list[str]:
        if isinstance(index, slice):
            return [self._keyset.encode(row) for row in self._rows[index]]
        return self._keyset.encode(self._rows[index])


def newest_first(model: Any) -> Keyset:
    """The order of every "newest first" list, served by a (..., created_at DESC, id DESC)
    index."""
    return Keyset((model.created_at, model.id), descending=True)


async def fetch_page(
    factory: async_sessionmaker[AsyncSession],
    query: Select[Any],
    keyset: Keyset,
    *,
    first: int,
    after: str | None,
) -> Page[Any]:
    """One page of `query` in `keyset` order."""
    async with factory() as session:
        rows = (await session.scalars(keyset.apply(query, after, first))).all()
    return keyset.page(rows, first)
