"""What an operation asks for below the current field.

List resolvers use it to load the relations a page needs in one batch each before the items
are returned, so each item's fields resolve without awaiting: graphql-core wraps every
awaitable field in its own task and gathers them, which made per-field loading the main
cost of a page (see bench/README.md).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Generator, Hashable, Iterable
from enum import Enum
from typing import Any, Final, Generic, TypeVar

import strawberry
from strawberry.dataloader import DataLoader
from strawberry.types.nodes import FragmentSpread, InlineFragment, SelectedField, Selection


class Missing(Enum):
    """Marks a relation that was not loaded up front (None means loaded and empty)."""

    MISSING = "missing"


MISSING: Final = Missing.MISSING
K = TypeVar("K", bound=Hashable)
V = TypeVar("V")
T = TypeVar("T")


async def load_map(loader: DataLoader[K, V], keys: Iterable[K]) -> dict[K, V]:
    """Each distinct key's value, through `loader` (batched and cached like any load)."""
    unique = list(dict.fromkeys(keys))
    return dict(zip(unique, await loader.load_many(unique), strict=True))


async def nothing() -> dict[Any, Any]:
    """Stands in for a `load_map` that is not needed."""
    return {}


class Later(Generic[V]):
    """A field value that is loaded only if the operation reads the field.

    Stored in a plain (resolver-less) field, it keeps Strawberry on its fast path for
    fields that just read an attribute, where a resolver method costs several times more
    per item; graphql-core awaits it when the field is resolved, and only then does
    `load` run. Awaiting it again (the field under two aliases) does not load again.
    """

    __slots__ = ("_future", "_load")

    def __init__(self, load: Callable[[], Awaitable[V]]) -> None:
        self._load = load
        self._future: asyncio.Future[V] | None = None

    def __await__(self) -> Generator[Any, None, V]:
        if self._future is None:
            self._future = asyncio.ensure_future(self._load())
        return self._future.__await__()

    def then(self, pick: Callable[[V], T]) -> Later[T]:
        """A Later of something derived from this value (which loads once for all)."""

        async def picked() -> T:
            return pick(await self)

        return Later(picked)


def _fields(selections: Iterable[Selection]) -> list[SelectedField]:
    """The fields of a selection set, fragments flattened (whatever their type condition)."""
    found: list[SelectedField] = []
    for selection in selections:
        if isinstance(selection, SelectedField):
            found.append(selection)
        elif isinstance(selection, FragmentSpread | InlineFragment):
            found.extend(_fields(selection.selections))
    return found


class Selected:
    """The fields selected at one level below the current field, by schema name."""

    def __init__(self, fields: list[SelectedField]) -> None:
        self._fields = fields
        self.names: frozenset[str] = frozenset(f.name for f in fields)

    @classmethod
    def of(cls, info: strawberry.Info[Any, Any], *path: str) -> Selected:
        """The selection at `path` below the resolving field (e.g. "edges", "node").

        `@skip`/`@include` are not evaluated: a skipped field may be loaded for nothing,
        never missed.
        """
        level = _fields(info.selected_fields)
        level = [child for field in level for child in _fields(field.selections)]
        selected = cls(level)
        for name in path:
            selected = selected.below(name)
        return selected

    def below(self, name: str) -> Selected:
        """The selection inside field `name` (every alias of it merged)."""
        return Selected(
            [child for f in self._fields if f.name == name for child in _fields(f.selections)]
        )

    def __contains__(self, name: object) -> bool:
        return name in self.names

    def __bool__(self) -> bool:
        return bool(self._fields)
