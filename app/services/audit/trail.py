"""The audit log: every data-changing mutation records who, what, target, when, IP and
request id, in the same transaction as the change."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.auth import Principal
from app.models import AuditEntry


def record(
    session: AsyncSession,
    principal: Principal,
    action: str,
    *,
    workspace_id: uuid.UUID | None = None,
    target_type: str | None = None,
    target_id: uuid.UUID | str | None = None,
    details: dict[str, Any] | None = None,
    actor_user_id: uuid.UUID | None = None,
    actor_label: str | None = None,
) -> AuditEntry:
    """Add an entry to the caller's transaction. `actor_*` override the principal for
    actions where the caller is not yet signed in (register, login, reset)."""
    entry = AuditEntry(
        workspace_id=workspace_id,
        actor_user_id=actor_user_id or principal.user_id,
        actor_api_key_id=principal.api_key_id,
        actor_label=actor_label or principal.label,
        action=action,
        target_type=target_type,
        target_id=str(target_id) if target_id is not None else None,
        ip=principal.meta.ip,
        request_id=principal.meta.request_id,
        details=details or {},
    )
    session.add(entry)
    return entry


def record_row(
    session: AsyncSession,
    principal: Principal,
    action: str,
    row: Any,
    details: dict[str, Any] | None = None,
) -> AuditEntry:
    """`record` for a change to one workspace row: the target is the row itself."""
    return record(
        session,
        principal,
        action,
        workspace_id=row.workspace_id,
        target_type=type(row).__name__,
        target_id=row.id,
        details=details,
    )
