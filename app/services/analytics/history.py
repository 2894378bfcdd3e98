"""A workspace's published history as analytics reads it: each published target with its
latest snapshot that reports impressions (app/models/metrics.py), what went out (the
variation's text metrics when a variation was posted, else the item's), the item's type
and tags, media, and when it went out in the post's own time zone.

One statement per read, newest first, bounded (`limit`); served by the post_targets
indexes on (workspace_id, status, scheduled_at) and the snapshots' (target_id,
collected_at).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, func, select, true
from sqlalchemy.ext.asyncio import AsyncSession

from app.models import (
    Content,
    ContentMedia,
    ContentVariation,
    MetricSnapshot,
    PostTarget,
    ScheduledPost,
    TargetStatus,
)
from app.services.publishing.timezones import zone

MAX_HISTORY = 20_000  # newest published targets one read considers


@dataclass(frozen=True)
class PublishedPost:
    target_id: uuid.UUID
    content_id: uuid.UUID
    platform: str
    content_type: str
    tags: tuple[str, ...]
    at: datetime  # local time in the post's zone
    metrics: dict[str, Any] | None  # stored text metrics (app/ai/metrics.py)
    has_media: bool
    impressions: int
    engaged: int  # likes + comments + shares

    @property
    def rate(self) -> float:
        return self.engaged / self.impressions


def latest_engagement() -> Any:
    """A LATERAL over a target's newest snapshot that reports impressions: `impressions`
    and `engaged` (likes + comments + shares) for each PostTarget row joined to it."""
    return (
        select(
            MetricSnapshot.impressions,
            (
                func.coalesce(MetricSnapshot.likes, 0)
                + func.coalesce(MetricSnapshot.comments, 0)
                + func.coalesce(MetricSnapshot.shares, 0)
            ).label("engaged"),
        )
        .where(MetricSnapshot.target_id == PostTarget.id, MetricSnapshot.impressions > 0)
        .order_by(MetricSnapshot.collected_at.desc())
        .limit(1)
        .lateral("latest")
    )


def _query(
    workspace_id: uuid.UUID | None,
    since: datetime | None,
    until: datetime | None,
    limit: int,
) -> Select[Any]:
    latest = latest_engagement()
    has_media = (
        select(ContentMedia.content_id).where(ContentMedia.content_id == Content.id).exists()
    )
    query = (
        select(
            PostTarget.id,
            Content.id.label("content_id"),
            PostTarget.platform,
            Content.content_type,
            Content.tags,
            PostTarget.published_at,
            ScheduledPost.timezone,
            func.coalesce(ContentVariation.text_metrics, Content.text_metrics).label("metrics"),
            has_media.label("has_media"),
            latest.c.impressions,
            latest.c.engaged,
        )
        .join(ScheduledPost, ScheduledPost.id == PostTarget.post_id)
        .join(Content, Content.id == ScheduledPost.content_id)
        .outerjoin(ContentVariation, ContentVariation.id == ScheduledPost.variation_id)
        .join(latest, true())
        .where(PostTarget.status == TargetStatus.PUBLISHED.value)
        .order_by(PostTarget.published_at.desc())
        .limit(limit)
    )
    if workspace_id is not None:
        query = query.where(PostTarget.workspace_id == workspace_id)
    if since is not None:
        query = query.where(PostTarget.published_at >= since)
    if until is not None:
        query = query.where(PostTarget.published_at < until)
    return query


async def published_posts(
    session: AsyncSession,
    workspace_id: uuid.UUID | None,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = MAX_HISTORY,
) -> list[PublishedPost]:
    """`workspace_id` None: every workspace's (the instance prior's training data)."""
    rows = (await session.execute(_query(workspace_id, since, until, limit))).all()
    posts = []
    for row in rows:
        if row.published_at is None or not row.impressions:
            continue
        tz = zone(row.timezone)
        posts.append(
            PublishedPost(
                target_id=row.id,
                content_id=row.content_id,
                platform=row.platform,
                content_type=row.content_type,
                tags=tuple(row.tags or ()),
                at=row.published_at.astimezone(tz) if tz else row.published_at,
                metrics=row.metrics,
                has_media=bool(row.has_media),
                impressions=int(row.impressions),
                engaged=int(row.engaged),
            )
        )
    return posts
