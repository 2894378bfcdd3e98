"""Per-platform variations of a content item. Saved even when over a platform's limits
(people fix drafts step by step); every read reports the rule check."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth import Principal
from app.errors import FieldError, UserErrorCode, ValidationFailed
from app.models import Content, ContentVariation, MediaAsset
from app.models.vocabulary import Platform
from app.permissions import Action
from app.platforms.rules import Evaluation, MediaItem, evaluate
from app.services import lookup
from app.services.audit import trail as audit
from app.services.content import text_metrics
from app.state import AppState

MAX_BODY = 100_000


@dataclass(frozen=True)
class VariationFields:
    body: str | None = None
    subject: str | None = None
    preheader: str | None = None
    media_ids: list[uuid.UUID] | None = None


async def _check_media(
    session: AsyncSession, workspace_id: uuid.UUID, media_ids: list[uuid.UUID]
) -> None:
    if not media_ids:
        return
    found = set(
        (
            await session.scalars(
                select(MediaAsset.id).where(
                    MediaAsset.id.in_(media_ids), MediaAsset.workspace_id == workspace_id
                )
            )
        ).all()
    )
    if set(media_ids) - found:
        raise ValidationFailed(
            [
                FieldError(
                    "mediaIds", UserErrorCode.NOT_FOUND, "Some media are not in this workspace."
                )
            ]
        )


def _validate(fields: VariationFields) -> None:
    if fields.body is not None and len(fields.body) > MAX_BODY:
        raise ValidationFailed(
            [FieldError("body", UserErrorCode.TOO_LONG, f"At most {MAX_BODY} characters.")]
        )
    if fields.media_ids is not None and len(fields.media_ids) != len(set(fields.media_ids)):
        raise ValidationFailed(
            [FieldError("mediaIds", UserErrorCode.DUPLICATE, "Each medium once.")]
        )


async def create(
    state: AppState,
    principal: Principal,
    content_id: uuid.UUID,
    platform: Platform,
    fields: VariationFields,
) -> ContentVariation:
    _validate(fields)
    async with state.session_factory() as session, session.begin():
        content = await lookup.scoped_row(
            session, Content, content_id, principal, Action.CONTENT_EDIT
        )
        exists = await session.scalar(
            select(ContentVariation.id).where(
                ContentVariation.content_id == content_id,
                ContentVariation.platform == platform.value,
            )
        )
        if exists is not None:
            raise ValidationFailed(
                [
                    FieldError(
                        "platform",
                        UserErrorCode.EXISTS,
                        f"This content already has a {platform.value} variation.",
                    )
                ]
            )
        await _check_media(session, content.workspace_id, fields.media_ids or [])
        body = fields.body if fields.body is not None else content.body
        measured = await text_metrics.measure_variation(session, content_id, body)
        variation = ContentVariation(
            id=uuid.uuid4(),
            content_id=content_id,
            workspace_id=content.workspace_id,
            platform=platform.value,
            body=body,
            subject=fields.subject
            if fields.subject is not None
            else (content.title if platform is Platform.EMAIL else None),
            preheader=fields.preheader,
            media_ids=fields.media_ids or [],
            created_by_id=principal.user_id,
        )
        measured.apply(variation)
        session.add(variation)
        audit.record(
            session,
            principal,
            "createVariation",
            workspace_id=content.workspace_id,
            target_type="ContentVariation",
            target_id=variation.id,
            details={"platform": platform.value},
        )
    return await reload(state, variation.id)


async def update(
    state: AppState, principal: Principal, variation_id: uuid.UUID, fields: VariationFields
) -> ContentVariation:
    _validate(fields)
    async with state.session_factory() as session, session.begin():
        if fields.body is not None:  # item and workspace first (the lock order; text_metrics)
            item_id = await session.scalar(
                select(ContentVariation.content_id).where(ContentVariation.id == variation_id)
            )
            if item_id is not None:
                await text_metrics.lock_item(session, item_id)
        variation = await lookup.scoped_row(
            session, ContentVariation, variation_id, principal, Action.CONTENT_EDIT, for_update=True
        )
        if fields.media_ids is not None:
            await _check_media(session, variation.workspace_id, fields.media_ids)
            variation.media_ids = fields.media_ids
        if fields.body is not None:
            variation.body = fields.body
            measured = await text_metrics.measure_variation(
                session, variation.content_id, fields.body
            )
            measured.apply(variation)
        if fields.subject is not None:
            variation.subject = fields.subject
        if fields.preheader is not None:
            variation.preheader = fields.preheader
        audit.record_row(session, principal, "updateVariation", variation)
    return await reload(state, variation_id)


async def reload(state: AppState, variation_id: uuid.UUID) -> ContentVariation:
    async with state.session_factory() as session:
        row = await session.get(ContentVariation, variation_id)
    assert row is not None
    return row


class VariationRecord(Protocol):
    """A variation's fields as the read paths use them: a `ContentVariation` entity, or a
    plain row of `variations_for` (pages of items build no ORM objects)."""

    @property
    def id(self) -> uuid.UUID: ...
    @property
    def content_id(self) -> uuid.UUID: ...
    @property
    def workspace_id(self) -> uuid.UUID: ...
    @property
    def platform(self) -> str: ...
    @property
    def body(self) -> str: ...
    @property
    def subject(self) -> str | None: ...
    @property
    def preheader(self) -> str | None: ...
    @property
    def media_ids(self) -> list[uuid.UUID]: ...
    @property
    def updated_at(self) -> datetime: ...
    @property
    def text_metrics(self) -> dict[str, Any] | None: ...
    @property
    def text_metrics_version(self) -> int | None: ...


def check(variation: VariationRecord, media: Sequence[MediaAsset]) -> Evaluation:
    by_id = {m.id: m for m in media}
    items = [
        MediaItem(mime_type=m.mime_type, size_bytes=m.size_bytes, kind=m.kind)
        for m in (by_id.get(i) for i in variation.media_ids)
        if m is not None
    ]
    return evaluate(
        Platform(variation.platform),
        variation.body,
        subject=variation.subject,
        preheader=variation.preheader,
        media=items,
    )


@dataclass(slots=True)
class ListedVariation:
    """A VariationRecord as plain slots (a SQLAlchemy Row's attribute reads cost ~1.6 us)."""

    id: uuid.UUID
    content_id: uuid.UUID
    workspace_id: uuid.UUID
    platform: str
    body: str
    subject: str | None
    preheader: str | None
    media_ids: list[uuid.UUID]
    updated_at: datetime
    text_metrics: dict[str, Any] | None
    text_metrics_version: int | None


_VARIATIONS = ContentVariation.__table__.c
# ListedVariation's columns in its order; table columns throughout, for plain rows (see
# library.select_readable_rows).
_BY_CONTENT = select(*(_VARIATIONS[f.name] for f in fields(ListedVariation))).order_by(
    _VARIATIONS.content_id, _VARIATIONS.platform
)


async def variations_for(
    session: AsyncSession, content_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[VariationRecord]]:
    """Each item's variations by platform, as plain rows (no ORM objects)."""
    query = _BY_CONTENT.where(_VARIATIONS.content_id.in_(content_ids))
    rows = [ListedVariation(*row) for row in await session.execute(query)]
    out: dict[uuid.UUID, list[VariationRecord]] = {i: [] for i in content_ids}
    for row in rows:
        out[row.content_id].append(row)
    return out
