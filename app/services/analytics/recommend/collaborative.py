"""The collaborative signal: co-engagement of first-party visitors.

A first-party event may carry `properties.visitorId` (a stable pseudonymous visitor) or,
failing that, `properties.sessionId` (README, "Recording engagement events"). Two items
engaged with by the same visitor were engaged with together. For each item we count its
distinct engaged visitors (any event but IMPRESSION) and how many of them also engaged
with one of the workspace's top performers (not counting the item itself): an item whose
audience is the high performers' audience is likely to do well with it too.

affinity = shared / (visitors + PRIOR_VISITORS): shrunk, so 1 shared visitor of 1 is not
"100%". Without visitor ids there is no such signal: every item's affinity is 0 and the
recommendations rank on similarity and performance alone (their explanations say nothing
about audiences).

Bounded: the most recent WINDOW_DAYS of raw events of the workspace, at most MAX_EVENTS
rows carrying a visitor (the scan stops there), one statement.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

WINDOW_DAYS = 90
MAX_EVENTS = 200_000
PRIOR_VISITORS = 5.0

_CO_ENGAGEMENT = text(
    """
    WITH ev AS MATERIALIZED (
      SELECT DISTINCT content_id, visitor FROM (
        SELECT content_id, coalesce(
          'v:' || (properties ->> 'visitorId'), 's:' || (properties ->> 'sessionId')
        ) AS visitor
        FROM engagement_events
        WHERE workspace_id = :ws AND occurred_at >= :since AND event_type <> 'IMPRESSION'
          AND (properties ->> 'visitorId' IS NOT NULL OR properties ->> 'sessionId' IS NOT NULL)
        LIMIT :cap
      ) raw
    ),
    seeds AS (SELECT visitor, content_id FROM ev WHERE content_id = ANY(:seeds))
    SELECT e.content_id, count(*) AS visitors,
      count(*) FILTER (WHERE EXISTS (
        SELECT 1 FROM seeds s WHERE s.visitor = e.visitor AND s.content_id <> e.content_id
      )) AS shared
    FROM ev e
    GROUP BY e.content_id
    """
)


@dataclass(frozen=True)
class Audience:
    visitors: int  # distinct engaged visitors of the item
    shared: int  # of whom engaged with a top performer too

    @property
    def affinity(self) -> float:
        return self.shared / (self.visitors + PRIOR_VISITORS)

    def describe(self) -> str:
        return (
            f"{self.shared / self.visitors:.0%} of its {self.visitors:,} engaged visitors "
            "also engaged with your top performers"
        )


async def audiences(
    session: AsyncSession,
    workspace_id: uuid.UUID,
    seeds: Sequence[uuid.UUID],
    now: datetime,
) -> dict[uuid.UUID, Audience]:
    """Items with at least one visitor shared with a top performer (`seeds`)."""
    if not seeds:
        return {}
    params = {
        "ws": workspace_id,
        "since": now - timedelta(days=WINDOW_DAYS),
        "cap": MAX_EVENTS,
        "seeds": list(seeds),
    }
    rows = (await session.execute(_CO_ENGAGEMENT, params)).all()
    return {r.content_id: Audience(int(r.visitors), int(r.shared)) for r in rows if r.shared > 0}
