"""Accounts, sessions, two-factor authentication and personal data."""

from __future__ import annotations

from typing import Annotated, cast

import strawberry
from strawberry.scalars import JSON

from app.services.identity import accounts as identity
from app.services.identity import privacy, sessions, two_factor
from resolvers.common import attempt, principal_of, state_of
from schema.context import Info
from schema.types.errors import SuccessPayload
from schema.types.identity import (
    AuthPayload,
    ChangePasswordInput,
    ConfirmTwoFactorPayload,
    EnableTwoFactorPayload,
    ExportMyDataPayload,
    LoginInput,
    RegisterInput,
    ResetPasswordInput,
    UpdateProfileInput,
    User,
    UserPayload,
)


def _ok(errors: list) -> SuccessPayload:  # type: ignore[type-arg]
    return SuccessPayload.of(errors)


@strawberry.type
class IdentityQuery:
    @strawberry.field(description="The signed-in user. Requires a user session (not an API key).")
    async def me(self, info: Info) -> User:
        user_id = principal_of(info).require_user()
        return User.from_row(await identity.get_user(state_of(info), user_id))


@strawberry.type
class IdentityMutation:
    @strawberry.mutation(description="Create an account and sign in. Public.")
    async def register(
        self,
        info: Info,
        input: Annotated[RegisterInput, strawberry.argument(description="The fields.")],
    ) -> AuthPayload:
        meta = principal_of(info).meta
        result, errors = await attempt(
            identity.register(
                state_of(info), meta, email=input.email, password=input.password, name=input.name
            )
        )
        return AuthPayload.of(result) if result else AuthPayload.failed(errors)

    @strawberry.mutation(
        description="Sign in. With two-factor authentication on, the first call answers "
        "`twoFactorRequired: true`; call again with `twoFactorCode` or `recoveryCode`. Public; "
        "throttled after repeated failures (RATE_LIMITED with `retryAfter`)."
    )
    async def login(
        self,
        info: Info,
        input: Annotated[LoginInput, strawberry.argument(description="The fields.")],
    ) -> AuthPayload:
        result, errors = await attempt(
            sessions.login(
                state_of(info),
                principal_of(info).meta,
                email=input.email,
                password=input.password,
                two_factor_code=input.two_factor_code,
                recovery_code=input.recovery_code,
            )
        )
        return AuthPayload.of(result) if result else AuthPayload.failed(errors)

    @strawberry.mutation(
        description="Exchange a refresh token for a new pair. Each refresh token works once; "
        "reusing one ends the whole session. Public."
    )
    async def refresh_token(
        self,
        info: Info,
        refresh_token: Annotated[
            str, strawberry.argument(description="The current refresh token.")
        ],
    ) -> AuthPayload:
        result, errors = await attempt(
            sessions.refresh(state_of(info), principal_of(info).meta, refresh_token)
        )
        return AuthPayload.of(result) if result else AuthPayload.failed(errors)

    @strawberry.mutation(description="End the session this refresh token belongs to. Public.")
    async def logout(
        self,
        info: Info,
        refresh_token: Annotated[
            str, strawberry.argument(description="The session's refresh token.")
        ],
    ) -> SuccessPayload:
        _, errors = await attempt(
            sessions.logout(state_of(info), principal_of(info), refresh_token)
        )
        return _ok(errors)

    @strawberry.mutation(description="Change your profile. Requires a user session.")
    async def update_profile(
        self,
        info: Info,
        input: Annotated[UpdateProfileInput, strawberry.argument(description="The fields.")],
    ) -> UserPayload:
        user, errors = await attempt(
            identity.update_profile(state_of(info), principal_of(info), name=input.name)
        )
        return UserPayload(user=User.from_row(user) if user else None, errors=errors)

    @strawberry.mutation(
        description="Change your password. Ends every other session; returns a fresh one."
    )
    async def change_password(
        self,
        info: Info,
        input: Annotated[ChangePasswordInput, strawberry.argument(description="The fields.")],
    ) -> AuthPayload:
        result, errors = await attempt(
            identity.change_password(
                state_of(info),
                principal_of(info),
                current_password=input.current_password,
                new_password=input.new_password,
            )
        )
        return AuthPayload.of(result) if result else AuthPayload.failed(errors)

    @strawberry.mutation(
        description="Email a password-reset token. Always succeeds, so it reveals no "
        "accounts. Public."
    )
    async def request_password_reset(
        self, info: Info, email: Annotated[str, strawberry.argument(description="Account email.")]
    ) -> SuccessPayload:
        _, errors = await attempt(
            identity.request_password_reset(state_of(info), principal_of(info).meta, email)
        )
        return _ok(errors)

    @strawberry.mutation(
        description="Set a new password with a reset token; ends every session. Public."
    )
    async def reset_password(
        self,
        info: Info,
        input: Annotated[ResetPasswordInput, strawberry.argument(description="The fields.")],
    ) -> SuccessPayload:
        _, errors = await attempt(
            identity.reset_password(
                state_of(info),
                principal_of(info).meta,
                token=input.token,
                new_password=input.new_password,
            )
        )
        return _ok(errors)

    @strawberry.mutation(description="Start two-factor enrolment: returns the TOTP secret and URI.")
    async def enable_two_factor(self, info: Info) -> EnableTwoFactorPayload:
        result, errors = await attempt(two_factor.enable(state_of(info), principal_of(info)))
        secret, uri = result if result else (None, None)
        return EnableTwoFactorPayload(secret=secret, provisioning_uri=uri, errors=errors)

    @strawberry.mutation(
        description="Finish enrolment with a code from the app; returns recovery codes."
    )
    async def confirm_two_factor(
        self,
        info: Info,
        code: Annotated[str, strawberry.argument(description="6-digit TOTP code.")],
    ) -> ConfirmTwoFactorPayload:
        codes, errors = await attempt(two_factor.confirm(state_of(info), principal_of(info), code))
        return ConfirmTwoFactorPayload(recovery_codes=codes or [], errors=errors)

    @strawberry.mutation(description="Turn two-factor authentication off (password and a code).")
    async def disable_two_factor(
        self,
        info: Info,
        password: Annotated[str, strawberry.argument(description="Your password.")],
        code: Annotated[str, strawberry.argument(description="A TOTP code or a recovery code.")],
    ) -> SuccessPayload:
        _, errors = await attempt(
            two_factor.disable(state_of(info), principal_of(info), password=password, code=code)
        )
        return _ok(errors)

    @strawberry.mutation(description="All personal data held about you, as one JSON document.")
    async def export_my_data(self, info: Info) -> ExportMyDataPayload:
        data, errors = await attempt(privacy.export_my_data(state_of(info), principal_of(info)))
        return ExportMyDataPayload(data=cast(JSON, data), errors=errors)

    @strawberry.mutation(
        description="Delete your account and personal data. Workspaces you own that have other "
        "members pass to the longest-standing admin (else member); ones you are alone in "
        "are deleted."
    )
    async def delete_account(
        self,
        info: Info,
        password: Annotated[str, strawberry.argument(description="Your password.")],
    ) -> SuccessPayload:
        _, errors = await attempt(
            privacy.delete_account(state_of(info), principal_of(info), password=password)
        )
        return _ok(errors)
