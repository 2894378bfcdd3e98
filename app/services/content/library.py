"""The content library as a list: filters, sort orders and pages."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from enum import StrEnum

from app.auth import Principal
from app.models import Content
from app.pagination import Keyset, Page
from app.permissions import Action
from app.services.content.items import select_readable
from app.state import AppState


class ContentOrder(StrEnum):
    CREATED_DESC = "CREATED_DESC"
    CREATED_ASC = "CREATED_ASC"
    UPDATED_DESC = "UPDATED_DESC"
    TITLE_ASC = "TITLE_ASC"


@dataclass(frozen=True)
class ContentFilter:
    status: str | None = None
    content_type: str | None = None
    campaign_id: uuid.UUID | None = None
    tag: str | None = None
    created_by: uuid.UUID | None = None
    deleted: bool = False


_ORDER = {
    ContentOrder.CREATED_DESC: Keyset((Content.created_at, Content.id), descending=True),
    ContentOrder.CREATED_ASC: Keyset((Content.created_at, Content.id), descending=False),
    ContentOrder.UPDATED_DESC: Keyset((Content.updated_at, Content.id), descending=True),
    ContentOrder.TITLE_ASC: Keyset((Content.title, Content.id), descending=False),
}


async def list_contents(
    state: AppState,
    principal: Principal,
    workspace_id: uuid.UUID,
    *,
    first: int,
    after: str | None,
    filters: ContentFilter,
    order: ContentOrder,
) -> Page[Content]:
    principal.require(workspace_id, Action.CONTENT_READ)
    query = select_readable().where(Content.workspace_id == workspace_id)
    query = query.where(
        Content.deleted_at.is_not(None) if filters.deleted else Content.deleted_at.is_(None)
    )
    if filters.status:
        query = query.where(Content.status == filters.status)
    if filters.content_type:
        query = query.where(Content.content_type == filters.content_type)
    if filters.campaign_id:
        query = query.where(Content.campaign_id == filters.campaign_id)
    if filters.tag:
        query = query.where(Content.tags.contains([filters.tag.strip().lower().lstrip("#")]))
    if filters.created_by:
        query = query.where(Content.created_by_id == filters.created_by)
    keyset = _ORDER[order]
    async with state.read_session_factory() as session:
        rows = (await session.scalars(keyset.apply(query, after, first))).all()
    return keyset.page(rows, first)
