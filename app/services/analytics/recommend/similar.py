"""SIMILAR_HIGH_PERFORMERS: the past performers nearest in meaning to a draft.

Anchors: the item asked for (`contentId`), else the workspace's MAX_ANCHORS most recently
updated drafts (DRAFT, IN_REVIEW, APPROVED) whose embedding is current. Candidates: the
workspace's MAX_CANDIDATES best performers (recommend/scores.py). One statement finds each
anchor's NEIGHBOURS nearest candidates by cosine distance (pgvector `<=>`; the planner walks
the contents' HNSW index, or, restricted to a few hundred candidates by id, computes their
distances exactly: either way at most MAX_ANCHORS x MAX_CANDIDATES distances). Candidates
not similar at all (similarity <= 0) are left out. A candidate scores

    similarity x performance x (1 + audience affinity)

with its best anchor, so a slightly nearer item that performed poorly ranks below a near
one that performed well. An anchor without a current embedding has no neighbours.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from app.models import Content
from app.models.vocabulary import ContentStatus, RecommendationKind
from app.services.analytics.recommend.collaborative import Audience
from app.services.analytics.recommend.result import SITE, Recommendation, Signal
from app.services.analytics.recommend.scores import ItemScore

MAX_ANCHORS = 5
MAX_CANDIDATES = 500
NEIGHBOURS = 50
DRAFTING = (ContentStatus.DRAFT.value, ContentStatus.IN_REVIEW.value, ContentStatus.APPROVED.value)

_NEAREST = text(
    """
    SELECT a.id AS anchor, nn.id AS candidate, nn.similarity
    FROM contents a
    CROSS JOIN LATERAL (
      SELECT c.id, 1 - (c.embedding <=> a.embedding) AS similarity
      FROM contents c
      WHERE c.workspace_id = :ws AND c.deleted_at IS NULL AND c.embedding IS NOT NULL
        AND c.id = ANY(:candidates) AND c.id <> ALL(:anchors)
      ORDER BY c.embedding <=> a.embedding
      LIMIT :limit
    ) nn
    WHERE a.id = ANY(:anchors) AND a.workspace_id = :ws
      AND a.embedding IS NOT NULL AND a.embedded_version = a.version
    """
)


async def recent_drafts(session: AsyncSession, workspace_id: uuid.UUID) -> dict[uuid.UUID, str]:
    rows = await session.execute(
        select(Content.id, Content.title)
        .where(
            Content.workspace_id == workspace_id,
            Content.deleted_at.is_(None),
            Content.status.in_(DRAFTING),
            Content.embedding.is_not(None),
            Content.embedded_version == Content.version,
        )
        .order_by(Content.updated_at.desc(), Content.id.desc())
        .limit(MAX_ANCHORS)
    )
    return {r.id: r.title for r in rows}


async def similar_high_performers(
    session: AsyncSession,
    workspace_id: uuid.UUID,
    anchors: Mapping[uuid.UUID, str],  # id -> title
    candidates: list[ItemScore],
    audiences: Mapping[uuid.UUID, Audience],
    first: int,
) -> list[Recommendation]:
    if not anchors or not candidates:
        return []
    by_id = {c.content_id: c for c in candidates}
    params = {
        "ws": workspace_id,
        "anchors": list(anchors),
        "candidates": list(by_id),
        "limit": NEIGHBOURS,
    }
    best: dict[uuid.UUID, tuple[float, uuid.UUID, float]] = {}  # candidate -> score, anchor, sim
    for row in (await session.execute(_NEAREST, params)).all():
        item = by_id[row.candidate]
        similarity = float(row.similarity)
        if similarity <= 0:
            continue
        audience = audiences.get(item.content_id)
        affinity = audience.affinity if audience else 0.0
        score = similarity * item.performance * (1.0 + affinity)
        if score > best.get(item.content_id, (-1.0, row.anchor, 0.0))[0]:
            best[item.content_id] = (score, row.anchor, similarity)
    ranked = sorted(best.items(), key=lambda kv: (-kv[1][0], str(kv[0])))[:first]
    found = []
    for content_id, (score, anchor, similarity) in ranked:
        item = by_id[content_id]
        main = item.main
        audience = audiences.get(content_id)
        explanation = (
            f'{similarity:.2f} similar to your draft "{anchors[anchor]}"; {item.describe()}'
        )
        signals = [
            Signal("similarity", round(similarity, 4)),
            Signal("performance", round(item.performance, 4)),
            Signal("lift", round(main.lift, 4)),
            Signal("engagementRate", round(main.rate, 6)),
            Signal("medianEngagementRate", round(main.median_rate, 6)),
            Signal("impressions", float(main.impressions)),
        ]
        if audience is not None:
            explanation += f"; {audience.describe()}"
            signals.append(Signal("audienceAffinity", round(audience.affinity, 4)))
        found.append(
            Recommendation(
                kind=RecommendationKind.SIMILAR_HIGH_PERFORMERS,
                score=round(score, 6),
                explanation=explanation + ".",
                signals=tuple(signals),
                content_ids=(content_id, anchor),
                platforms=(main.channel,) if main.channel != SITE else (),
            )
        )
    return found
