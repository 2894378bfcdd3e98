"""API keys as partners and admins see them (never the secret, except once on creation)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime
from typing import Any

import strawberry
from strawberry import relay

from app.models import ApiKey as ApiKeyRow
from app.permissions import Action
from schema.context import Context
from schema.loaders.base import uuid_or_nil
from schema.types.errors import UserError
from schema.types.vocabulary import Role


@strawberry.type(description="A key a partner uses as `Authorization: Bearer sk_...`.")
class ApiKey(relay.Node):
    id: relay.NodeID[str]
    name: str = strawberry.field(description="What the key is for.")
    role: Role = strawberry.field(description="What the key may do in its workspace.")
    prefix: str = strawberry.field(
        description="Identifies the key (`sk_<prefix>_...`); not secret."
    )
    created_at: datetime = strawberry.field(description="When it was created.")
    expires_at: datetime | None = strawberry.field(description="When it stops working, if ever.")
    revoked_at: datetime | None = strawberry.field(description="When it was revoked, if it was.")
    last_used_at: datetime | None = strawberry.field(description="Last use, to the minute.")
    workspace_id: strawberry.Private[uuid.UUID]

    @classmethod
    def from_row(cls, row: ApiKeyRow) -> ApiKey:
        return cls(
            id=str(row.id),
            name=row.name,
            role=Role.parse(row.role),
            prefix=row.prefix,
            created_at=row.created_at,
            expires_at=row.expires_at,
            revoked_at=row.revoked_at,
            last_used_at=row.last_used_at,
            workspace_id=row.workspace_id,
        )

    @classmethod
    async def resolve_nodes(  # type: ignore[override]
        cls, *, info: strawberry.Info[Context, Any], node_ids: Iterable[str], required: bool = False
    ) -> list[ApiKey | None]:
        loaders = info.context.loaders
        principal = info.context.principal
        rows = await loaders.workspaces.api_keys.load_many([uuid_or_nil(i) for i in node_ids])
        out: list[ApiKey | None] = []
        for row in rows:
            if row is None or principal.role_in(row.workspace_id) is None:
                out.append(None)
            else:
                principal.require(row.workspace_id, Action.API_KEY_MANAGE)
                out.append(cls.from_row(row))
        return out


@strawberry.type(description="Result of createApiKey and revokeApiKey.")
class ApiKeyPayload:
    api_key: ApiKey | None = strawberry.field(description="The key.")
    secret: str | None = strawberry.field(
        description="createApiKey only: the full key. Shown once; store it now."
    )
    errors: list[UserError] = strawberry.field(description="Why it failed, if it did.")
