"""TODO"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Annotated

import strawberry
from strawberry import relay

from app.models import Campaign as CampaignRow
from app.permissions import Action
from app.services.content.campaigns import CampaignFields
from schema.context import Info, visible_rows
from schema.pagination import Connection, page_size
from schema.types.errors import UserError
from schema.types.vocabulary import CampaignStatus

if TYPE_CHECKING:
    from schema.types.content.items import Content


@strawberry.type(description="A marketing campaign grouping content.")
class Campaign(relay.Node):
    id: relay.NodeID[str]
    name: str = strawberry.field(description="Campaign name.")
    objectives: list[str] = strawberry.field(description="What it should achieve.")
    start_date: date | None = strawberry.field(description="First day.")
    end_date: date | None = strawberry.field(description="Last day.")
    budget: Decimal | None = strawberry.field(description="Budget (workspace currency).")
    status: CampaignStatus = strawberry.field(description="Lifecycle state.")
    created_at: datetime = strawberry.field(description="When it was created.")
    row: strawberry.Private[CampaignRow]

    @strawberry.field(description="Content in this campaign, newest first.")
    async def contents(
        self,
        info: Info,
        first: Annotated[int, strawberry.argument(description="Page size (at most 100).")] = 50,
        after: Annotated[
            str | None, strawberry.argument(description="Cursor to start after.")
        ] = None,
    ) -> Connection[Annotated[Content, strawberry.lazy("schema.types.content.items")]]:
        info.context.principal.require(self.row.workspace_id, Action.CONTENT_READ)
        size = page_size(first, info.context.state.settings.max_page_size)
        # Batched across the campaigns of a list (one statement), like every relation.
        page = await info.context.loaders.content.campaign_contents.load((self.row.id, size, after))
        from schema.types.content.items import Content  # a cycle: Content has a campaign

        return await Content.connection(info, page)

    @classmethod
    def from_row(cls, row: CampaignRow) -> Campaign:
        return cls(
            id=str(row.id),
            name=row.name,
            objectives=list(row.objectives),
            start_date=row.start_date,
            end_date=row.end_date,
            budget=row.budget,
            status=CampaignStatus(row.status),
            created_at=row.created_at,
            row=row,
        )

    @classmethod
    async def resolve_nodes(  # type: ignore[override]
        cls, *, info: Info, node_ids: Iterable[str], required: bool = False
    ) -> list[Campaign | None]:
        rows = await visible_rows(info.context, info.context.loaders.content.campaigns, node_ids)
        return [cls.from_row(r) if r is not None else None for r in rows]


@strawberry.type(description="Result of campaign mutations.")
class CampaignPayload:
    campaign: Campaign | None = strawberry.field(description="The campaign after the change.")
    errors: list[UserError] = strawberry.field(description="Why it failed, if it did.")


@strawberry.input(description="Campaign fields; on update omitted fields stay as they are.")
class CampaignInput:
    name: str | None = strawberry.field(default=None, description="Name (required on create).")
    objectives: list[str] | None = strawberry.field(
        default=None, description="What it should achieve."
    )
    start_date: date | None = strawberry.field(default=None, description="First day.")
    end_date: date | None = strawberry.field(default=None, description="Last day.")
    budget: Decimal | None = strawberry.field(default=None, description="Budget.")
    status: CampaignStatus | None = strawberry.field(default=None, description="Lifecycle state.")

    def to_fields(self) -> CampaignFields:
        return CampaignFields(
            name=self.name,
            objectives=self.objectives,
            start_date=self.start_date,
            end_date=self.end_date,
            budget=self.budget,
            status=self.status,
        )
