"""What one target sends: the text for its platform (the scheduled variation, else the
content's variation for that platform, else the content itself), its media, and the check
against the platform's rules. Used when scheduling (to refuse early) and again at publish
time (the text may have been edited since)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased, load_only

from app.infra.storage import Storage
from app.models import (
    AccountStatus,
    Content,
    ContentMedia,
    ContentVariation,
    MediaAsset,
    PostTarget,
    ScheduledPost,
    SocialAccount,
)
from app.models.vocabulary import ContentStatus, Platform
from app.platforms import rules
from app.platforms.publishing import MediaItem, Post


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
    attached: list[MediaAsset] = []
    if content_has_media is not False:
        rows = await session.scalars(
            select(MediaAsset)
            .join(ContentMedia, ContentMedia.media_id == MediaAsset.id)
            .where(ContentMedia.content_id == content.id)
            .order_by(ContentMedia.position)
        )
        attached = list(rows.all())
    return Draft(
        platform=platform,
        body=content.body,
        title=content.title,
        subject=content.title if platform is Platform.EMAIL else None,
        preheader=None,
        media=attached,
    )


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


# Only the columns a post is made of (not the embedding or the search vector).
_CONTENT_COLUMNS = load_only(
    Content.id,
    Content.workspace_id,
    Content.title,
    Content.body,
    Content.status,
    Content.deleted_at,
)


_PLATFORM_VARIATION = aliased(ContentVariation)
_CHOSEN = aliased(ContentVariation)
# Built once (statements with bound parameters are cached compiled; building is not free).
_LOAD = (
    select(
        Content,
        SocialAccount.status,
        SocialAccount.status_reason,
        SocialAccount.credentials,
        ScheduledPost.variation_id,
        _CHOSEN,
        _PLATFORM_VARIATION,
        select(ContentMedia.media_id).where(ContentMedia.content_id == Content.id).exists(),
    )
    .select_from(ScheduledPost)
    .join(Content, Content.id == ScheduledPost.content_id)
    .join(SocialAccount, SocialAccount.id == bindparam("account_id"))
    .outerjoin(_CHOSEN, _CHOSEN.id == ScheduledPost.variation_id)
    .outerjoin(
        _PLATFORM_VARIATION,
        (_PLATFORM_VARIATION.content_id == Content.id)
        & (_PLATFORM_VARIATION.platform == bindparam("platform")),
    )
    .where(ScheduledPost.id == bindparam("post_id"))
    .options(_CONTENT_COLUMNS)
)


async def load_target(session: AsyncSession, target: PostTarget) -> Loaded | str:
    """The target's text and media, and its account's credentials, in one statement (two
    with media); a string says why it cannot be sent."""
    row = (
        await session.execute(
            _LOAD,
            {
                "account_id": target.social_account_id,
                "platform": target.platform,
                "post_id": target.post_id,
            },
        )
    ).first()
    if row is None:
        return "The post or its account no longer exists."
    content, status, reason, sealed, variation_id, scheduled, for_platform, media = row
    if content.deleted_at is not None:
        return "The content was deleted before it went out."
    if status == AccountStatus.NEEDS_RECONNECT.value:
        return "The account needs reconnecting: " + (reason or "its token expired.")
    if status != AccountStatus.CONNECTED.value:
        return "The account was disconnected before this post went out."
    if variation_id is not None and scheduled is None:
        return "The scheduled variation was deleted before it went out."
    draft = await draft_for(
        session,
        content,
        Platform(target.platform),
        scheduled or for_platform,
        find_variation=False,
        content_has_media=bool(media),
    )
    return Loaded(
        content_id=content.id,
        content_scheduled=content.status == ContentStatus.SCHEDULED.value,
        draft=draft,
        sealed_credentials=sealed,
    )
