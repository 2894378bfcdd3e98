"""TODO"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Sequence

import strawberry

from app.services.content.search import Hit
from schema.context import Info
from schema.lookahead import MISSING, Missing, Selected
from schema.types.content.items import Content


@strawberry.type(description="One search result.")
class SearchHit:
    score: float = strawberry.field(
        description="Relevance: ts_rank (KEYWORD), cosine similarity (SEMANTIC) "
        "or RRF score (HYBRID)."
    )
    snippet: str | None = strawberry.field(
        description="Matching passage as safe HTML: the text escaped, <mark> around hits "
        "(keyword matches only)."
    )
    content_id: strawberry.Private[uuid.UUID]
    # Read with the hits when the query selects `content` (see searchContent).
    found: strawberry.Private[Content | Missing | None] = MISSING

    @strawberry.field(description="The item.", graphql_type=Content | None)
    def content(self, info: Info) -> Content | Awaitable[Content | None] | None:
        if self.found is not MISSING:
            return self.found

        async def later() -> Content | None:
            row = await info.context.loaders.content.contents.load(self.content_id)
            return Content.from_row(row) if row else None

        return later()

    @classmethod
    async def many(cls, info: Info, hits: Sequence[Hit], selected: Selected) -> list[SearchHit]:
        """The hits as results; when the query selects `content`, their items (read with
        the hits) come with their selected relations loaded up front."""
        if not selected:
            return [
                cls(score=round(h.score, 6), snippet=h.snippet, content_id=h.content_id)
                for h in hits
            ]
        items = {h.content_id: Content.from_row(h.row) for h in hits if h.row is not None}
        await Content.preload(info, list(items.values()), selected)
        return [
            cls(
                score=round(h.score, 6),
                snippet=h.snippet,
                content_id=h.content_id,
                found=items.get(h.content_id),
            )
            for h in hits
        ]
