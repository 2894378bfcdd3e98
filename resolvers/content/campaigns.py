"""Campaigns: lists, one campaign, and their changes."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Annotated

import strawberry
from strawberry import relay

from app.models import Campaign as CampaignRow
from app.services.content import campaigns
from resolvers.common import (
    After,
    First,
    WorkspaceId,
    attempt,
    principal_of,
    state_of,
    workspace_of,
    workspace_page,
)
from schema.context import Info
from schema.ids import parse_id
from schema.pagination import Connection
from schema.types.content.campaigns import Campaign, CampaignInput, CampaignPayload
from schema.types.errors import SuccessPayload, UserError
from schema.types.vocabulary import CampaignStatus

CampaignId = Annotated[relay.GlobalID, strawberry.argument(description="Campaign ID.")]


def _payload(row: CampaignRow | None, errors: list[UserError]) -> CampaignPayload:
    return CampaignPayload(campaign=Campaign.from_row(row) if row else None, errors=errors)


@strawberry.type
class CampaignQuery:
    @strawberry.field(description="Campaigns of a workspace, newest first. Requires viewer role.")
    async def campaigns(
        self,
        info: Info,
        workspace_id: WorkspaceId,
        first: First = 50,
        after: After = None,
        status: Annotated[
            CampaignStatus | None, strawberry.argument(description="Only this status.")
        ] = None,
    ) -> Connection[Campaign]:
        page = await workspace_page(
            info, campaigns.list_campaigns, workspace_id, first, after, status=status
        )
        return Connection.of(page, Campaign.from_row)

    @strawberry.field(description="One campaign. Requires viewer role.")
    async def campaign(self, info: Info, id: CampaignId) -> Campaign:
        row = await campaigns.get(state_of(info), principal_of(info), parse_id(id, "Campaign"))
        return Campaign.from_row(row)


@strawberry.type
class CampaignMutation:
    @strawberry.mutation(description="Create a campaign. Requires member role.")
    async def create_campaign(
        self,
        info: Info,
        workspace_id: WorkspaceId,
        name: Annotated[str, strawberry.argument(description="Campaign name.")],
        objectives: Annotated[
            list[str] | None, strawberry.argument(description="What it should achieve.")
        ] = None,
        start_date: Annotated[date | None, strawberry.argument(description="First day.")] = None,
        end_date: Annotated[date | None, strawberry.argument(description="Last day.")] = None,
        budget: Annotated[Decimal | None, strawberry.argument(description="Budget.")] = None,
    ) -> CampaignPayload:
        fields = CampaignInput(
            name=name,
            objectives=objectives,
            start_date=start_date,
            end_date=end_date,
            budget=budget,
        ).to_fields()
        workspace = workspace_of(workspace_id)
        call = campaigns.create(state_of(info), principal_of(info), workspace, fields)
        return _payload(*await attempt(call))

    @strawberry.mutation(description="Change a campaign (incl. its status). Requires member role.")
    async def update_campaign(
        self,
        info: Info,
        id: CampaignId,
        input: Annotated[CampaignInput, strawberry.argument(description="The changes.")],
    ) -> CampaignPayload:
        target = parse_id(id, "Campaign")
        call = campaigns.update(state_of(info), principal_of(info), target, input.to_fields())
        return _payload(*await attempt(call))

    @strawberry.mutation(description="Delete a campaign; its content stays. Requires admin role.")
    async def delete_campaign(self, info: Info, id: CampaignId) -> SuccessPayload:
        call = campaigns.delete(state_of(info), principal_of(info), parse_id(id, "Campaign"))
        _, errors = await attempt(call)
        return SuccessPayload.of(errors)
