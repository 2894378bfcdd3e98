"""Connecting a Bluesky account with a handle and an app password (AT protocol
createSession): the session's tokens and the app password are stored encrypted, so an
expired session can be renewed by signing in again."""

from __future__ import annotations

import uuid

from app.auth import Principal
from app.errors import FieldError, UserErrorCode, ValidationFailed
from app.infra import outbound
from app.models import SocialAccount
from app.models.vocabulary import Platform
from app.permissions import Action
from app.platforms.adapters.bluesky_xrpc import create_session
from app.platforms.publishing import AuthError, Credentials, PublishError
from app.services.audit import trail as audit
from app.services.publishing.accounts import store_account
from app.state import AppState

MAX_HANDLE = 253
MAX_APP_PASSWORD = 200


async def connect_bluesky(
    state: AppState,
    principal: Principal,
    workspace_id: uuid.UUID,
    *,
    handle: str,
    app_password: str,
) -> SocialAccount:
    """A Bluesky account, signed in with an app password (kept encrypted, so an expired
    session can be renewed by signing in again)."""
    principal.require(workspace_id, Action.ACCOUNT_MANAGE)
    handle = handle.strip().removeprefix("@")
    errors: list[FieldError] = []
    if not handle or len(handle) > MAX_HANDLE:
        errors.append(FieldError("handle", UserErrorCode.INVALID, "Give the account's handle."))
    if not app_password or len(app_password) > MAX_APP_PASSWORD:
        errors.append(
            FieldError("appPassword", UserErrorCode.REQUIRED, "Give an app password of it.")
        )
    if errors:
        raise ValidationFailed(errors)
    settings = state.settings
    try:
        async with outbound.client(settings, timeout=settings.oauth_timeout_seconds) as http:
            session = await create_session(http, settings, handle, app_password)
    except AuthError:
        raise ValidationFailed(
            [
                FieldError(
                    "appPassword",
                    UserErrorCode.INVALID_CREDENTIALS,
                    "Bluesky refused this handle and app password.",
                )
            ]
        ) from None
    except PublishError as exc:
        raise ValidationFailed(
            [FieldError("handle", UserErrorCode.INVALID, f"Bluesky: {exc.message}")]
        ) from None
    tokens = session.tokens
    credentials = Credentials(
        access_token=tokens.access_token,
        refresh_token=tokens.refresh_token,
        expires_at=tokens.expires_at,
        external_id=session.did,
        extra={"handle": session.handle, "pds_url": session.pds_url, "app_password": app_password},
    )
    async with state.session_factory() as db, db.begin():
        account = await store_account(
            db,
            state.keys.box,
            workspace_id=workspace_id,
            platform=Platform.BLUESKY,
            name=f"@{session.handle}",
            credentials=credentials,
            created_by_id=principal.user_id,
        )
        audit.record_row(
            db, principal, "connectBlueskyAccount", account, {"handle": session.handle}
        )
    return account
