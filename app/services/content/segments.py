"""Audience segments: who content is personalised for. Each gets an embedding (by a job)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import update

from app.auth import Principal
from app.errors import FieldError, UserErrorCode, ValidationFailed
from app.jobs import store as jobs
from app.models import AudienceSegment
from app.pagination import Page
from app.permissions import Action
from app.services import lookup
from app.services.audit import trail as audit
from app.state import AppState

EMBED_KIND = "embed_segment"
MAX_INTERESTS = 50


@dataclass(frozen=True)
class SegmentFields:
    name: str | None = None
    description: str | None = None
    industry: str | None = None
    experience_level: str | None = None
    interests: list[str] | None = None


def _validate(fields: SegmentFields, *, creating: bool) -> list[FieldError]:
    errors = []
    if creating or fields.name is not None:
        name = (fields.name or "").strip()
        if not name or len(name) > 200:
            errors.append(
                FieldError("name", UserErrorCode.INVALID, "Name must be 1 to 200 characters.")
            )
    if fields.description is not None and len(fields.description) > 4000:
        errors.append(FieldError("description", UserErrorCode.TOO_LONG, "At most 4000 characters."))
    for field, value in (
        ("industry", fields.industry),
        ("experienceLevel", fields.experience_level),
    ):
        if value is not None and len(value) > 100:
            errors.append(
                FieldError(f"attributes.{field}", UserErrorCode.TOO_LONG, "At most 100 characters.")
            )
    if fields.interests is not None and (
        len(fields.interests) > MAX_INTERESTS or any(len(i) > 100 for i in fields.interests)
    ):
        errors.append(
            FieldError(
                "attributes.interests",
                UserErrorCode.INVALID,
                f"At most {MAX_INTERESTS} interests of 100 characters.",
            )
        )
    return errors


def _attributes(current: dict[str, Any], fields: SegmentFields) -> dict[str, Any]:
    out = dict(current)
    if fields.industry is not None:
        out["industry"] = fields.industry.strip()
    if fields.experience_level is not None:
        out["experience_level"] = fields.experience_level.strip()
    if fields.interests is not None:
        out["interests"] = [i.strip() for i in fields.interests if i.strip()]
    return out


def segment_text(segment: AudienceSegment) -> str:
    """What gets embedded: the segment described in words."""
    attrs = segment.attributes
    parts = [segment.name, segment.description]
    if attrs.get("industry"):
        parts.append(f"Industry: {attrs['industry']}")
    if attrs.get("experience_level"):
        parts.append(f"Experience: {attrs['experience_level']}")
    if attrs.get("interests"):
        parts.append("Interests: " + ", ".join(attrs["interests"]))
    return "\n".join(p for p in parts if p)


def _embed_job(state: AppState, session: Any, segment: AudienceSegment) -> Any:
    return jobs.new_job(
        session,
        EMBED_KIND,
        {
            "segment_id": str(segment.id),
            "updated_at": segment.updated_at.isoformat() if segment.updated_at else None,
        },
        state.settings.job_max_attempts,
        workspace_id=segment.workspace_id,
    )


async def create(
    state: AppState, principal: Principal, workspace_id: uuid.UUID, fields: SegmentFields
) -> AudienceSegment:
    principal.require(workspace_id, Action.CONTENT_EDIT)
    if errors := _validate(fields, creating=True):
        raise ValidationFailed(errors)
    async with state.session_factory() as session, session.begin():
        segment = AudienceSegment(
            id=uuid.uuid4(),
            workspace_id=workspace_id,
            name=(fields.name or "").strip(),
            description=(fields.description or "").strip(),
            attributes=_attributes({}, fields),
        )
        session.add(segment)
        await session.flush()
        job = _embed_job(state, session, segment)
        audit.record(
            session,
            principal,
            "createAudienceSegment",
            workspace_id=workspace_id,
            target_type="AudienceSegment",
            target_id=segment.id,
            details={"name": segment.name},
        )
    await jobs.enqueue(state.arq, job.id, 0)
    return await get(state, principal, segment.id)


async def update_segment(
    state: AppState, principal: Principal, segment_id: uuid.UUID, fields: SegmentFields
) -> AudienceSegment:
    if errors := _validate(fields, creating=False):
        raise ValidationFailed(errors)
    async with state.session_factory() as session, session.begin():
        segment = await lookup.scoped_row(
            session, AudienceSegment, segment_id, principal, Action.CONTENT_EDIT, for_update=True
        )
        if fields.name is not None:
            segment.name = fields.name.strip()
        if fields.description is not None:
            segment.description = fields.description.strip()
        segment.attributes = _attributes(segment.attributes, fields)
        segment.embedding = None  # stale until the job recomputes it
        await session.flush()
        await session.refresh(segment)
        job = _embed_job(state, session, segment)
        audit.record_row(session, principal, "updateAudienceSegment", segment)
    await jobs.enqueue(state.arq, job.id, 0)
    return await get(state, principal, segment_id)


async def delete(state: AppState, principal: Principal, segment_id: uuid.UUID) -> None:
    async with state.session_factory() as session, session.begin():
        segment = await lookup.scoped_row(
            session, AudienceSegment, segment_id, principal, Action.CONTENT_APPROVE
        )
        await session.delete(segment)
        audit.record_row(
            session, principal, "deleteAudienceSegment", segment, {"name": segment.name}
        )


async def get(state: AppState, principal: Principal, segment_id: uuid.UUID) -> AudienceSegment:
    return await lookup.fetch_scoped(
        state.session_factory, AudienceSegment, segment_id, principal, Action.CONTENT_READ
    )


async def list_segments(
    state: AppState, principal: Principal, workspace_id: uuid.UUID, *, first: int, after: str | None
) -> Page[AudienceSegment]:
    return await lookup.workspace_page(
        state.session_factory,
        principal,
        AudienceSegment,
        workspace_id,
        Action.CONTENT_READ,
        first=first,
        after=after,
    )


async def store_embedding(
    session: Any, segment_id: uuid.UUID, expected_text: str, vector: list[float], model: str
) -> bool:
    """Store only if the segment still reads the same (a later edit has its own job)."""
    segment = await session.get(AudienceSegment, segment_id, with_for_update=True)
    if segment is None or segment_text(segment) != expected_text:
        return False
    await session.execute(
        update(AudienceSegment)
        .where(AudienceSegment.id == segment_id)
        .values(embedding=vector, embedding_model=model)
    )
    return True
