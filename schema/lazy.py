"""Plain fields whose value is made the first time the field is read.

A page of 50 items with 2 variations each used to build a `Later` (and its closures) for
every relation and rule-check field of every object, read or not: most queries select few
of them. `on_read` puts a descriptor over such a field after Strawberry has built the
type: the object is created with `PENDING` there, and the first read (Strawberry's
resolver for a plain field is `getattr`) asks the type for the value, keeps it and returns
it; a value set before that (a page's preload) is simply returned. Fields stay resolver-
less, so Strawberry's fast path for them is kept (see schema.lookahead.Later).
"""

from __future__ import annotations

from collections.abc import Callable
from enum import Enum
from typing import Any, Final


class Pending(Enum):
    """A field value not made yet (made on first read)."""

    PENDING = "pending"


PENDING: Final = Pending.PENDING


class _OnRead:
    __slots__ = ("_make", "_name")

    def __init__(self, name: str, make: Callable[[Any], Any]) -> None:
        self._name = name
        self._make = make

    def __get__(self, obj: object, owner: type | None = None) -> Any:
        if obj is None:
            return self
        found = obj.__dict__
        value = found[self._name]
        if value is PENDING:
            value = found[self._name] = self._make(obj)
        return value

    def __set__(self, obj: object, value: Any) -> None:
        obj.__dict__[self._name] = value


def on_read(cls: type, **makers: Callable[[Any], Any]) -> None:
    """For each `name=make`: a `PENDING` value of field `name` becomes `make(obj)` when the
    field is first read (and stays). Call after the class is decorated."""
    for name, make in makers.items():
        if name not in cls.__dataclass_fields__:  # type: ignore[attr-defined]
            raise TypeError(f"{cls.__name__} has no field {name!r}")
        setattr(cls, name, _OnRead(name, make))
