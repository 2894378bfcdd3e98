"""API keys partners use to call the API for a workspace."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import strawberry
from strawberry import relay

from app.models import ApiKey as ApiKeyRow
from app.services.workspaces import api_keys
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
from schema.types.errors import UserError
from schema.types.vocabulary import Role
from schema.types.workspaces.api_keys import ApiKey, ApiKeyPayload


def _payload(
    key: ApiKeyRow | None, errors: list[UserError], secret: str | None = None
) -> ApiKeyPayload:
    return ApiKeyPayload(
        api_key=ApiKey.from_row(key) if key else None, secret=secret, errors=errors
    )


@strawberry.type
class ApiKeyQuery:
    @strawberry.field(description="API keys of a workspace, newest first. Requires admin role.")
    async def api_keys(
        self, info: Info, workspace_id: WorkspaceId, first: First = 50, after: After = None
    ) -> Connection[ApiKey]:
        page = await workspace_page(info, api_keys.list_keys, workspace_id, first, after)
        return Connection.of(page, ApiKey.from_row)


@strawberry.type
class ApiKeyMutation:
    @strawberry.mutation(
        description="Create an API key; the secret is returned once. Requires admin role."
    )
    async def create_api_key(
        self,
        info: Info,
        workspace_id: WorkspaceId,
        name: Annotated[str, strawberry.argument(description="What the key is for.")],
        role: Annotated[Role, strawberry.argument(description="What the key may do (not OWNER).")],
        expires_at: Annotated[
            datetime | None, strawberry.argument(description="When it stops working; null: never.")
        ] = None,
    ) -> ApiKeyPayload:
        result, errors = await attempt(
            api_keys.create(
                state_of(info),
                principal_of(info),
                workspace_of(workspace_id),
                name=name,
                role=role,
                expires_at=expires_at,
            )
        )
        key, secret = result if result else (None, None)
        return _payload(key, errors, secret)

    @strawberry.mutation(description="Revoke an API key at once. Requires admin role.")
    async def revoke_api_key(
        self, info: Info, id: Annotated[relay.GlobalID, strawberry.argument(description="Key ID.")]
    ) -> ApiKeyPayload:
        call = api_keys.revoke(state_of(info), principal_of(info), parse_id(id, "ApiKey"))
        return _payload(*await attempt(call))
