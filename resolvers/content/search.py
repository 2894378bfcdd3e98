"""Finding content by keyword, by meaning, or both."""

from __future__ import annotations

from typing import Annotated

import strawberry

from app.services.content import search
from app.services.content.embedding import embedder_for
from resolvers.common import WorkspaceId, page_limit, principal_of, state_of, workspace_of
from schema.context import Info
from schema.lookahead import Selected
from schema.pagination import page_size
from schema.types.content.search import SearchHit
from schema.types.vocabulary import SearchMode


@strawberry.type
class SearchQuery:
    @strawberry.field(
        description="Find content by words (KEYWORD), meaning (SEMANTIC) or both (HYBRID). "
        "Items are findable by keyword at once and by meaning once embedded. Requires viewer role."
    )
    async def search_content(
        self,
        info: Info,
        workspace_id: WorkspaceId,
        query: Annotated[
            str,
            strawberry.argument(description="What to look for (web-search syntax for keywords)."),
        ],
        mode: Annotated[
            SearchMode, strawberry.argument(description="How to match.")
        ] = SearchMode.HYBRID,
        first: Annotated[
            int, strawberry.argument(description="How many results (at most 100).")
        ] = 20,
    ) -> list[SearchHit]:
        state = state_of(info)
        selected = Selected.of(info, "content")
        hits = await search.search_content(
            state,
            embedder_for(state.settings),
            principal_of(info),
            workspace_of(workspace_id),
            query,
            mode,
            page_size(first, page_limit(info)),
            with_rows=bool(selected),
        )
        return await SearchHit.many(info, hits, selected)
