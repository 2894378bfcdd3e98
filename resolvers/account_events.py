"""socialAccountStatusChanged: a workspace's account status changes, live."""

from __future__ import annotations

from collections.abc import AsyncGenerator

import strawberry

from app.services.publishing import account_events
from resolvers.common import WorkspaceId, principal_of, state_of, workspace_of
from schema.context import Info
from schema.types.publishing.account_events import SocialAccountStatusChange


@strawberry.type
class AccountSubscription:
    @strawberry.subscription(
        description="Each status change of a workspace's connected accounts (a refused token "
        "makes one NEEDS_RECONNECT), as stored; first the accounts needing reconnection, and "
        "after missed events the accounts changed meanwhile (catchUp). Admins and members."
    )
    async def social_account_status_changed(
        self, info: Info, workspace_id: WorkspaceId
    ) -> AsyncGenerator[SocialAccountStatusChange, None]:
        state = state_of(info)
        stream = account_events.follow(
            state.session_factory, state.hub, principal_of(info), workspace_of(workspace_id)
        )
        async for change in stream:
            info.context.fresh_loaders()
            yield SocialAccountStatusChange.of(change)
