"""Worker jobs that compute embeddings after commit (never inside a request)."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from app.ai.embeddings import Embedder, build_embedder, content_text
from app.jobs.runner import Handler, JobContext, PermanentJobError
from app.models import AudienceSegment, Content
from app.services.content import items as content_service
from app.services.content import segments
from app.settings import Settings, get_settings

_EMBEDDERS: dict[tuple[Any, ...], Embedder] = {}


def embedder_for(settings: Settings | None) -> Embedder:
    """One embedder (and its HTTP client) per process and configuration."""
    settings = settings or get_settings()
    key = (
        settings.embedding_provider,
        settings.embedding_dimensions,
        settings.embedding_model,
        settings.openai_base_url,
    )
    if key not in _EMBEDDERS:
        _EMBEDDERS[key] = build_embedder(settings)
    return _EMBEDDERS[key]


async def embed_content(ctx: JobContext) -> dict[str, Any]:
    try:
        content_id = uuid.UUID(str(ctx.payload["content_id"]))
        version = int(ctx.payload["version"])
    except (KeyError, ValueError) as exc:
        raise PermanentJobError(f"bad payload: {exc}") from exc
    async with ctx.factory() as session:
        content = await session.get(Content, content_id)
        if content is None:
            return {"skipped": "content deleted"}
        if content.version != version:
            return {"skipped": f"superseded by version {content.version}"}
        text = content_text(content.title, content.body)
    embedder = embedder_for(ctx.settings)
    [vector] = await embedder.embed([text])
    async with ctx.factory() as session, session.begin():
        stored = await mark_embedded(session, content_id, version, vector, embedder.name)
    return {"stored": stored, "model": embedder.name, "version": version}


async def embed_segment(ctx: JobContext) -> dict[str, Any]:
    try:
        segment_id = uuid.UUID(str(ctx.payload["segment_id"]))
    except (KeyError, ValueError) as exc:
        raise PermanentJobError(f"bad payload: {exc}") from exc
    async with ctx.factory() as session:
        segment = await session.get(AudienceSegment, segment_id)
        if segment is None:
            return {"skipped": "segment deleted"}
        text = segments.segment_text(segment)
    embedder = embedder_for(ctx.settings)
    [vector] = await embedder.embed([text])
    async with ctx.factory() as session, session.begin():
        stored = await segments.store_embedding(session, segment_id, text, vector, embedder.name)
    return {"stored": stored, "model": embedder.name}


JOB_HANDLERS: dict[str, Handler] = {
    content_service.EMBED_KIND: embed_content,
    segments.EMBED_KIND: embed_segment,
}


async def mark_embedded(
    session: AsyncSession, content_id: uuid.UUID, version: int, vector: list[float], model: str
) -> bool:
    """Store an embedding only if the text has not changed since it was computed."""
    result = await session.execute(
        update(Content)
        .where(Content.id == content_id, Content.version == version)
        .values(embedding=vector, embedding_model=model, embedded_version=version)
        .returning(Content.id)
    )
    return result.first() is not None
