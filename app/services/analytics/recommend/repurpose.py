"""CONTENT_TO_REPURPOSE: high performers not yet, or not recently, published on a platform
the workspace has connected.

The platforms: those with at least one CONNECTED social account (one statement). For each
of the workspace's top performers (above their main channel's median, best MAX_CANDIDATES),
the platforms missing are the connected ones it was never published to, or not in the
last STALE_DAYS. A candidate scores

    popularity x (1 + audience affinity)

(popularity: performance decayed by the age of its last publication), one recommendation
per item, naming every platform to take it to.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.models import SocialAccount
from app.models.publishing import AccountStatus
from app.models.vocabulary import RecommendationKind
from app.services.analytics.recommend.collaborative import Audience
from app.services.analytics.recommend.result import Recommendation, Signal, channel_name
from app.services.analytics.recommend.scores import ItemScore

STALE_DAYS = 180


async def connected_platforms(session: AsyncSession, workspace_id: uuid.UUID) -> list[str]:
    rows = await session.scalars(
        select(SocialAccount.platform)
        .where(
            SocialAccount.workspace_id == workspace_id,
            SocialAccount.status == AccountStatus.CONNECTED.value,
        )
        .distinct()
    )
    return sorted(rows.all())


def _names(platforms: list[str]) -> str:
    names = [channel_name(p) for p in platforms]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def content_to_repurpose(
    performers: list[ItemScore],
    connected: list[str],
    audiences: Mapping[uuid.UUID, Audience],
    now: datetime,
    first: int,
) -> list[Recommendation]:
    stale = now - timedelta(days=STALE_DAYS)
    found = []
    for item in performers:
        never = [p for p in connected if p not in item.channels]
        old = [p for p in connected if p in item.channels and item.channels[p].last_at < stale]
        if not never and not old:
            continue
        audience = audiences.get(item.content_id)
        affinity = audience.affinity if audience else 0.0
        score = item.popularity * (1.0 + affinity)
        reasons = []
        if never:
            reasons.append(f"never published to {_names(never)}")
        for p in old:
            days = (now - item.channels[p].last_at).days
            reasons.append(f"last published to {channel_name(p)} {days} days ago")
        main = item.main
        age = max((now - item.last_at).days, 0)
        explanation = (
            f"{item.describe()[0].upper()}{item.describe()[1:]}; {'; '.join(reasons)}, "
            f"which {'is' if len(never) + len(old) == 1 else 'are'} connected"
        )
        signals = [
            Signal("performance", round(item.performance, 4)),
            Signal("popularity", round(item.popularity, 4)),
            Signal("lift", round(main.lift, 4)),
            Signal("engagementRate", round(main.rate, 6)),
            Signal("medianEngagementRate", round(main.median_rate, 6)),
            Signal("impressions", float(main.impressions)),
            Signal("daysSinceLastPublished", float(age)),
        ]
        if audience is not None:
            explanation += f"; {audience.describe()}"
            signals.append(Signal("audienceAffinity", round(audience.affinity, 4)))
        found.append(
            Recommendation(
                kind=RecommendationKind.CONTENT_TO_REPURPOSE,
                score=round(score, 6),
                explanation=explanation + ".",
                signals=tuple(signals),
                content_ids=(item.content_id,),
                platforms=tuple(never + old),
            )
        )
    found.sort(key=lambda r: (-r.score, str(r.content_ids[0])))
    return found[:first]
