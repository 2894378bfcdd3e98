"""Stored versions of an item's text, read for its history."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.models import ContentVersion


async def versions_for(
    session: AsyncSession, content_ids: Sequence[uuid.UUID], limit: int = 50
) -> dict[uuid.UUID, list[ContentVersion]]:
    ranked = (
        select(
            ContentVersion.id,
            func.row_number()
            .over(partition_by=ContentVersion.content_id, order_by=ContentVersion.version.desc())
            .label("rn"),
        )
        .where(ContentVersion.content_id.in_(content_ids))
        .subquery()
    )
    query = (
        select(ContentVersion)
        .join(ranked, ranked.c.id == ContentVersion.id)
        .where(ranked.c.rn <= limit)
        .order_by(ContentVersion.content_id, ContentVersion.version.desc())
    )
    out: dict[uuid.UUID, list[ContentVersion]] = {i: [] for i in content_ids}
    for row in (await session.scalars(query)).all():
        out[row.content_id].append(row)
    return out
