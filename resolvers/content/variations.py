"""Per-platform variations of an item."""

from __future__ import annotations

from typing import Annotated

import strawberry
from strawberry import relay

from app.models import ContentVariation as VariationRow
from app.services.content import variations
from resolvers.common import attempt, principal_of, state_of
from resolvers.content.items import ContentId
from schema.context import Info
from schema.ids import parse_id
from schema.types.content.variations import ContentVariation, VariationInput, VariationPayload
from schema.types.errors import UserError
from schema.types.vocabulary import Platform


def _payload(row: VariationRow | None, errors: list[UserError]) -> VariationPayload:
    return VariationPayload(
        variation=ContentVariation.from_row(row) if row else None, errors=errors
    )


@strawberry.type
class VariationMutation:
    @strawberry.mutation(
        description="Add a platform variation (one per platform). Requires member role."
    )
    async def create_variation(
        self,
        info: Info,
        content_id: ContentId,
        platform: Annotated[Platform, strawberry.argument(description="Target platform.")],
        input: Annotated[
            VariationInput | None,
            strawberry.argument(description="Its text; defaults to the item's."),
        ] = None,
    ) -> VariationPayload:
        target = parse_id(content_id, "Content", "contentId")
        fields = (input or VariationInput()).to_fields()
        call = variations.create(state_of(info), principal_of(info), target, platform, fields)
        return _payload(*await attempt(call))

    @strawberry.mutation(description="Edit a platform variation. Requires member role.")
    async def update_variation(
        self,
        info: Info,
        id: Annotated[relay.GlobalID, strawberry.argument(description="Variation ID.")],
        input: Annotated[VariationInput, strawberry.argument(description="The changes.")],
    ) -> VariationPayload:
        target = parse_id(id, "ContentVariation")
        call = variations.update(state_of(info), principal_of(info), target, input.to_fields())
        return _payload(*await attempt(call))
