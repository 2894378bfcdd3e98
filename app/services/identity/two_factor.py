"""Two-factor authentication: TOTP (RFC 6238) with one-time recovery codes.

The TOTP secret is encrypted at rest; recovery codes are stored as SHA-256 hashes and each
works once. A code's time step is remembered so the same code cannot be replayed.
"""

from __future__ import annotations

import secrets
import uuid
from datetime import UTC, datetime

import pyotp
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.auth import Principal
from app.errors import FieldError, UserErrorCode, ValidationFailed
from app.models import User
from app.security import passwords, tokens
from app.security.crypto import SecretBox
from app.services import lookup
from app.services.audit import trail as audit
from app.state import AppState

ISSUER = "SmartContent"
RECOVERY_CODE_COUNT = 10
VALID_WINDOW = 1  # accept the previous and next 30 s step: clock drift


def _new_recovery_codes() -> list[str]:
    return [f"{secrets.token_hex(3)}-{secrets.token_hex(3)}" for _ in range(RECOVERY_CODE_COUNT)]


def _matching_step(totp: pyotp.TOTP, code: str, now: datetime) -> int | None:
    code = code.strip().replace(" ", "")
    # A code is ASCII digits (compare_digest raises TypeError on non-ASCII text; other
    # digits, e.g. Arabic-Indic, are no code we issued): anything else is just wrong.
    if not (code.isascii() and code.isdigit()):
        return None
    step_now = int(now.timestamp()) // totp.interval
    for offset in range(-VALID_WINDOW, VALID_WINDOW + 1):
        step = step_now + offset
        if secrets.compare_digest(totp.generate_otp(step), code):
            return step
    return None


def verify_totp(box: SecretBox, user: User, code: str) -> bool:
    """Check a TOTP code against the user's secret and consume its time step."""
    if not user.totp_secret:
        return False
    totp = pyotp.TOTP(box.decrypt(user.totp_secret))
    step = _matching_step(totp, code, datetime.now(UTC))
    if step is None or (user.totp_last_step is not None and step <= user.totp_last_step):
        return False
    user.totp_last_step = step
    return True


def use_recovery_code(user: User, code: str) -> bool:
    wanted = tokens.token_hash(code.strip().lower())
    codes = [dict(entry) for entry in user.recovery_codes]
    for entry in codes:
        if entry.get("used_at") is None and secrets.compare_digest(entry["hash"], wanted):
            entry["used_at"] = datetime.now(UTC).isoformat()
            user.recovery_codes = codes  # reassign: JSONB change tracking
            return True
    return False


def verify_login_code(
    box: SecretBox, user: User, *, code: str | None, recovery_code: str | None
) -> bool:
    if code:
        return verify_totp(box, user, code)
    if recovery_code:
        return use_recovery_code(user, recovery_code)
    return False


async def enable(state: AppState, principal: Principal) -> tuple[str, str]:
    """Start enrolment: a new secret (pending until confirmed). Returns (secret, otpauth URI)."""
    user_id = principal.require_user()
    secret = pyotp.random_base32()
    async with state.session_factory() as session, session.begin():
        user = await lookup.own_user(session, principal, for_update=True)
        if user.totp_enabled:
            raise ValidationFailed(
                [
                    FieldError(
                        None,
                        UserErrorCode.ALREADY_ENABLED,
                        "Two-factor authentication is already on.",
                    )
                ]
            )
        user.totp_secret = state.keys.box.encrypt(secret)
        user.totp_last_step = None
        audit.record(session, principal, "enableTwoFactor", target_type="User", target_id=user_id)
        uri = pyotp.TOTP(secret).provisioning_uri(name=user.email, issuer_name=ISSUER)
    return secret, uri


async def confirm(state: AppState, principal: Principal, code: str) -> list[str]:
    """Finish enrolment with a code from the app; returns recovery codes (shown once)."""
    user_id = principal.require_user()
    async with state.session_factory() as session, session.begin():
        user = await lookup.own_user(session, principal, for_update=True)
        if user.totp_enabled or not user.totp_secret:
            raise ValidationFailed(
                [FieldError(None, UserErrorCode.NOT_PENDING, "Call enableTwoFactor first.")]
            )
        if not verify_totp(state.keys.box, user, code):
            raise ValidationFailed(
                [FieldError("code", UserErrorCode.INVALID_CODE, "The code is incorrect.")]
            )
        codes = _new_recovery_codes()
        user.totp_enabled = True
        user.recovery_codes = [{"hash": tokens.token_hash(c), "used_at": None} for c in codes]
        audit.record(session, principal, "confirmTwoFactor", target_type="User", target_id=user_id)
    return codes


async def disable(state: AppState, principal: Principal, *, password: str, code: str) -> None:
    """Turning 2FA off needs both the password and a current code (or a recovery code)."""
    user_id = principal.require_user()
    async with state.session_factory() as session, session.begin():
        user = await lookup.own_user(session, principal, for_update=True)
        if not user.totp_enabled:
            raise ValidationFailed(
                [FieldError(None, UserErrorCode.NOT_ENABLED, "Two-factor authentication is off.")]
            )
        if not await passwords.verify_password_async(user.password_hash, password):
            raise ValidationFailed(
                [
                    FieldError(
                        "password", UserErrorCode.INVALID_CREDENTIALS, "Password is incorrect."
                    )
                ]
            )
        if not (verify_totp(state.keys.box, user, code) or use_recovery_code(user, code)):
            raise ValidationFailed(
                [FieldError("code", UserErrorCode.INVALID_CODE, "The code is incorrect.")]
            )
        user.totp_enabled = False
        user.totp_secret = None
        user.totp_last_step = None
        user.recovery_codes = []
        audit.record(session, principal, "disableTwoFactor", target_type="User", target_id=user_id)


def remaining_recovery_codes(user: User) -> int:
    return sum(1 for entry in user.recovery_codes if entry.get("used_at") is None)


async def rotate_secrets(
    factory: async_sessionmaker[AsyncSession], box: SecretBox
) -> tuple[int, list[uuid.UUID]]:
    """Re-encrypt every stored TOTP secret under the newest key (for `rotate-keys`):
    how many were rewritten, and the users whose secret no configured key opens."""
    unreadable: list[uuid.UUID] = []
    count = 0
    async with factory() as session, session.begin():
        users = await session.scalars(
            select(User).where(User.totp_secret.is_not(None)).with_for_update()
        )
        for user in users.all():
            assert user.totp_secret is not None
            try:
                user.totp_secret = box.rotate(user.totp_secret)
            except ValueError:
                unreadable.append(user.id)
                continue
            count += 1
    return count, unreadable
