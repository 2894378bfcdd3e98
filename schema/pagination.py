"""Relay cursor connections: one generic shape for every list."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

import strawberry

from app.pagination import Page, check_first
from schema.lazy import PENDING, Pending, on_read

NodeT = TypeVar("NodeT")
RowT = TypeVar("RowT")


@strawberry.type(description="Where a page sits in its list.")
class PageInfo:
    has_next_page: bool = strawberry.field(description="More items follow `endCursor`.")
    end_cursor: str | None = strawberry.field(description="Pass as `after` to get the next page.")


@strawberry.type(description="One item of a page and its cursor.")
class Edge(Generic[NodeT]):
    # Encoded when read (PENDING until then, see schema.lazy): most pages read none.
    cursor: str | Pending = strawberry.field(
        description="Opaque position of this item.", graphql_type=str
    )
    node: NodeT = strawberry.field(description="The item.")
    cursors: strawberry.Private[Sequence[str]] = ()  # the page's, this edge's at `index`
    index: strawberry.Private[int] = 0


on_read(Edge, cursor=lambda edge: edge.cursors[edge.index])


@strawberry.type(description="A page of items (Relay cursor connection).")
class Connection(Generic[NodeT]):
    edges: list[Edge[NodeT]] = strawberry.field(description="The items of this page.")
    page_info: PageInfo = strawberry.field(description="How to get the next page.")

    @classmethod
    def of(cls, page: Page[RowT], convert: Callable[[RowT], NodeT]) -> Connection[NodeT]:
        cursors = page.cursors
        edges = [
            Edge(cursor=PENDING, node=convert(row), cursors=cursors, index=i)
            for i, row in enumerate(page.items)
        ]
        return cls(
            edges=edges,
            page_info=PageInfo(
                has_next_page=page.has_next, end_cursor=page.cursors[-1] if page.cursors else None
            ),
        )


def page_size(first: int, maximum: int) -> int:
    return check_first(first, maximum)
