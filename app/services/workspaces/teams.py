"""Workspaces and their members: create, update, invite, accept, roles, removal, ownership."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth import Principal, WorkspaceAccess
from app.errors import FieldError, UserErrorCode, ValidationFailed
from app.jobs import store as jobs
from app.models import Job, Membership, Workspace
from app.pagination import Page, fetch_page, newest_first
from app.permissions import Action, Role
from app.services import lookup
from app.services.audit import trail as audit
from app.services.content import text_metrics
from app.state import AppState

MAX_NAME = 200
BRAND_VOICE_LIMITS = {"tone": 200, "style_notes": 4000}
BRAND_LIST_LIMIT = 100


@dataclass(frozen=True)
class BrandVoice:
    tone: str = ""
    style_notes: str = ""
    keywords: tuple[str, ...] = ()
    banned_words: tuple[str, ...] = ()
    example_posts: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "tone": self.tone,
            "style_notes": self.style_notes,
            "keywords": list(self.keywords),
            "banned_words": list(self.banned_words),
            "example_posts": list(self.example_posts),
        }


def _check_brand_voice(voice: BrandVoice) -> list[FieldError]:
    errors = []
    for name, limit in BRAND_VOICE_LIMITS.items():
        if len(getattr(voice, name)) > limit:
            errors.append(
                FieldError(
                    f"brandVoice.{name}", UserErrorCode.TOO_LONG, f"At most {limit} characters."
                )
            )
    for name in ("keywords", "banned_words", "example_posts"):
        if len(getattr(voice, name)) > BRAND_LIST_LIMIT:
            errors.append(
                FieldError(
                    f"brandVoice.{name}",
                    UserErrorCode.TOO_MANY,
                    f"At most {BRAND_LIST_LIMIT} items.",
                )
            )
    return errors


def _check_name(name: str) -> str:
    name = name.strip()
    if not name:
        raise ValidationFailed([FieldError("name", UserErrorCode.REQUIRED, "Name is required.")])
    if len(name) > MAX_NAME:
        raise ValidationFailed(
            [FieldError("name", UserErrorCode.TOO_LONG, f"At most {MAX_NAME} characters.")]
        )
    return name


def joined(principal: Principal, workspace: Workspace, role: Role) -> None:
    """The caller's roles were read when the request began: add the one just gained, so the
    rest of this operation (e.g. the payload's `members`) sees it."""
    principal.access[workspace.id] = WorkspaceAccess(role, bool(workspace.require_two_factor))


async def create(
    state: AppState, principal: Principal, *, name: str, brand_voice: BrandVoice
) -> Workspace:
    user_id = principal.require_user()
    name = _check_name(name)
    if errors := _check_brand_voice(brand_voice):
        raise ValidationFailed(errors)
    async with state.session_factory() as session, session.begin():
        workspace = Workspace(id=uuid.uuid4(), name=name, brand_voice=brand_voice.to_json())
        session.add(workspace)
        await session.flush()
        session.add(Membership(workspace_id=workspace.id, user_id=user_id, role=Role.OWNER.name))
        audit.record(
            session,
            principal,
            "createWorkspace",
            workspace_id=workspace.id,
            target_type="Workspace",
            target_id=workspace.id,
            details={"name": name},
        )
    joined(principal, workspace, Role.OWNER)
    return workspace


async def update_workspace(
    state: AppState,
    principal: Principal,
    workspace_id: uuid.UUID,
    *,
    name: str | None = None,
    brand_voice: BrandVoice | None = None,
    require_two_factor: bool | None = None,
    approval_required: bool | None = None,
) -> Workspace:
    principal.require(workspace_id, Action.WORKSPACE_UPDATE)
    if require_two_factor is not None:
        principal.require(workspace_id, Action.SECURITY_POLICY)
    changes: dict[str, Any] = {}
    refresh: Job | None = None
    async with state.session_factory() as session, session.begin():
        workspace = await lookup.scoped_row(
            session, Workspace, workspace_id, principal, None, for_update=True
        )
        if name is not None:
            workspace.name = changes["name"] = _check_name(name)
        if brand_voice is not None:
            if errors := _check_brand_voice(brand_voice):
                raise ValidationFailed(errors)
            voice = brand_voice.to_json()
            if voice != workspace.brand_voice:
                # Stored warnings were checked against the old voice: a job re-checks them
                # (content written meanwhile waits for this lock, so it sees the new voice).
                refresh = text_metrics.queue_refresh(
                    session, workspace_id, state.settings.job_max_attempts
                )
            workspace.brand_voice = changes["brand_voice"] = voice
        if require_two_factor is not None:
            if require_two_factor and principal.kind == "user" and not principal.two_factor_enabled:
                raise ValidationFailed(
                    [
                        FieldError(
                            "requireTwoFactor",
                            UserErrorCode.TWO_FACTOR_REQUIRED,
                            "Enable two-factor authentication for yourself first.",
                        )
                    ]
                )
            workspace.require_two_factor = changes["require_two_factor"] = require_two_factor
        if approval_required is not None:
            workspace.approval_required = changes["approval_required"] = approval_required
        audit.record(
            session,
            principal,
            "updateWorkspace",
            workspace_id=workspace_id,
            target_type="Workspace",
            target_id=workspace_id,
            details=changes,
        )
    if refresh is not None:
        await jobs.enqueue(state.arq, refresh.id, 0)
    return workspace


async def get(state: AppState, principal: Principal, workspace_id: uuid.UUID) -> Workspace:
    principal.require(workspace_id, Action.WORKSPACE_READ)
    async with state.session_factory() as session:
        return await lookup.scoped_row(session, Workspace, workspace_id, principal, None)


async def list_mine(
    state: AppState, principal: Principal, *, first: int, after: str | None
) -> Page[Workspace]:
    """Workspaces the caller can read, newest first (an API key sees its own)."""
    if not principal.is_authenticated:
        principal.require_user()
    ids = list(principal.access)
    query = select(Workspace).where(Workspace.id.in_(ids))
    return await fetch_page(
        state.session_factory, query, newest_first(Workspace), first=first, after=after
    )


async def delete_workspace_rows(session: AsyncSession, workspace_id: uuid.UUID) -> None:
    await session.execute(delete(Workspace).where(Workspace.id == workspace_id))
