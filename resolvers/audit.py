"""The audit log: who changed what in a workspace."""

from __future__ import annotations

from typing import Annotated

import strawberry

from app.services.audit import entries
from resolvers.common import (
    After,
    First,
    WorkspaceId,
    workspace_page,
)
from schema.context import Info
from schema.pagination import Connection
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
        page = await workspace_page(
            info,
            entries.list_entries,
            workspace_id,
            first,
            after,
            filters=(filter or AuditLogFilter()).to_filter(),
        )
        return Connection.of(page, AuditLogEntry.from_row)
