"""Finding content: keyword (Postgres full-text), semantic (pgvector cosine) and hybrid
(reciprocal rank fusion of both); similar content by embedding."""

from __future__ import annotations

import html
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.ai.embeddings import Embedder
from app.auth import Principal
from app.errors import BadUserInput, UserErrorCode
from app.models import Content
from app.permissions import Action
from app.services import lookup
from app.services.content.items import select_readable
from app.state import AppState

RRF_K = 60  # the usual constant: damps the weight of top ranks
CANDIDATES = 50  # per list, before fusion
MAX_QUERY = 500

# ts_headline returns the document's own text, markup included, around its highlights. It
# marks hits with these private-use code points (removed from the document first, so they
# cannot come from it); the snippet is then HTML-escaped and only they become <mark> tags.
_START, _STOP = "\ue000", "\ue001"
_HEADLINE_OPTIONS = (
    f'StartSel="{_START}", StopSel="{_STOP}", MaxWords=30, MinWords=10, MaxFragments=2'
)

# websearch_to_tsquery's NOT: a `-` starting a word or a "quoted phrase".
_NEGATED = re.compile(r'(?:^|(?<=\s))-+(?:"([^"]*)"?|([^\s"]+))')


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
      ts_headline('english', translate(left(top.body, 20000), :sentinels, ''), q.q, :options)
        AS snippet
    FROM top, q
    ORDER BY top.rank DESC, top.id
    """
)

# The HNSW scan runs with iterative_scan = relaxed_order (set per connection in app.db), which may
# return rows slightly out of distance order: the materialized CTE keeps the index scan and
# the outer ORDER BY puts the few rows back in order (as pgvector's documentation advises);
# the similarity floor is applied outside too (a distance filter inside would stop the index
# scan from being used). Items matching the query's `-word` exclusions are left out.
_SEMANTIC = text(
    """
    WITH nearest AS MATERIALIZED (
      SELECT id, embedding <=> CAST(:vector AS vector) AS distance
      FROM contents
      WHERE workspace_id = :ws AND deleted_at IS NULL AND embedding IS NOT NULL
        AND (CAST(:exclude AS uuid) IS NULL OR id <> CAST(:exclude AS uuid))
        AND (CAST(:excluded AS text) IS NULL OR NOT coalesce(
          search_vector @@ websearch_to_tsquery('english', CAST(:excluded AS text)), false))
      ORDER BY distance
      LIMIT :limit
    )
    SELECT id, 1 - distance AS similarity FROM nearest
    WHERE 1 - distance >= :floor
    ORDER BY distance, id
    """
)


@dataclass(frozen=True)
class ParsedQuery:
    """A web-search query split for the semantic side: what to look for (embedded) and
    what to leave out (the negated words and phrases, as a websearch query of their own)."""

    positive: str
    excluded: str | None


def parse_query(query: str) -> ParsedQuery:
    terms: list[str] = []

    def drop(match: re.Match[str]) -> str:
        term = (match.group(1) if match.group(1) is not None else match.group(2)).strip()
        if term:
            terms.append(term.replace('"', " "))
        return " "

    positive = " ".join(_NEGATED.sub(drop, query).split())
    # Each term quoted: websearch syntax inside a term ("or", "-") stays literal.
    excluded = " or ".join(f'"{t}"' for t in terms) or None
    return ParsedQuery(positive=positive, excluded=excluded)


def safe_snippet(raw: str | None) -> str | None:
    """The headline as safe HTML: the document's text escaped, hits in <mark>."""
    if raw is None:
        return None
    return html.escape(raw).replace(_START, "<mark>").replace(_STOP, "</mark>")


def _vector_literal(vector: list[float]) -> str:
    return "[" + ",".join(f"{v:.6f}" for v in vector) + "]"


async def keyword(
    session: AsyncSession, workspace_id: uuid.UUID, query: str, limit: int
) -> list[Hit]:
    params = {
        "query": query,
        "ws": workspace_id,
        "limit": limit,
        "sentinels": _START + _STOP,
        "options": _HEADLINE_OPTIONS,
    }
    rows = (await session.execute(_KEYWORD, params)).all()
    return [
        Hit(r.id, float(r.rank), safe_snippet(r.snippet), keyword_rank=i)
        for i, r in enumerate(rows, 1)
    ]


async def semantic(
    session: AsyncSession,
    workspace_id: uuid.UUID,
    vector: list[float],
    limit: int,
    exclude: uuid.UUID | None = None,
    *,
    min_similarity: float = -1.0,
    excluded: str | None = None,
) -> list[Hit]:
    """Nearest items with similarity >= `min_similarity`, none matching `excluded` (a
    websearch query) and not `exclude` (an item's own id)."""
    params = {
        "vector": _vector_literal(vector),
        "ws": workspace_id,
        "limit": limit,
        "exclude": exclude,
        "excluded": excluded,
        "floor": min_similarity,
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
    # A query, not a mutation: bad input is a BAD_USER_INPUT error (with the field and the
    # payload-style code in its extensions), never an internal one.
    if not query:
        raise BadUserInput(
            "Type something to search for.",
            extra={"field": "query", "reason": UserErrorCode.REQUIRED.value},
        )
    if len(query) > MAX_QUERY:
        raise BadUserInput(
            f"A search query has at most {MAX_QUERY} characters.",
            extra={"field": "query", "reason": UserErrorCode.TOO_LONG.value},
        )
    parsed = parse_query(query)
    floor = state.settings.search_min_similarity
    vector = None
    # Only negations ("-word") leave nothing to look for by meaning.
    if mode is not SearchMode.KEYWORD and parsed.positive:
        [vector] = await embedder.embed([parsed.positive])
    async with state.read_session_factory() as session:
        if mode is SearchMode.KEYWORD:
            hits = await keyword(session, workspace_id, query, first)
        elif mode is SearchMode.SEMANTIC:
            hits = []
            if vector is not None:
                hits = await semantic(
                    session,
                    workspace_id,
                    vector,
                    first,
                    min_similarity=floor,
                    excluded=parsed.excluded,
                )
        else:
            keyword_hits = await keyword(session, workspace_id, query, CANDIDATES)
            semantic_hits = []
            if vector is not None:
                semantic_hits = await semantic(
                    session,
                    workspace_id,
                    vector,
                    CANDIDATES,
                    min_similarity=floor,
                    excluded=parsed.excluded,
                )
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
    """Nearest items by embedding (empty unless this item's embedding is current, as its
    `embedded` flag says)."""
    async with state.read_session_factory() as session:
        content = await lookup.scoped_row(
            session, Content, content_id, principal, Action.CONTENT_READ
        )
        if content.embedding is None or content.embedded_version != content.version:
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
      AND src.embedded_version = src.version  -- as the item's `embedded` flag says
    ORDER BY src.id, nn.similarity DESC
    """
)


async def similar_many(
    session: AsyncSession, keys: Sequence[tuple[uuid.UUID, int]]
) -> dict[tuple[uuid.UUID, int], list[tuple[uuid.UUID, float]]]:
    """Neighbours for many items in one statement (a LATERAL nearest-neighbour scan each);
    none for an item whose embedding is not current. Callers have checked that the items
    are readable."""
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
