"""Accounts and sessions."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime
from typing import Any

import strawberry
from strawberry import relay

from app.models import User as UserRow
from app.services.identity.sessions import AuthResult
from schema.context import Context
from schema.loaders.base import uuid_or_nil
from schema.types.errors import UserError


@strawberry.type(description="A person with an account.")
class User(relay.Node):
    id: relay.NodeID[str]
    email: str = strawberry.field(description="Sign-in email (lower-case).")
    name: str = strawberry.field(description="Display name.")
    two_factor_enabled: bool = strawberry.field(description="Whether sign-in asks for a TOTP code.")
    created_at: datetime = strawberry.field(description="When the account was created.")

    @classmethod
    def from_row(cls, row: UserRow) -> User:
        return cls(
            id=str(row.id),
            email=row.email,
            name=row.name,
            two_factor_enabled=row.totp_enabled,
            created_at=row.created_at,
        )

    @classmethod
    async def resolve_nodes(  # type: ignore[override]
        cls, *, info: strawberry.Info[Context, Any], node_ids: Iterable[str], required: bool = False
    ) -> list[User | None]:
        # A user is visible to itself and to people it shares a workspace with.
        loaders = info.context.loaders
        rows = await loaders.identity.users.load_many([uuid_or_nil(i) for i in node_ids])
        principal = info.context.principal
        visible = await loaders.visible_user_ids(principal)
        return [cls.from_row(r) if r is not None and r.id in visible else None for r in rows]


async def load_user(info: strawberry.Info[Context, Any], user_id: uuid.UUID | None) -> User | None:
    """The account behind an optional user id (null once the account is deleted), batched."""
    if user_id is None:
        return None
    row = await info.context.loaders.identity.users.load(user_id)
    return User.from_row(row) if row else None


@strawberry.type(description="Result of register, login, refreshToken and changePassword.")
class AuthPayload:
    access_token: str | None = strawberry.field(
        description="Short-lived JWT for `Authorization: Bearer ...` (15 minutes)."
    )
    access_token_expires_at: datetime | None = strawberry.field(description="When it expires.")
    refresh_token: str | None = strawberry.field(
        description="Opaque, single-use: exchange it with `refreshToken` for a new pair."
    )
    user: User | None = strawberry.field(description="The signed-in user.")
    two_factor_required: bool = strawberry.field(
        description="Login only: the password was right; call again with `twoFactorCode` "
        "or `recoveryCode`."
    )
    errors: list[UserError] = strawberry.field(description="Why it failed, if it did.")

    @classmethod
    def of(cls, result: AuthResult) -> AuthPayload:
        return cls(
            access_token=result.access_token,
            access_token_expires_at=result.access_token_expires_at,
            refresh_token=result.refresh_token,
            user=User.from_row(result.user) if result.user else None,
            two_factor_required=result.two_factor_required,
            errors=[],
        )

    @classmethod
    def failed(cls, errors: list[UserError]) -> AuthPayload:
        return cls(
            access_token=None,
            access_token_expires_at=None,
            refresh_token=None,
            user=None,
            two_factor_required=False,
            errors=errors,
        )


@strawberry.type(description="Result of a mutation that returns a user.")
class UserPayload:
    user: User | None = strawberry.field(description="The user after the change.")
    errors: list[UserError] = strawberry.field(description="Why it failed, if it did.")


@strawberry.type(description="Result of enableTwoFactor: add the secret to an authenticator app.")
class EnableTwoFactorPayload:
    secret: str | None = strawberry.field(description="Base32 TOTP secret, for manual entry.")
    provisioning_uri: str | None = strawberry.field(
        description="otpauth:// URI; render it as a QR code."
    )
    errors: list[UserError] = strawberry.field(description="Why it failed, if it did.")


@strawberry.type(description="Result of confirmTwoFactor.")
class ConfirmTwoFactorPayload:
    recovery_codes: list[str] = strawberry.field(
        description="One-time codes for when the authenticator is lost. Shown only now."
    )
    errors: list[UserError] = strawberry.field(description="Why it failed, if it did.")


@strawberry.type(description="Result of exportMyData.")
class ExportMyDataPayload:
    data: strawberry.scalars.JSON | None = strawberry.field(
        description="Every piece of personal data held about you, as one JSON document."
    )
    errors: list[UserError] = strawberry.field(description="Why it failed, if it did.")


@strawberry.input(description="A new account.")
class RegisterInput:
    email: str = strawberry.field(description="Sign-in email.")
    password: str = strawberry.field(description="At least 12 characters, not a common one.")
    name: str = strawberry.field(description="Display name.")


@strawberry.input(description="Credentials; add a second factor when asked for one.")
class LoginInput:
    email: str = strawberry.field(description="Sign-in email.")
    password: str = strawberry.field(description="Password.")
    two_factor_code: str | None = strawberry.field(
        default=None, description="6-digit code from the authenticator app."
    )
    recovery_code: str | None = strawberry.field(
        default=None, description="A one-time recovery code instead of the TOTP code."
    )


@strawberry.input(description="Profile changes; omitted fields stay as they are.")
class UpdateProfileInput:
    name: str | None = strawberry.field(default=None, description="New display name.")


@strawberry.input(description="A password change.")
class ChangePasswordInput:
    current_password: str = strawberry.field(description="The password in use now.")
    new_password: str = strawberry.field(description="At least 12 characters, not a common one.")


@strawberry.input(description="Finish a password reset.")
class ResetPasswordInput:
    token: str = strawberry.field(description="The token from the reset email.")
    new_password: str = strawberry.field(description="At least 12 characters, not a common one.")
