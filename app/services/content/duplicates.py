"""Near-duplicates found at write time, by shared wording (meaning comes later, from embeddings)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession


@dataclass(frozen=True)
class Duplicate:
    content_id: uuid.UUID
    title: str
    similarity: float


async def near_duplicates(
    session: AsyncSession,
    workspace_id: uuid.UUID,
    title: str,
    body: str,
    *,
    threshold: float,
    exclude: uuid.UUID | None = None,
    limit: int = 5,
) -> list[Duplicate]:
    """Lexical near-duplicates, found at write time (embeddings come later, from a job):
    full-text candidates, then trigram similarity of the text."""
    probe = f"{title} {body}"[:2000]
    query = text(
        """
        SELECT id, title, similarity(left(title || ' ' || body, 2000), :probe) AS sim
        FROM contents, plainto_tsquery('english', left(:probe, 400)) q
        WHERE workspace_id = :ws AND deleted_at IS NULL
          AND (CAST(:exclude AS uuid) IS NULL OR id <> CAST(:exclude AS uuid))
          AND search_vector @@ q
        ORDER BY ts_rank_cd(search_vector, q) DESC
        LIMIT 50
        """
    )
    rows = (
        await session.execute(query, {"probe": probe, "ws": workspace_id, "exclude": exclude})
    ).all()
    hits = [Duplicate(r.id, r.title, float(r.sim)) for r in rows if float(r.sim) >= threshold]
    return sorted(hits, key=lambda d: d.similarity, reverse=True)[:limit]
