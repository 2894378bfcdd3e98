"""Accounts and sessions: register, sign in (with 2FA), refresh rotation, sign out,
profile, password change and reset."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from app.auth import Principal, RequestMeta
from app.errors import FieldError, NotFound, UserErrorCode, ValidationFailed
from app.infra.mailer import Mail
from app.models import PasswordResetToken, User
from app.security import passwords, tokens
from app.services import lookup
from app.services.audit import trail as audit
from app.services.identity.sessions import (
    AuthResult,
    audit_user_event,
    normalize_email,
    revoke_all_sessions,
    start_session,
)
from app.state import AppState

MAX_NAME_LENGTH = 200


def _check_name(name: str) -> str:
    name = name.strip()
    if not name:
        raise ValidationFailed([FieldError("name", UserErrorCode.REQUIRED, "Name is required.")])
    if len(name) > MAX_NAME_LENGTH:
        raise ValidationFailed(
            [
                FieldError(
                    "name",
                    UserErrorCode.TOO_LONG,
                    f"Name must be at most {MAX_NAME_LENGTH} characters.",
                )
            ]
        )
    return name


async def register(
    state: AppState, meta: RequestMeta, *, email: str, password: str, name: str
) -> AuthResult:
    email = normalize_email(email)
    name = _check_name(name)
    problems = passwords.password_problems(password, email=email)
    if problems:
        raise ValidationFailed(problems)
    password_hash = await passwords.hash_password_async(password)
    taken = ValidationFailed(
        [FieldError("email", UserErrorCode.TAKEN, "An account with this email exists.")]
    )
    async with state.session_factory() as session, session.begin():
        if await session.scalar(select(User.id).where(User.email == email)) is not None:
            raise taken
        user = User(
            id=uuid.uuid4(), email=email, name=name, password_hash=password_hash, token_version=0
        )
        session.add(user)
        try:
            await session.flush()
        except IntegrityError as exc:  # a concurrent registration won the unique index
            raise taken from exc
        result = await start_session(state, session, user, meta)
        audit_user_event(
            session,
            meta,
            "register",
            user.id,
            email,
        )
    return result


async def get_user(state: AppState, user_id: uuid.UUID) -> User:
    async with state.session_factory() as session:
        user = await session.get(User, user_id)
    if user is None:
        raise NotFound("No such user.")
    return user


async def update_profile(state: AppState, principal: Principal, *, name: str | None) -> User:
    user_id = principal.require_user()
    async with state.session_factory() as session, session.begin():
        user = await lookup.own_user(session, principal, for_update=True)
        changes = {}
        if name is not None:
            user.name = _check_name(name)
            changes["name"] = user.name
        audit.record(
            session,
            principal,
            "updateProfile",
            target_type="User",
            target_id=user_id,
            details=changes,
        )
    return user


async def change_password(
    state: AppState, principal: Principal, *, current_password: str, new_password: str
) -> AuthResult:
    """Every other session ends (refresh tokens revoked, access tokens invalidated);
    the caller gets a fresh one."""
    principal.require_user()
    async with state.session_factory() as session, session.begin():
        user = await lookup.own_user(session, principal, for_update=True)
        if not await passwords.verify_password_async(user.password_hash, current_password):
            raise ValidationFailed(
                [
                    FieldError(
                        "currentPassword",
                        UserErrorCode.INVALID_CREDENTIALS,
                        "Current password is incorrect.",
                    )
                ]
            )
        problems = passwords.password_problems(new_password, email=user.email, field="newPassword")
        if problems:
            raise ValidationFailed(problems)
        user.password_hash = await passwords.hash_password_async(new_password)
        user.token_version += 1
        await revoke_all_sessions(session, user.id)
        result = await start_session(state, session, user, principal.meta)
        audit.record(session, principal, "changePassword", target_type="User", target_id=user.id)
    return result


async def request_password_reset(state: AppState, meta: RequestMeta, email: str) -> None:
    """Always succeeds from the caller's view, so it cannot be used to probe for accounts."""
    email = email.strip().lower()
    token = tokens.new_opaque_token("pr_")
    async with state.session_factory() as session, session.begin():
        user = await session.scalar(select(User).where(User.email == email))
        if user is None:
            return
        session.add(
            PasswordResetToken(
                id=uuid.uuid4(),
                user_id=user.id,
                token_hash=tokens.token_hash(token),
                expires_at=datetime.now(UTC)
                + timedelta(minutes=state.settings.password_reset_minutes),
            )
        )
        audit_user_event(
            session,
            meta,
            "requestPasswordReset",
            user.id,
            user.email,
        )
    link = f"{state.settings.public_url}/reset-password?token={token}"
    await state.mailer.send(
        Mail(
            to=email,
            subject="Reset your SmartContent password",
            body=f"Use this link within {state.settings.password_reset_minutes} minutes: {link}\n"
            f"Token: {token}\nIf you did not ask for this, ignore this message.",
        )
    )


async def reset_password(
    state: AppState, meta: RequestMeta, *, token: str, new_password: str
) -> None:
    now = datetime.now(UTC)
    invalid = ValidationFailed(
        [FieldError("token", UserErrorCode.INVALID_TOKEN, "Reset token is invalid or expired.")]
    )
    async with state.session_factory() as session, session.begin():
        row = await session.scalar(
            update(PasswordResetToken)
            .where(
                PasswordResetToken.token_hash == tokens.token_hash(token),
                PasswordResetToken.used_at.is_(None),
                PasswordResetToken.expires_at > now,
            )
            .values(used_at=now)
            .returning(PasswordResetToken)
        )
        if row is None:
            raise invalid
        user = await session.get(User, row.user_id, with_for_update=True)
        if user is None:
            raise invalid
        problems = passwords.password_problems(new_password, email=user.email, field="newPassword")
        if problems:
            raise ValidationFailed(problems)
        user.password_hash = await passwords.hash_password_async(new_password)
        user.token_version += 1
        await revoke_all_sessions(session, user.id)
        audit_user_event(
            session,
            meta,
            "resetPassword",
            user.id,
            user.email,
        )
