"""optimalPostingTimes: a workspace's published history aggregated by local hour of the
week in SQL (one statement, 168 rows at most), then smoothed and shrunk toward the
platform's prior (app/services/analytics/posting_times.py).

A post counts with its latest snapshot that reports impressions: its engagement rate is
(likes + comments + shares) / impressions. Its hour is the one it went out at in the
requested zone (the audience's), so the answer is in that zone's wall-clock time.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import numpy as np
from sqlalchemy import Float, cast, extract, func, select, true
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.auth import Principal
from app.errors import BadUserInput
from app.models import PostTarget, TargetStatus
from app.permissions import Action
from app.services.analytics import history, posting_times
from app.services.publishing.timezones import zone

HISTORY_DAYS = 365  # older posts say little about today's audience


async def optimal_times(
    factory: async_sessionmaker[AsyncSession],
    principal: Principal,
    workspace_id: uuid.UUID,
    platform: str | None,
    timezone: str,
    *,
    top: int = 5,
) -> posting_times.PostingTimes:
    principal.require(workspace_id, Action.CONTENT_READ)
    if zone(timezone) is None:
        raise BadUserInput("timezone: unknown time zone")
    latest = history.latest_engagement()
    local = func.timezone(timezone, PostTarget.published_at)
    weekday = (extract("isodow", local) - 1).label("weekday")
    hour = extract("hour", local).label("hour")
    query = (
        select(
            weekday,
            hour,
            func.sum(cast(latest.c.engaged, Float) / latest.c.impressions),
            func.count(),
        )
        .join(latest, true())
        .where(
            PostTarget.workspace_id == workspace_id,
            PostTarget.status == TargetStatus.PUBLISHED.value,
            PostTarget.published_at >= datetime.now(UTC) - timedelta(days=HISTORY_DAYS),
        )
        .group_by(weekday, hour)
    )
    if platform is not None:
        query = query.where(PostTarget.platform == platform)
    sums = np.zeros(posting_times.HOURS)
    counts = np.zeros(posting_times.HOURS)
    async with factory() as session:
        for day, hr, total, n in (await session.execute(query)).all():
            cell = int(day) * 24 + int(hr)
            sums[cell], counts[cell] = float(total), float(n)
    return posting_times.from_cells(sums, counts, platform, top=top)
