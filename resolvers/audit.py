"""The audit log: who changed what in a workspace."""

from __future__ import annotations

from typing import Annotated

import strawberry

from app.services.audit import entries
from resolvers.common import After, First, WorkspaceId, page_limit, principal_of, state_of
from schema.context import Info
from schema.ids import parse_id
from schema.pagination import Connection, page_size
from schema.types.audit import AuditLogEntry, AuditLogFilter


@strawberry.type
class AuditQuery:
    @strawberry.field(
        description="Who changed what in a workspace, newest first. Requires admin role."
    )
    async def audit_log(
        self,
        info: Info,
        workspace_id: WorkspaceId,
        first: First = 50,
        after: After = None,
        filter: Annotated[
            AuditLogFilter | None, strawberry.argument(description="Narrow the entries.")
        ] = None,
    ) -> Connection[AuditLogEntry]:
        page = await entries.list_entries(
            state_of(info),
            principal_of(info),
            parse_id(workspace_id, "Workspace", "workspaceId"),
            first=page_size(first, page_limit(info)),
            after=after,
            filters=(filter or AuditLogFilter()).to_filter(),
        )
        return Connection.of(page, AuditLogEntry.from_row)
