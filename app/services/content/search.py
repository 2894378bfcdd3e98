"""Finding content: keyword (Postgres full-text), semantic (pgvector cosine) and hybrid
(reciprocal rank fusion of both); similar content by embedding."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.ai.embeddings import Embedder
from app.auth import Principal
from app.errors import FieldError, UserErrorCode, ValidationFailed
from app.models import Content
from app.permissions import Action
from app.services import lookup
from app.services.content.items import select_readable
from app.state import AppState

RRF_K = 60  # the usual constant: damps the weight of top ranks
CANDIDATES = 50  # per list, before fusion
MAX_QUERY = 500


class SearchMode(StrEnum):
    KEYWORD = "KEYWORD"
    SEMANTIC = "SEMANTIC"
    HYBRID = "HYBRID"


@dataclass(frozen=True)
class Hit:
    content_id: uuid.UUID
    score: float
    snippet: str | None = None
    keyword_rank: int | None = None
    semantic_rank: int | None = None
    # The item itself, when the caller asked for it.
    row: Content | None = field(default=None, compare=False)


_KEYWORD = text(
    """
    WITH q AS (SELECT websearch_to_tsquery('english', :query) AS q),
    top AS (
      SELECT c.id, c.body, ts_rank_cd(c.search_vector, q.q, 32) AS rank
      FROM contents c, q
      WHERE c.workspace_id = :ws AND c.deleted_at IS NULL AND c.search_vector @@ q.q
      ORDER BY rank DESC, c.id
      LIMIT :limit
    )
    SELECT top.id, top.rank,
      ts_headline('english', left(top.body, 20000), q.q,
        'StartSel=<mark>, StopSel=</mark>, MaxWords=30, MinWords=10, MaxFragments=2') AS snippet
    FROM top, q
    ORDER BY top.rank DESC, top.id
    """
)

# The HNSW scan runs with iterative_scan = relaxed_order (set per connection in app.db), which may
# return rows slightly out of distance order: the materialized CTE keeps the index scan and
# the outer ORDER BY puts the few rows back in order (as pgvector's documentation advises).
_SEMANTIC = text(
    """
    WITH nearest AS MATERIALIZED (
      SELECT id, embedding <=> CAST(:vector AS vector) AS distance
      FROM contents
      WHERE workspace_id = :ws AND deleted_at IS NULL AND embedding IS NOT NULL
        AND (CAST(:exclude AS uuid) IS NULL OR id <> CAST(:exclude AS uuid))
      ORDER BY distance
      LIMIT :limit
    )
    SELECT id, 1 - distance AS similarity FROM nearest ORDER BY distance, id
    """
)


def _vector_literal(vector: list[float]) -> str:
    return "[" + ",".join(f"{v:.6f}" for v in vector) + "]"


async def keyword(
    session: AsyncSession, workspace_id: uuid.UUID, query: str, limit: int
) -> list[Hit]:
    rows = (
        await session.execute(_KEYWORD, {"query": query, "ws": workspace_id, "limit": limit})
    ).all()
    return [Hit(r.id, float(r.rank), r.snippet, keyword_rank=i) for i, r in enumerate(rows, 1)]


async def semantic(
    session: AsyncSession,
    workspace_id: uuid.UUID,
    vector: list[float],
    limit: int,
    exclude: uuid.UUID | None = None,
) -> list[Hit]:
    params = {
        "vector": _vector_literal(vector),
        "ws": workspace_id,
        "limit": limit,
        "exclude": exclude,
    }
    rows = (await session.execute(_SEMANTIC, params)).all()
    return [Hit(r.id, float(r.similarity), semantic_rank=i) for i, r in enumerate(rows, 1)]


def fuse(keyword_hits: list[Hit], semantic_hits: list[Hit], limit: int) -> list[Hit]:
    """Reciprocal rank fusion: score = sum over lists of 1 / (k + rank)."""
    merged: dict[uuid.UUID, Hit] = {}
    for hit in keyword_hits + semantic_hits:
        rank = hit.keyword_rank or hit.semantic_rank or 0
        previous = merged.get(hit.content_id)
        score = 1.0 / (RRF_K + rank)
        if previous is None:
            merged[hit.content_id] = Hit(
                hit.content_id, score, hit.snippet, hit.keyword_rank, hit.semantic_rank
            )
        else:
            merged[hit.content_id] = Hit(
                hit.content_id,
                previous.score + score,
                previous.snippet or hit.snippet,
                previous.keyword_rank or hit.keyword_rank,
                previous.semantic_rank or hit.semantic_rank,
            )
    return sorted(merged.values(), key=lambda h: (-h.score, str(h.content_id)))[:limit]


async def search_content(
    state: AppState,
    embedder: Embedder,
    principal: Principal,
    workspace_id: uuid.UUID,
    query: str,
    mode: SearchMode,
    first: int,
    *,
    with_rows: bool = False,
) -> list[Hit]:
    """Best hits first; `with_rows` also reads each item (one more statement)."""
    principal.require(workspace_id, Action.CONTENT_READ)
    query = query.strip()
    if not query:
        raise ValidationFailed(
            [FieldError("query", UserErrorCode.REQUIRED, "Type something to search for.")]
        )
    if len(query) > MAX_QUERY:
        raise ValidationFailed(
            [FieldError("query", UserErrorCode.TOO_LONG, f"At most {MAX_QUERY} characters.")]
        )
    vector = None
    if mode is not SearchMode.KEYWORD:
        [vector] = await embedder.embed([query])
    async with state.read_session_factory() as session:
        if mode is SearchMode.KEYWORD:
            hits = await keyword(session, workspace_id, query, first)
        elif mode is SearchMode.SEMANTIC:
            assert vector is not None
            hits = await semantic(session, workspace_id, vector, first)
        else:
            assert vector is not None
            keyword_hits = await keyword(session, workspace_id, query, CANDIDATES)
            semantic_hits = await semantic(session, workspace_id, vector, CANDIDATES)
            hits = fuse(keyword_hits, semantic_hits, first)
        if with_rows and hits:
            rows = await session.scalars(
                select_readable().where(Content.id.in_([h.content_id for h in hits]))
            )
            by_id = {row.id: row for row in rows}
            hits = [replace(h, row=by_id.get(h.content_id)) for h in hits]
    return hits


async def similar_to(
    state: AppState, principal: Principal, content_id: uuid.UUID, first: int
) -> list[Hit]:
    """Nearest items by embedding (empty until this item has been embedded)."""
    async with state.read_session_factory() as session:
        content = await lookup.scoped_row(
            session, Content, content_id, principal, Action.CONTENT_READ
        )
        if content.embedding is None:
            return []
        return await semantic(
            session, content.workspace_id, list(content.embedding), first, exclude=content_id
        )


_SIMILAR_MANY = text(
    """
    SELECT src.id AS source, nn.id AS target, nn.similarity
    FROM contents src
    CROSS JOIN LATERAL (
      SELECT c.id, 1 - (c.embedding <=> src.embedding) AS similarity
      FROM contents c
      WHERE c.workspace_id = src.workspace_id AND c.deleted_at IS NULL
        AND c.embedding IS NOT NULL AND c.id <> src.id
      ORDER BY c.embedding <=> src.embedding
      LIMIT :limit
    ) nn
    WHERE src.id = ANY(:ids) AND src.embedding IS NOT NULL
    ORDER BY src.id, nn.similarity DESC
    """
)


async def similar_many(
    session: AsyncSession, keys: Sequence[tuple[uuid.UUID, int]]
) -> dict[tuple[uuid.UUID, int], list[tuple[uuid.UUID, float]]]:
    """Neighbours for many items in one statement (a LATERAL nearest-neighbour scan each).
    Callers have checked that the items are readable."""
    if not keys:
        return {}
    limit = max(n for _, n in keys)
    rows = (
        await session.execute(_SIMILAR_MANY, {"ids": [k for k, _ in keys], "limit": limit})
    ).all()
    by_source: dict[uuid.UUID, list[tuple[uuid.UUID, float]]] = {}
    for row in rows:
        by_source.setdefault(row.source, []).append((row.target, float(row.similarity)))
    return {(cid, n): by_source.get(cid, [])[:n] for cid, n in keys}
