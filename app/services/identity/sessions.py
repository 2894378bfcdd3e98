"""Signing in and staying signed in: login (password, second factor, throttle), sessions
with rotating refresh tokens, logout and revocation."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from email_validator import EmailNotValidError, validate_email
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth import Principal, RequestMeta
from app.errors import FieldError, UserErrorCode, ValidationFailed
from app.logging import get_logger
from app.models import PasswordResetToken, RefreshToken, User
from app.security import passwords, tokens
from app.services.audit import trail as audit
from app.services.identity import two_factor
from app.state import AppState

log = get_logger(__name__)


@dataclass(frozen=True)
class AuthResult:
    """A signed-in session, or a request for the second factor."""

    user: User | None
    access_token: str | None = None
    access_token_expires_at: datetime | None = None
    refresh_token: str | None = None
    two_factor_required: bool = False


def normalize_email(email: str, field: str = "email") -> str:
    try:
        return validate_email(email.strip(), check_deliverability=False).normalized.lower()
    except EmailNotValidError as exc:
        raise ValidationFailed([FieldError(field, UserErrorCode.INVALID, str(exc))]) from exc


def anonymous(meta: RequestMeta) -> Principal:
    return Principal(kind="anonymous", meta=meta)


def audit_user_event(
    session: AsyncSession,
    meta: RequestMeta,
    action: str,
    user_id: uuid.UUID,
    label: str,
    details: dict[str, Any] | None = None,
) -> None:
    """Audit an account event whose caller is not (yet) signed in: the account is the actor."""
    audit.record(
        session,
        anonymous(meta),
        action,
        target_type="User",
        target_id=user_id,
        actor_user_id=user_id,
        actor_label=label,
        details=details,
    )


async def start_session(
    state: AppState,
    session: AsyncSession,
    user: User,
    meta: RequestMeta,
    family_id: uuid.UUID | None = None,
) -> AuthResult:
    """Issue an access token and a new refresh token (a new family unless rotating)."""
    settings = state.settings
    access, expires = tokens.issue_access_token(
        state.keys.signing_secret, user.id, user.token_version, settings.access_token_minutes
    )
    refresh = tokens.new_opaque_token("rt_")
    session.add(
        RefreshToken(
            id=uuid.uuid4(),
            user_id=user.id,
            family_id=family_id or uuid.uuid4(),
            token_hash=tokens.token_hash(refresh),
            expires_at=datetime.now(UTC) + timedelta(days=settings.refresh_token_days),
            ip=meta.ip,
            user_agent=(meta.user_agent or "")[:400] or None,
        )
    )
    return AuthResult(
        user=user, access_token=access, access_token_expires_at=expires, refresh_token=refresh
    )


INVALID_CREDENTIALS = FieldError(
    None, UserErrorCode.INVALID_CREDENTIALS, "Email or password is incorrect."
)


async def login(
    state: AppState,
    meta: RequestMeta,
    *,
    email: str,
    password: str,
    two_factor_code: str | None = None,
    recovery_code: str | None = None,
) -> AuthResult:
    email = email.strip().lower()
    # Counted before anything is verified (atomically, with the lock check): parallel
    # attempts get no more guesses than sequential ones. A right one is refunded below.
    attempt = await state.login_throttle.attempt(email, meta.ip)
    # argon2 runs with no connection held and no row locked: a burst of sign-ins must not
    # take the pool from every other request for the ~100 ms each hash costs.
    async with state.read_session_factory() as session:
        checked_hash = await session.scalar(select(User.password_hash).where(User.email == email))
    # Same error and (argon2) cost whether the email is unknown or the password wrong.
    if not await passwords.verify_password_async(checked_hash, password) or checked_hash is None:
        raise ValidationFailed([INVALID_CREDENTIALS])
    rehashed = None
    if passwords.needs_rehash(checked_hash):
        rehashed = await passwords.hash_password_async(password)
    async with state.session_factory() as session, session.begin():
        # Locked for the 2FA step (a code or recovery code is used once) and the session.
        user = await session.scalar(select(User).where(User.email == email).with_for_update())
        if user is None or user.password_hash != checked_hash:
            # Deleted, or the password changed while this one was being checked.
            raise ValidationFailed([INVALID_CREDENTIALS])
        needs_code = user.totp_enabled and not two_factor_code and not recovery_code
        if user.totp_enabled and not needs_code:
            ok = two_factor.verify_login_code(
                state.keys.box, user, code=two_factor_code, recovery_code=recovery_code
            )
            if not ok:  # stays counted: codes must not be brute-forced either
                raise ValidationFailed(
                    [
                        FieldError(
                            "twoFactorCode" if two_factor_code else "recoveryCode",
                            UserErrorCode.INVALID_CODE,
                            "The two-factor code is incorrect.",
                        )
                    ]
                )
        if not needs_code:
            if rehashed is not None:
                user.password_hash = rehashed
            user.last_login_at = datetime.now(UTC)
            result = await start_session(state, session, user, meta)
            audit_user_event(
                session,
                meta,
                "login",
                user.id,
                user.email,
                details={"recovery_code_used": bool(recovery_code and not two_factor_code)},
            )
    if needs_code:
        # The right password is no guess: take the attempt back, without clearing the
        # counter (wrong codes behind a known password stay counted).
        await state.login_throttle.refund(attempt)
        return AuthResult(user=None, two_factor_required=True)
    await state.login_throttle.success(attempt)
    return result


async def revoke_family(session: AsyncSession, family_id: uuid.UUID) -> None:
    await session.execute(
        update(RefreshToken)
        .where(RefreshToken.family_id == family_id, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=datetime.now(UTC))
    )


async def revoke_all_sessions(session: AsyncSession, user_id: uuid.UUID) -> None:
    """End every session of the user and void any outstanding password-reset tokens
    (an older reset mail must not allow a second, unnoticed reset)."""
    now = datetime.now(UTC)
    await session.execute(
        update(RefreshToken)
        .where(RefreshToken.user_id == user_id, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    await session.execute(
        update(PasswordResetToken)
        .where(PasswordResetToken.user_id == user_id, PasswordResetToken.used_at.is_(None))
        .values(used_at=now)
    )


INVALID_REFRESH = FieldError(
    "refreshToken", UserErrorCode.INVALID_REFRESH_TOKEN, "Refresh token is invalid or expired."
)


async def refresh(state: AppState, meta: RequestMeta, refresh_token: str) -> AuthResult:
    """Rotate: the presented token is used up and a new one in the same family issued.
    Presenting a used token again means it was stolen: the whole family is revoked."""
    now = datetime.now(UTC)
    async with state.session_factory() as session, session.begin():
        row = await session.scalar(
            select(RefreshToken).where(RefreshToken.token_hash == tokens.token_hash(refresh_token))
        )
        if row is None or row.expires_at <= now:
            raise ValidationFailed([INVALID_REFRESH])
        claimed = await session.scalar(
            update(RefreshToken)
            .where(
                RefreshToken.id == row.id,
                RefreshToken.used_at.is_(None),
                RefreshToken.revoked_at.is_(None),
            )
            .values(used_at=now)
            .returning(RefreshToken.id)
        )
        if claimed is None:
            if row.revoked_at is None or row.used_at is not None:
                await revoke_family(session, row.family_id)
                audit_user_event(
                    session,
                    meta,
                    "session.reuse_detected",
                    row.user_id,
                    "refresh-token",
                    details={"family_id": str(row.family_id)},
                )
                log.warning(
                    "refresh_token_reuse", user_id=str(row.user_id), family=str(row.family_id)
                )
            failed = True
        else:
            failed = False
            user = await session.get(User, row.user_id)
            assert user is not None
            result = await start_session(state, session, user, meta, family_id=row.family_id)
            audit_user_event(
                session,
                meta,
                "refreshToken",
                user.id,
                user.email,
            )
    # Raised after commit so the family revocation is kept.
    if failed:
        raise ValidationFailed([INVALID_REFRESH])
    return result


async def logout(state: AppState, principal: Principal, refresh_token: str) -> None:
    """End the session the refresh token belongs to (its whole family)."""
    async with state.session_factory() as session, session.begin():
        row = await session.scalar(
            select(RefreshToken).where(RefreshToken.token_hash == tokens.token_hash(refresh_token))
        )
        if row is None or (principal.user_id is not None and row.user_id != principal.user_id):
            raise ValidationFailed([INVALID_REFRESH])
        await revoke_family(session, row.family_id)
        audit.record(
            session,
            principal,
            "logout",
            target_type="User",
            target_id=row.user_id,
            actor_user_id=row.user_id,
        )
