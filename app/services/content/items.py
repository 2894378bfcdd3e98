"""The content library: create, edit (optimistic concurrency, versions), soft delete,
list, the review workflow and comments."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import defer

from app.auth import Principal
from app.errors import FieldError, NotFound, UserErrorCode, ValidationFailed
from app.jobs import store as jobs
from app.models import Campaign, Content, ContentVersion, Job, Workspace
from app.models.vocabulary import ContentFormat, ContentStatus, ContentType
from app.permissions import Action, Role
from app.services import lookup
from app.services.audit import trail as audit
from app.services.content import text_metrics
from app.services.content.duplicates import Duplicate, near_duplicates
from app.state import AppState

MAX_TITLE = 500
MAX_BODY = 200_000
MAX_TAGS = 50
MAX_TAG = 50
EMBED_KIND = "embed_content"


EDITABLE_BY_MEMBER = {ContentStatus.DRAFT}
EDITABLE = {ContentStatus.DRAFT, ContentStatus.IN_REVIEW, ContentStatus.APPROVED}


@dataclass(frozen=True)
class ContentFields:
    title: str | None = None
    body: str | None = None
    content_type: str | None = None
    format: str | None = None
    campaign_id: uuid.UUID | None = None
    clear_campaign: bool = False
    tags: list[str] | None = None


def _clean_tags(tags: list[str]) -> list[str]:
    seen: dict[str, None] = {}
    for tag in tags:
        cleaned = tag.strip().lower().lstrip("#")
        if cleaned:
            seen.setdefault(cleaned, None)
    return list(seen)


def _validate(fields: ContentFields, *, creating: bool) -> list[FieldError]:
    errors: list[FieldError] = []
    if fields.title is not None or creating:
        title = (fields.title or "").strip()
        if not title:
            errors.append(FieldError("title", UserErrorCode.REQUIRED, "Title is required."))
        elif len(title) > MAX_TITLE:
            errors.append(
                FieldError("title", UserErrorCode.TOO_LONG, f"At most {MAX_TITLE} characters.")
            )
    if fields.body is not None and len(fields.body) > MAX_BODY:
        errors.append(FieldError("body", UserErrorCode.TOO_LONG, f"At most {MAX_BODY} characters."))
    if creating and fields.body is None:
        errors.append(FieldError("body", UserErrorCode.REQUIRED, "Body is required."))
    if fields.content_type is not None and fields.content_type not in ContentType.__members__:
        errors.append(FieldError("contentType", UserErrorCode.INVALID, "Unknown content type."))
    if fields.format is not None and fields.format not in ContentFormat.__members__:
        errors.append(FieldError("format", UserErrorCode.INVALID, "Unknown format."))
    if fields.tags is not None:
        tags = _clean_tags(fields.tags)
        if len(tags) > MAX_TAGS:
            errors.append(FieldError("tags", UserErrorCode.TOO_MANY, f"At most {MAX_TAGS} tags."))
        if any(len(t) > MAX_TAG for t in tags):
            errors.append(
                FieldError(
                    "tags", UserErrorCode.TOO_LONG, f"Each tag at most {MAX_TAG} characters."
                )
            )
    return errors


async def check_campaign(
    session: AsyncSession, workspace_id: uuid.UUID, campaign_id: uuid.UUID
) -> None:
    found = await session.scalar(
        select(Campaign.id).where(Campaign.id == campaign_id, Campaign.workspace_id == workspace_id)
    )
    if found is None:
        raise ValidationFailed(
            [
                FieldError(
                    "campaignId", UserErrorCode.NOT_FOUND, "No such campaign in this workspace."
                )
            ]
        )


async def _enqueue_embedding(state: AppState, session: AsyncSession, content: Content) -> Job:
    return jobs.new_job(
        session,
        EMBED_KIND,
        {"content_id": str(content.id), "version": content.version},
        state.settings.job_max_attempts,
        workspace_id=content.workspace_id,
    )


async def create(
    state: AppState, principal: Principal, workspace_id: uuid.UUID, fields: ContentFields
) -> tuple[Content, list[Duplicate]]:
    principal.require(workspace_id, Action.CONTENT_EDIT)
    if errors := _validate(fields, creating=True):
        raise ValidationFailed(errors)
    assert fields.title is not None and fields.body is not None
    async with state.session_factory() as session, session.begin():
        if fields.campaign_id is not None:
            await check_campaign(session, workspace_id, fields.campaign_id)
        content = Content(
            id=uuid.uuid4(),
            workspace_id=workspace_id,
            title=fields.title.strip(),
            body=fields.body,
            content_type=fields.content_type or "SOCIAL_POST",
            format=fields.format or "MARKDOWN",
            status=ContentStatus.DRAFT.value,
            campaign_id=fields.campaign_id,
            tags=_clean_tags(fields.tags or []),
            created_by_id=principal.user_id,
            updated_by_id=principal.user_id,
            version=1,
        )
        await text_metrics.measure_content(session, content)
        session.add(content)
        await session.flush()
        session.add(version_row(content, principal))
        duplicates = await near_duplicates(
            session,
            workspace_id,
            content.title,
            content.body,
            threshold=state.settings.duplicate_similarity * 0.75,
            exclude=content.id,
        )
        job = await _enqueue_embedding(state, session, content)
        audit.record(
            session,
            principal,
            "createContent",
            workspace_id=workspace_id,
            target_type="Content",
            target_id=content.id,
            details={"title": content.title},
        )
    await jobs.enqueue(state.arq, job.id, 0)
    return await reload(state, content.id), duplicates


def version_row(content: Content, principal: Principal) -> ContentVersion:
    return ContentVersion(
        id=uuid.uuid4(),
        content_id=content.id,
        version=content.version,
        title=content.title,
        body=content.body,
        format=content.format,
        created_by_id=principal.user_id,
    )


async def reload(state: AppState, content_id: uuid.UUID) -> Content:
    async with state.session_factory() as session:
        content = await session.get(Content, content_id)
    assert content is not None
    return content


def require_edit(principal: Principal, content: Content) -> Role:
    role = principal.require(content.workspace_id, Action.CONTENT_EDIT)
    status = ContentStatus(content.status)
    if content.deleted_at is not None:
        raise ValidationFailed(
            [FieldError(None, UserErrorCode.DELETED, "Restore the content before editing it.")]
        )
    if status not in EDITABLE:
        raise ValidationFailed(
            [
                FieldError(
                    None,
                    UserErrorCode.INVALID_STATE,
                    f"{status.value.lower()} content cannot be edited.",
                )
            ]
        )
    if role < Role.ADMIN and status not in EDITABLE_BY_MEMBER:
        raise ValidationFailed(
            [
                FieldError(
                    None,
                    UserErrorCode.INVALID_STATE,
                    "Only drafts can be edited; ask an admin to request changes.",
                )
            ]
        )
    return role


async def update_content(
    state: AppState,
    principal: Principal,
    content_id: uuid.UUID,
    fields: ContentFields,
    *,
    expected_version: int,
) -> tuple[Content, list[Duplicate]]:
    """Apply `fields` only if the stored version is `expected_version`; else CONFLICT and
    nothing is written. Each update stores a new version."""
    if errors := _validate(fields, creating=False):
        raise ValidationFailed(errors)
    async with state.session_factory() as session, session.begin():
        content = await lookup.scoped_row(
            session, Content, content_id, principal, None, for_update=True
        )
        require_edit(principal, content)
        if content.version != expected_version:
            raise ValidationFailed(
                [
                    FieldError(
                        "expectedVersion",
                        UserErrorCode.CONFLICT,
                        f"The content changed (now version {content.version}); reload and retry.",
                    )
                ]
            )
        if fields.campaign_id is not None:
            await check_campaign(session, content.workspace_id, fields.campaign_id)
        changes: dict[str, Any] = {}
        for name in ("title", "body", "content_type", "format"):
            value = getattr(fields, name)
            if value is not None and value != getattr(content, name):
                changes[name] = value.strip() if name == "title" else value
        if fields.tags is not None:
            changes["tags"] = _clean_tags(fields.tags)
        retag = "tags" in changes and changes["tags"] != content.tags
        if fields.campaign_id is not None or fields.clear_campaign:
            changes["campaign_id"] = None if fields.clear_campaign else fields.campaign_id
        for name, value in changes.items():
            setattr(content, name, value)
        if "body" in changes or retag or content.text_metrics is None:
            await text_metrics.measure_content(session, content)  # written with the text
        text_changed = bool({"title", "body", "format"} & set(changes))
        was_embedded = content.embedded_version == content.version
        content.version += 1
        if not text_changed and was_embedded:
            # Same text, same embedding: it stays current for the new version.
            content.embedded_version = content.version
        content.updated_by_id = principal.user_id
        if ContentStatus(content.status) == ContentStatus.APPROVED and text_changed:
            workspace = await session.get(Workspace, content.workspace_id)
            if workspace is not None and workspace.approval_required:
                content.status = ContentStatus.DRAFT.value  # approved text changed: review it again
        await session.flush()
        session.add(version_row(content, principal))
        duplicates: list[Duplicate] = []
        job = None
        # The variations' keyword checks use the item's tags: a job re-checks them.
        refresh = text_metrics.refresh_item(session, content, state.settings) if retag else None
        if text_changed:
            duplicates = await near_duplicates(
                session,
                content.workspace_id,
                content.title,
                content.body,
                threshold=state.settings.duplicate_similarity * 0.75,
                exclude=content.id,
            )
        if text_changed or not was_embedded:
            # Not embedded yet: the pending job (for the old version) will be skipped as
            # superseded, so this version needs one of its own.
            job = await _enqueue_embedding(state, session, content)
        audit.record_row(
            session,
            principal,
            "updateContent",
            content,
            {"fields": sorted(changes), "version": content.version},
        )
    for queued in (job, refresh):
        if queued is not None:
            await jobs.enqueue(state.arq, queued.id, 0)
    return await reload(state, content_id), duplicates


async def set_deleted(
    state: AppState, principal: Principal, content_id: uuid.UUID, deleted: bool
) -> Content:
    """Soft delete (or restore): the row stays, hidden from lists and search."""
    async with state.session_factory() as session, session.begin():
        content = await lookup.scoped_row(
            session, Content, content_id, principal, None, for_update=True
        )
        role = principal.require(content.workspace_id, Action.CONTENT_EDIT)
        if role < Role.ADMIN and content.created_by_id != principal.user_id:
            raise ValidationFailed(
                [
                    FieldError(
                        None,
                        UserErrorCode.NOT_OWNER,
                        "Members can delete and restore only their own content.",
                    )
                ]
            )
        if (content.deleted_at is not None) == deleted:
            raise ValidationFailed(
                [
                    FieldError(
                        None,
                        UserErrorCode.INVALID_STATE,
                        "Already deleted." if deleted else "Not deleted.",
                    )
                ]
            )
        content.deleted_at = datetime.now(UTC) if deleted else None
        audit.record(
            session,
            principal,
            "deleteContent" if deleted else "restoreContent",
            workspace_id=content.workspace_id,
            target_type="Content",
            target_id=content.id,
        )
    return await reload(state, content_id)


async def get(state: AppState, principal: Principal, content_id: uuid.UUID) -> Content:
    return await lookup.fetch_scoped(
        state.session_factory, Content, content_id, principal, Action.CONTENT_READ
    )


# Built once: a Select is immutable, each `.where()` makes a new one.
_READABLE = select(Content).options(
    defer(Content.embedding, raiseload=True),
    defer(Content.search_vector, raiseload=True),
)


def select_readable() -> Select[Content]:
    """Content rows as resolvers read them: without the embedding and the tsvector.

    Resolvers never show the embedding (384 floats, parsed in Python) or the tsvector;
    leaving them out cut a 50-item page by ~2 ms of database and ~4 ms of Python time.
    """
    return _READABLE


async def restore_version(state: AppState, principal: Principal, version_id: uuid.UUID) -> Content:
    """Make an old version current again, as a new version (history is never rewritten)."""
    async with state.session_factory() as session, session.begin():
        old = await session.get(ContentVersion, version_id)
        if old is None:
            raise NotFound("No such version.")
        content = await lookup.scoped_row(
            session, Content, old.content_id, principal, None, for_update=True
        )
        require_edit(principal, content)
        content.title, content.body, content.format = old.title, old.body, old.format
        await text_metrics.measure_content(session, content)
        content.version += 1
        content.updated_by_id = principal.user_id
        await session.flush()
        session.add(version_row(content, principal))
        job = await _enqueue_embedding(state, session, content)
        audit.record_row(
            session,
            principal,
            "restoreContentVersion",
            content,
            {"restored_version": old.version, "version": content.version},
        )
    await jobs.enqueue(state.arq, job.id, 0)
    return await reload(state, content.id)


# Batched reads for DataLoaders -------------------------------------------------------------
