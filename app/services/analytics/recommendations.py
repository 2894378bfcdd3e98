"""recommendations(workspaceId, first, kind): what to write or post next, a hybrid of
three signals, each recommendation with the numbers behind it.

- Performance and popularity (recommend/scores.py): each item's engagement rate from its
  platform snapshots and its first-party rollups, shrunk toward its platform's rate when
  impressions are few and turned into a percentile within the workspace's platform, so
  LinkedIn and X compare; popularity decays it with the age of the last publication.
- Similarity (recommend/similar.py): pgvector cosine distance over the contents' HNSW
  index.
- Collaborative (recommend/collaborative.py): co-engagement of first-party visitors
  (events sharing `properties.visitorId` or `sessionId`); absent without visitor ids, and
  then nothing depends on it.

Kinds: SIMILAR_HIGH_PERFORMERS (recommend/similar.py), CONTENT_TO_REPURPOSE
(recommend/repurpose.py), TOPICS (recommend/topics.py). Every read is bounded (the newest
5,000 published targets, the best 500 performers, 500 items to cluster), so the cost is
flat in workspace size; the statements are a fixed handful per call. Only the workspace's
own items are read (every statement filters on it), and only its members may ask.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.auth import Principal
from app.errors import BadUserInput, UserErrorCode
from app.models import Content
from app.models.vocabulary import RecommendationKind
from app.permissions import Action
from app.services import lookup
from app.services.analytics.recommend import collaborative, repurpose, scores, similar, topics
from app.services.analytics.recommend.result import Recommendation

MAX_FIRST = 50
SEEDS = 50  # top performers whose audience the collaborative signal compares with


def _check(first: int, kind: RecommendationKind, content_id: uuid.UUID | None) -> None:
    if not 1 <= first <= MAX_FIRST:
        raise BadUserInput(
            f"first must be between 1 and {MAX_FIRST}.",
            extra={"field": "first", "reason": UserErrorCode.INVALID.value},
        )
    if content_id is not None and kind is not RecommendationKind.SIMILAR_HIGH_PERFORMERS:
        raise BadUserInput(
            "contentId anchors SIMILAR_HIGH_PERFORMERS only.",
            extra={"field": "contentId", "reason": UserErrorCode.INVALID.value},
        )


async def _anchors(
    session: AsyncSession,
    principal: Principal,
    workspace_id: uuid.UUID,
    content_id: uuid.UUID | None,
) -> dict[uuid.UUID, str]:
    if content_id is None:
        return await similar.recent_drafts(session, workspace_id)
    row = await lookup.scoped_row(session, Content, content_id, principal, Action.CONTENT_READ)
    if row.workspace_id != workspace_id or row.deleted_at is not None:
        raise lookup.not_found(Content)
    return {row.id: row.title}


async def recommendations(
    factory: async_sessionmaker[AsyncSession],
    principal: Principal,
    workspace_id: uuid.UUID,
    kind: RecommendationKind,
    first: int,
    *,
    content_id: uuid.UUID | None = None,
    now: datetime | None = None,
) -> list[Recommendation]:
    """Best first, at most `first` (1-50); empty when the data say nothing."""
    principal.require(workspace_id, Action.CONTENT_READ)
    _check(first, kind, content_id)
    now = now or datetime.now(UTC)
    async with factory() as session:
        anchors: dict[uuid.UUID, str] = {}
        if kind is RecommendationKind.SIMILAR_HIGH_PERFORMERS:
            anchors = await _anchors(session, principal, workspace_id, content_id)
            if not anchors:
                return []
        items = await scores.workspace_scores(session, workspace_id, now)
        if not items:
            return []
        if kind is RecommendationKind.TOPICS:
            return await topics.topics(session, workspace_id, items, now, first)
        performers = scores.top_performers(items, similar.MAX_CANDIDATES)
        if kind is RecommendationKind.CONTENT_TO_REPURPOSE:
            connected = await repurpose.connected_platforms(session, workspace_id)
            if not connected or not performers:
                return []
            audiences = await collaborative.audiences(
                session, workspace_id, [p.content_id for p in performers[:SEEDS]], now
            )
            return repurpose.content_to_repurpose(performers, connected, audiences, now, first)
        # SIMILAR_HIGH_PERFORMERS: every scored item is a candidate (the score weighs
        # performance), the best MAX_CANDIDATES of them.
        candidates = sorted(items.values(), key=lambda i: (-i.performance, str(i.content_id)))
        candidates = candidates[: similar.MAX_CANDIDATES]
        audiences = await collaborative.audiences(
            session, workspace_id, [p.content_id for p in performers[:SEEDS]], now
        )
        return await similar.similar_high_performers(
            session, workspace_id, anchors, candidates, audiences, first
        )
