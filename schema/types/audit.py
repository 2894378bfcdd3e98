"""Audit log entries and their filter."""

from __future__ import annotations

from datetime import datetime
from typing import cast

import strawberry
from strawberry import relay
from strawberry.scalars import JSON

from app.models import AuditEntry as AuditRow
from app.services.audit.entries import AuditFilter
from schema.ids import optional_id


@strawberry.type(description="One recorded change: who did what to which target, when, from where.")
class AuditLogEntry:
    id: str = strawberry.field(description="Entry number (increasing).")
    action: str = strawberry.field(description="The mutation, e.g. `inviteMember`.")
    actor_label: str = strawberry.field(
        description="Email of the user, `api-key:<prefix>`, or 'deleted user'."
    )
    target_type: str | None = strawberry.field(description="Kind of object changed.")
    target_id: str | None = strawberry.field(description="Its id.")
    ip: str | None = strawberry.field(description="Client IP address.")
    request_id: str | None = strawberry.field(description="Request id (X-Request-ID).")
    details: strawberry.scalars.JSON = strawberry.field(description="What changed.")
    created_at: datetime = strawberry.field(description="When.")

    @classmethod
    def from_row(cls, row: AuditRow) -> AuditLogEntry:
        return cls(
            id=str(row.id),
            action=row.action,
            actor_label=row.actor_label,
            target_type=row.target_type,
            target_id=row.target_id,
            ip=row.ip,
            request_id=row.request_id,
            details=cast(JSON, row.details),
            created_at=row.created_at,
        )


@strawberry.input(description="Narrow the audit log.")
class AuditLogFilter:
    action: str | None = strawberry.field(default=None, description="Only this action.")
    actor_user_id: relay.GlobalID | None = strawberry.field(
        default=None, description="Only this user."
    )
    target_type: str | None = strawberry.field(
        default=None, description="Only this kind of target."
    )
    target_id: str | None = strawberry.field(default=None, description="Only this target id.")
    since: datetime | None = strawberry.field(default=None, description="At or after this time.")
    until: datetime | None = strawberry.field(default=None, description="Before this time.")

    def to_filter(self) -> AuditFilter:
        return AuditFilter(
            action=self.action,
            actor_user_id=optional_id(self.actor_user_id, "User", "filter.actorUserId"),
            target_type=self.target_type,
            target_id=self.target_id,
            since=self.since,
            until=self.until,
        )
