"""A workspace's people: members and their roles, invitations, ownership."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from app.auth import Principal
from app.errors import FieldError, Forbidden, NotFound, UserErrorCode, ValidationFailed
from app.infra.mailer import Mail
from app.models import Invitation, Membership, User, Workspace
from app.pagination import Keyset, Page
from app.permissions import Action, Role
from app.security import tokens
from app.services import lookup
from app.services.audit import trail as audit
from app.services.identity.sessions import normalize_email
from app.services.workspaces.teams import joined
from app.state import AppState


async def list_members(
    state: AppState, principal: Principal, workspace_id: uuid.UUID, *, first: int, after: str | None
) -> Page[Membership]:
    principal.require(workspace_id, Action.MEMBER_READ)
    async with state.session_factory() as session:
        pages = await members_pages(session, [workspace_id], first=first, after=after)
    return pages[workspace_id]


# Members oldest first: the owner leads the list.
_MEMBER_ORDER = Keyset((Membership.created_at, Membership.user_id), descending=False)


async def members_pages(
    session: AsyncSession, workspace_ids: Sequence[uuid.UUID], *, first: int, after: str | None
) -> dict[uuid.UUID, Page[Membership]]:
    """One page of members for each workspace, in one statement (a window per workspace).
    Callers check permissions first."""
    ranked = select(
        Membership,
        func.row_number()
        .over(
            partition_by=Membership.workspace_id,
            order_by=_MEMBER_ORDER.order_by(),
        )
        .label("rn"),
    ).where(Membership.workspace_id.in_(workspace_ids))
    if (condition := _MEMBER_ORDER.after(after)) is not None:
        ranked = ranked.where(condition)
    sub = ranked.subquery()
    member = aliased(Membership, sub)
    query = select(member).where(sub.c.rn <= first + 1).order_by(sub.c.workspace_id, sub.c.rn)
    rows = (await session.scalars(query)).all()
    grouped: dict[uuid.UUID, list[Membership]] = {ws: [] for ws in workspace_ids}
    for row in rows:
        grouped[row.workspace_id].append(row)
    return {ws: _MEMBER_ORDER.page(items, first) for ws, items in grouped.items()}


async def invite(
    state: AppState, principal: Principal, workspace_id: uuid.UUID, *, email: str, role: Role
) -> tuple[Invitation, str]:
    """Returns the invitation and its token (also mailed). Admins invite up to admin."""
    actor_role = principal.require(workspace_id, Action.MEMBER_INVITE)
    email = normalize_email(email)
    if role == Role.OWNER or role > actor_role:
        raise ValidationFailed(
            [FieldError("role", UserErrorCode.NOT_ALLOWED, "You cannot invite with this role.")]
        )
    token = tokens.new_opaque_token("inv_")
    async with state.session_factory() as session, session.begin():
        workspace = await lookup.scoped_row(session, Workspace, workspace_id, principal, None)
        already = await session.scalar(
            select(Membership.user_id)
            .join(User, User.id == Membership.user_id)
            .where(Membership.workspace_id == workspace_id, User.email == email)
        )
        if already is not None:
            raise ValidationFailed(
                [FieldError("email", UserErrorCode.ALREADY_MEMBER, "Already a member.")]
            )
        invitation = Invitation(
            id=uuid.uuid4(),
            workspace_id=workspace_id,
            email=email,
            role=role.name,
            token_hash=tokens.token_hash(token),
            invited_by_id=principal.user_id,
            expires_at=datetime.now(UTC) + timedelta(days=state.settings.invitation_days),
        )
        session.add(invitation)
        audit.record(
            session,
            principal,
            "inviteMember",
            workspace_id=workspace_id,
            target_type="Invitation",
            target_id=invitation.id,
            details={"email": email, "role": role.name},
        )
    await state.mailer.send(
        Mail(
            to=email,
            subject=f"You are invited to {workspace.name} on SmartContent",
            body=f"Accept within {state.settings.invitation_days} days: "
            f"{state.settings.public_url}/invitations/accept?token={token}\nToken: {token}",
        )
    )
    return invitation, token


async def accept_invitation(state: AppState, principal: Principal, token: str) -> Workspace:
    user_id = principal.require_user()
    now = datetime.now(UTC)
    invalid = ValidationFailed(
        [FieldError("token", UserErrorCode.INVALID_TOKEN, "Invitation is invalid or expired.")]
    )
    async with state.session_factory() as session, session.begin():
        user = await session.get(User, user_id)
        invitation = await session.scalar(
            update(Invitation)
            .where(
                Invitation.token_hash == tokens.token_hash(token),
                Invitation.accepted_at.is_(None),
                Invitation.revoked_at.is_(None),
                Invitation.expires_at > now,
            )
            .values(accepted_at=now)
            .returning(Invitation)
        )
        if invitation is None or user is None:
            raise invalid
        if invitation.email != user.email:
            raise ValidationFailed(
                [
                    FieldError(
                        "token",
                        UserErrorCode.WRONG_ACCOUNT,
                        "This invitation is for another email address.",
                    )
                ]
            )
        existing = await session.get(Membership, (invitation.workspace_id, user_id))
        if existing is None:
            session.add(
                Membership(
                    workspace_id=invitation.workspace_id, user_id=user_id, role=invitation.role
                )
            )
        workspace = await session.get(Workspace, invitation.workspace_id)
        assert workspace is not None
        audit.record(
            session,
            principal,
            "acceptInvitation",
            workspace_id=workspace.id,
            target_type="Invitation",
            target_id=invitation.id,
            details={"role": invitation.role},
        )
    if existing is None:
        joined(principal, workspace, Role.parse(invitation.role))
    return workspace


async def _membership(
    session: AsyncSession, workspace_id: uuid.UUID, user_id: uuid.UUID
) -> Membership:
    member = await session.get(Membership, (workspace_id, user_id), with_for_update=True)
    if member is None:
        raise NotFound("No such member in this workspace.")
    return member


async def update_member_role(
    state: AppState, principal: Principal, workspace_id: uuid.UUID, user_id: uuid.UUID, role: Role
) -> Membership:
    actor_role = principal.require(workspace_id, Action.MEMBER_MANAGE)
    if role == Role.OWNER:
        raise ValidationFailed(
            [
                FieldError(
                    "role", UserErrorCode.NOT_ALLOWED, "Use transferOwnership to change the owner."
                )
            ]
        )
    if role > actor_role:
        raise ValidationFailed(
            [
                FieldError(
                    "role", UserErrorCode.NOT_ALLOWED, "You cannot grant a role above your own."
                )
            ]
        )
    async with state.session_factory() as session, session.begin():
        member = await _membership(session, workspace_id, user_id)
        current = Role.parse(member.role)
        if current == Role.OWNER:
            raise Forbidden("The owner's role changes only through transferOwnership.")
        if current > actor_role:
            raise Forbidden("You cannot change the role of someone above you.")
        member.role = role.name
        audit.record(
            session,
            principal,
            "updateMemberRole",
            workspace_id=workspace_id,
            target_type="User",
            target_id=user_id,
            details={"from": current.name, "to": role.name},
        )
    return member


async def remove_member(
    state: AppState, principal: Principal, workspace_id: uuid.UUID, user_id: uuid.UUID
) -> None:
    """Admins remove members; anyone may leave (remove themselves), except the owner."""
    if principal.user_id == user_id:
        principal.require(workspace_id, Action.WORKSPACE_READ)
        actor_role = Role.OWNER  # leaving needs no rank
    else:
        actor_role = principal.require(workspace_id, Action.MEMBER_MANAGE)
    async with state.session_factory() as session, session.begin():
        member = await _membership(session, workspace_id, user_id)
        current = Role.parse(member.role)
        if current == Role.OWNER:
            raise ValidationFailed(
                [
                    FieldError(
                        "userId", UserErrorCode.OWNER, "Transfer ownership before the owner leaves."
                    )
                ]
            )
        if current > actor_role:
            raise Forbidden("You cannot remove someone above you.")
        await session.delete(member)
        audit.record(
            session,
            principal,
            "removeMember",
            workspace_id=workspace_id,
            target_type="User",
            target_id=user_id,
            details={"role": current.name},
        )


async def transfer_ownership(
    state: AppState, principal: Principal, workspace_id: uuid.UUID, new_owner_id: uuid.UUID
) -> None:
    principal.require(workspace_id, Action.OWNERSHIP_TRANSFER)
    owner_id = principal.require_user()
    if new_owner_id == owner_id:
        raise ValidationFailed(
            [FieldError("userId", UserErrorCode.SAME_USER, "You already own this workspace.")]
        )
    async with state.session_factory() as session, session.begin():
        await transfer_in_session(session, workspace_id, owner_id, new_owner_id)
        audit.record(
            session,
            principal,
            "transferOwnership",
            workspace_id=workspace_id,
            target_type="User",
            target_id=new_owner_id,
            details={"previous_owner": str(owner_id)},
        )


async def transfer_in_session(
    session: AsyncSession, workspace_id: uuid.UUID, owner_id: uuid.UUID, new_owner_id: uuid.UUID
) -> None:
    owner = await _membership(session, workspace_id, owner_id)
    if owner.role != Role.OWNER.name:
        # Checked under the row lock: a concurrent transfer may have just demoted them.
        raise Forbidden("Only the owner can transfer ownership.")
    target = await _membership(session, workspace_id, new_owner_id)
    # Demote first: the partial unique index allows one OWNER per workspace.
    owner.role = Role.ADMIN.name
    await session.flush()
    target.role = Role.OWNER.name
    await session.flush()


async def members_count(
    session: AsyncSession, workspace_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, int]:
    rows = await session.execute(
        select(Membership.workspace_id, func.count())
        .where(Membership.workspace_id.in_(workspace_ids))
        .group_by(Membership.workspace_id)
    )
    return {ws: count for ws, count in rows.all()}
