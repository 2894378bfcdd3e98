"""Reading the audit log (writing is `app.services.audit.trail.record`)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from app.auth import Principal
from app.models import AuditEntry
from app.pagination import Keyset, Page, fetch_page
from app.permissions import Action
from app.state import AppState

# Entry ids increase: newest first is id descending.
_ORDER = Keyset((AuditEntry.id,), descending=True)


@dataclass(frozen=True)
class AuditFilter:
    action: str | None = None
    actor_user_id: uuid.UUID | None = None
    target_type: str | None = None
    target_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None


async def list_entries(
    state: AppState,
    principal: Principal,
    workspace_id: uuid.UUID,
    *,
    first: int,
    after: str | None,
    filters: AuditFilter,
) -> Page[AuditEntry]:
    """Newest first. Uses the (workspace_id, id DESC) index; filters narrow within it."""
    principal.require(workspace_id, Action.AUDIT_READ)
    query = select(AuditEntry).where(AuditEntry.workspace_id == workspace_id)
    if filters.action:
        query = query.where(AuditEntry.action == filters.action)
    if filters.actor_user_id:
        query = query.where(AuditEntry.actor_user_id == filters.actor_user_id)
    if filters.target_type:
        query = query.where(AuditEntry.target_type == filters.target_type)
    if filters.target_id:
        query = query.where(AuditEntry.target_id == filters.target_id)
    if filters.since:
        query = query.where(AuditEntry.created_at >= filters.since)
    if filters.until:
        query = query.where(AuditEntry.created_at < filters.until)
    return await fetch_page(state.session_factory, query, _ORDER, first=first, after=after)
