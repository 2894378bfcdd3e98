"""What one target sends: the text for its platform (the scheduled variation, else the
content's variation for that platform, else the content itself), its media, and the check
against the platform's rules. Used when scheduling (to refuse early) and again at publish
time (the text may have been edited since)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.infra.storage import Storage
from app.models import (
    AccountStatus,
    Content,
    ContentMedia,
    ContentVariation,
    MediaAsset,
    ScheduledPost,
    SocialAccount,
)
from app.models.vocabulary import ContentStatus, Platform, WebhookEvent
from app.models.webhooks import WebhookEndpoint
from app.platforms import rules
from app.platforms.publishing import MediaItem, Post
from app.services.publishing import transitions


@dataclass(frozen=True)
class Draft:
    platform: Platform
    body: str
    title: str
    subject: str | None
    preheader: str | None
    media: Sequence[MediaAsset]


async def draft_for(
    session: AsyncSession,
    content: Content,
    platform: Platform,
    variation: ContentVariation | None,
    *,
    find_variation: bool = True,
    content_has_media: bool | None = None,
) -> Draft:
    """The text `platform` gets. `variation`: the one scheduled, if one was; otherwise the
    content's variation for the platform is used when it has one (`find_variation=False`:
    the caller already looked, and `variation` is it). `content_has_media=False` skips
    looking for the content's media."""
    if variation is None and find_variation:
        variation = await session.scalar(
            select(ContentVariation).where(
                ContentVariation.content_id == content.id,
                ContentVariation.platform == platform.value,
            )
        )
    if variation is not None:
        media = await _assets(session, variation.workspace_id, variation.media_ids)
        return Draft(
            platform=platform,
            body=variation.body,
            title=content.title,
            subject=variation.subject or (content.title if platform is Platform.EMAIL else None),
            preheader=variation.preheader,
            media=media,
        )
    attached = await _content_media(session, content.id) if content_has_media is not False else []
    return Draft(
        platform=platform,
        body=content.body,
        title=content.title,
        subject=content.title if platform is Platform.EMAIL else None,
        preheader=None,
        media=attached,
    )


async def _content_media(session: AsyncSession, content_id: uuid.UUID) -> list[MediaAsset]:
    rows = await session.scalars(
        select(MediaAsset)
        .join(ContentMedia, ContentMedia.media_id == MediaAsset.id)
        .where(ContentMedia.content_id == content_id)
        .order_by(ContentMedia.position)
    )
    return list(rows.all())


async def _assets(
    session: AsyncSession, workspace_id: uuid.UUID, ids: Sequence[uuid.UUID]
) -> list[MediaAsset]:
    if not ids:
        return []
    rows = await session.scalars(
        select(MediaAsset).where(MediaAsset.id.in_(ids), MediaAsset.workspace_id == workspace_id)
    )
    by_id = {row.id: row for row in rows.all()}
    return [by_id[i] for i in ids if i in by_id]


def check(draft: Draft) -> rules.Evaluation:
    return rules.evaluate(
        draft.platform,
        draft.body,
        subject=draft.subject,
        preheader=draft.preheader,
        media=[
            rules.MediaItem(mime_type=m.mime_type, size_bytes=m.size_bytes, kind=m.kind)
            for m in draft.media
        ],
    )


def post_of(
    draft: Draft,
    evaluation: rules.Evaluation,
    *,
    target_id: uuid.UUID,
    content_id: uuid.UUID,
    idempotency_key: str,
    storage: Storage | None,
) -> Post:
    parts = tuple(evaluation.parts) if evaluation.parts else (draft.body,)
    media = tuple(
        MediaItem(
            url=storage.url(m.storage_key) if storage is not None else m.storage_key,
            mime_type=m.mime_type,
            alt_text=m.alt_text or None,
        )
        for m in draft.media
    )
    return Post(
        target_id=target_id,
        content_id=content_id,
        text=draft.body,
        parts=parts,
        media=media,
        subject=draft.subject,
        preheader=draft.preheader,
        title=draft.title,
        idempotency_key=idempotency_key,
    )


def violations_text(evaluation: rules.Evaluation) -> str:
    return " ".join(v.message for v in evaluation.violations)


@dataclass(frozen=True)
class Loaded:
    content_id: uuid.UUID
    content_scheduled: bool
    draft: Draft
    sealed_credentials: str | None
    # Something follows its publication in the same transaction: a first comment, a
    # series' next post, or a webhook endpoint listening for POST_PUBLISHED.
    followups: bool = False


