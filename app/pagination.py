"""Keyset pagination shared by every list: opaque cursors over (sort key, id)."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

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
