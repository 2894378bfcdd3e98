"""GDPR: export all of a user's personal data; delete (or anonymise) it.

Deleting an account keeps the workspaces it shares with others: each one it owns passes to
the longest-standing admin (else member, else viewer). Workspaces where it is alone are
deleted. Audit entries stay (the workspace needs them) with the actor anonymised.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, literal, or_, select, update
from sqlalchemy.dialects.postgresql import JSONB

from app.auth import Principal, RequestMeta
from app.errors import FieldError, UserErrorCode, ValidationFailed
from app.models import (
    ApiKey,
    AuditEntry,
    ContentComment,
    Invitation,
    Membership,
    PasswordResetToken,
    RefreshToken,
    Workspace,
)
from app.permissions import Role
from app.security import passwords
from app.services import lookup
from app.services.audit import trail as audit
from app.services.workspaces.members import transfer_in_session
from app.services.workspaces.teams import delete_workspace_rows
from app.state import AppState

DELETED_LABEL = "deleted user"


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


async def export_my_data(state: AppState, principal: Principal) -> dict[str, Any]:
    user_id = principal.require_user()
    async with state.session_factory() as session:
        user = await lookup.own_user(session, principal)
        memberships = (
            await session.execute(
                select(Membership, Workspace.name)
                .join(Workspace, Workspace.id == Membership.workspace_id)
                .where(Membership.user_id == user_id)
            )
        ).all()
        sessions = (
            await session.scalars(select(RefreshToken).where(RefreshToken.user_id == user_id))
        ).all()
        keys = (await session.scalars(select(ApiKey).where(ApiKey.created_by_id == user_id))).all()
        invitations = (
            await session.scalars(
                select(Invitation).where(
                    (Invitation.invited_by_id == user_id) | (Invitation.email == user.email)
                )
            )
        ).all()
        activity = (
            await session.scalars(
                select(AuditEntry)
                .where(AuditEntry.actor_user_id == user_id)
                .order_by(AuditEntry.id)
            )
        ).all()
    async with state.session_factory() as session, session.begin():
        audit.record(session, principal, "exportMyData", target_type="User", target_id=user_id)
    return {
        "exported_at": datetime.now(UTC).isoformat(),
        "profile": {
            "id": str(user.id),
            "email": user.email,
            "name": user.name,
            "plan": user.plan,
            "two_factor_enabled": user.totp_enabled,
            "created_at": _iso(user.created_at),
            "last_login_at": _iso(user.last_login_at),
        },
        "memberships": [
            {
                "workspace_id": str(m.workspace_id),
                "workspace_name": name,
                "role": m.role,
                "joined_at": _iso(m.created_at),
            }
            for m, name in memberships
        ],
        "sessions": [
            {
                "created_at": _iso(s.created_at),
                "expires_at": _iso(s.expires_at),
                "ip": s.ip,
                "user_agent": s.user_agent,
                "revoked": s.revoked_at is not None or s.used_at is not None,
            }
            for s in sessions
        ],
        "api_keys_created": [
            {
                "name": k.name,
                "prefix": k.prefix,
                "workspace_id": str(k.workspace_id),
                "role": k.role,
                "created_at": _iso(k.created_at),
                "revoked_at": _iso(k.revoked_at),
            }
            for k in keys
        ],
        "invitations": [
            {
                "email": i.email,
                "workspace_id": str(i.workspace_id),
                "role": i.role,
                "sent_by_me": i.invited_by_id == user_id,
                "created_at": _iso(i.created_at),
                "accepted_at": _iso(i.accepted_at),
            }
            for i in invitations
        ],
        "activity": [
            {
                "action": a.action,
                "workspace_id": str(a.workspace_id) if a.workspace_id else None,
                "target_type": a.target_type,
                "target_id": a.target_id,
                "ip": a.ip,
                "at": _iso(a.created_at),
            }
            for a in activity
        ],
    }


_SUCCESSION = (Role.ADMIN, Role.MEMBER, Role.VIEWER)


async def delete_account(state: AppState, principal: Principal, *, password: str) -> None:
    user_id = principal.require_user()
    async with state.session_factory() as session, session.begin():
        user = await lookup.own_user(session, principal, for_update=True)
        if not await passwords.verify_password_async(user.password_hash, password):
            raise ValidationFailed(
                [
                    FieldError(
                        "password", UserErrorCode.INVALID_CREDENTIALS, "Password is incorrect."
                    )
                ]
            )
        owned = (
            await session.scalars(
                select(Membership.workspace_id).where(
                    Membership.user_id == user_id, Membership.role == Role.OWNER.name
                )
            )
        ).all()
        for workspace_id in owned:
            others = (
                await session.scalars(
                    select(Membership)
                    .where(Membership.workspace_id == workspace_id, Membership.user_id != user_id)
                    .order_by(Membership.created_at)
                )
            ).all()
            successor = next(
                (m for role in _SUCCESSION for m in others if m.role == role.name), None
            )
            if successor is None:
                await delete_workspace_rows(session, workspace_id)
                continue
            await transfer_in_session(session, workspace_id, user_id, successor.user_id)
            audit.record(
                session,
                principal,
                "transferOwnership",
                workspace_id=workspace_id,
                target_type="User",
                target_id=successor.user_id,
                actor_label=DELETED_LABEL,
                details={"reason": "previous owner deleted their account"},
            )
        # Anonymise the trail the workspaces keep; remove everything else personal.
        await session.flush()
        # Account activity outside any workspace (sign-ins, profile changes) is nobody
        # else's record: it goes.
        await session.execute(
            delete(AuditEntry).where(
                AuditEntry.workspace_id.is_(None), AuditEntry.actor_user_id == user_id
            )
        )
        await session.execute(
            update(AuditEntry)
            .where(or_(AuditEntry.actor_user_id == user_id, AuditEntry.actor_label == user.email))
            .values(actor_user_id=None, actor_label=DELETED_LABEL, ip=None)
        )
        # Invitations sent to them name them by email.
        await session.execute(
            update(AuditEntry)
            .where(AuditEntry.details["email"].astext == user.email)
            .values(details=AuditEntry.details.op("||")(literal({"email": DELETED_LABEL}, JSONB)))
        )
        await session.execute(
            update(ContentComment)
            .where(ContentComment.author_id == user_id)
            .values(author_name=DELETED_LABEL)
        )
        await session.execute(delete(Invitation).where(Invitation.email == user.email))
        await session.execute(delete(RefreshToken).where(RefreshToken.user_id == user_id))
        await session.execute(
            delete(PasswordResetToken).where(PasswordResetToken.user_id == user_id)
        )
        await session.execute(delete(Membership).where(Membership.user_id == user_id))
        await session.delete(user)
        audit.record(
            session,
            # Kept without the IP: it would be the deleted person's.
            Principal(kind="anonymous", meta=RequestMeta(request_id=principal.meta.request_id)),
            "deleteAccount",
            target_type="User",
            actor_label=DELETED_LABEL,
        )