_C = Content.__table__.c
_A = SocialAccount.__table__.c
_P = ScheduledPost.__table__.c
_CHOSEN = ContentVariation.__table__.alias("chosen")
_FOR_PLATFORM = ContentVariation.__table__.alias("for_platform")
_CLAIMED = transitions.CLAIM.cte("claimed")
# The claim and what the post is made of, in one statement: Core rows, not ORM objects
# (this runs once per publish: the ORM's row handling cost more than the query), built
# once with bound parameters, only the columns a post is made of. Outer joins from the
# claimed row: a claim always comes back, with NULLs where its post or account is gone.
_CLAIM_AND_LOAD = (
    select(
        *(_CLAIMED.c[c.name] for c in transitions.TARGET),
        _C.id.label("content_id"),
        _C.title,
        _C.body,
        _C.status.label("content_status"),
        _C.deleted_at,
        _A.status.label("account_status"),
        _A.status_reason,
        _A.credentials,
        _P.variation_id,
        func.coalesce(_CHOSEN.c.id, _FOR_PLATFORM.c.id).label("v_id"),
        func.coalesce(_CHOSEN.c.body, _FOR_PLATFORM.c.body).label("v_body"),
        func.coalesce(_CHOSEN.c.subject, _FOR_PLATFORM.c.subject).label("v_subject"),
        func.coalesce(_CHOSEN.c.preheader, _FOR_PLATFORM.c.preheader).label("v_preheader"),
        func.coalesce(_CHOSEN.c.media_ids, _FOR_PLATFORM.c.media_ids).label("v_media"),
        _CHOSEN.c.id.label("chosen_id"),
        select(ContentMedia.media_id)
        .where(ContentMedia.content_id == _C.id)
        .exists()
        .label("has_media"),
        select(WebhookEndpoint.id)
        .where(
            WebhookEndpoint.workspace_id == _CLAIMED.c.workspace_id,
            WebhookEndpoint.active.is_(True),
            WebhookEndpoint.events.contains([WebhookEvent.POST_PUBLISHED.value]),
        )
        .exists()
        .label("hooked"),
    )
    .select_from(_CLAIMED)
    .outerjoin(ScheduledPost.__table__, _P.id == _CLAIMED.c.post_id)
    .outerjoin(Content.__table__, _C.id == _P.content_id)
    .outerjoin(SocialAccount.__table__, _A.id == _CLAIMED.c.social_account_id)
    .outerjoin(_CHOSEN, _CHOSEN.c.id == _P.variation_id)
    # Only without a chosen variation: at most one of the two joins matches, so each
    # coalesce below reads one variation.
    .outerjoin(
        _FOR_PLATFORM,
        (_FOR_PLATFORM.c.content_id == _C.id)
        & (_FOR_PLATFORM.c.platform == _CLAIMED.c.platform)
        & _P.variation_id.is_(None),
    )
)


async def claim_and_load(
    session: AsyncSession, target_id: uuid.UUID, expected_attempts: int, lease_seconds: float
) -> tuple[transitions.Target, Loaded | str] | None:
    """Claim the target (transitions.CLAIM) and read its text, media and account's
    credentials: one statement (two with media). None: not ours to attempt. A string says
    why the claimed target cannot be sent."""
    conn = await session.connection()
    row = (
        await conn.execute(
            _CLAIM_AND_LOAD,
            transitions.claim_params(target_id, expected_attempts, lease_seconds),
        )
    ).first()
    if row is None:
        return None
    target = transitions.Target.of(row)
    return target, await _loaded(session, target, row)


async def _loaded(session: AsyncSession, target: transitions.Target, row: Any) -> Loaded | str:
    if row.content_id is None or row.account_status is None:
        return "The post or its account no longer exists."
    if row.deleted_at is not None:
        return "The content was deleted before it went out."
    if row.account_status == AccountStatus.NEEDS_RECONNECT.value:
        return "The account needs reconnecting: " + (row.status_reason or "its token expired.")
    if row.account_status != AccountStatus.CONNECTED.value:
        return "The account was disconnected before this post went out."
    if row.variation_id is not None and row.chosen_id is None:
        return "The scheduled variation was deleted before it went out."
    platform = Platform(target.platform)
    email = platform is Platform.EMAIL
    if row.v_id is not None:
        draft = Draft(
            platform=platform,
            body=row.v_body,
            title=row.title,
            subject=row.v_subject or (row.title if email else None),
            preheader=row.v_preheader,
            media=await _assets(session, target.workspace_id, row.v_media or []),
        )
    else:
        draft = Draft(
            platform=platform,
            body=row.body,
            title=row.title,
            subject=row.title if email else None,
            preheader=None,
            media=await _content_media(session, row.content_id) if row.has_media else [],
        )
    return Loaded(
        content_id=row.content_id,
        content_scheduled=row.content_status == ContentStatus.SCHEDULED.value,
        draft=draft,
        sealed_credentials=row.credentials,
        followups=bool(row.hooked)
        or target.first_comment is not None
        or target.series_id is not None,
    )
