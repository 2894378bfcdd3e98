"""Connecting accounts through OAuth (X, LinkedIn, Facebook, Instagram, Threads, Mastodon);
Bluesky, with an app password, is in bluesky_account.py.

OAuth: `start` keeps the flow's state server-side, in Redis under the `state` value itself
(encrypted with the MultiFernet keys: it holds the PKCE verifier and, for Mastodon, the
app's secret), for OAUTH_STATE_TTL_SECONDS, bound to the workspace, the user and the
platform. The callback (`complete`) takes it out of Redis in one MULTI (GET + DEL), so a
state works once; it then checks the user is still an admin there, exchanges the code,
asks the platform who the tokens act for and stores every account found (Facebook: every
Page the user manages; Instagram: every business account linked to them), each with its
own token, through `accounts.store_account`.

Mastodon has no central app: the first connection to an instance registers one there
(`POST /api/v1/apps`), cached in Redis (encrypted) per instance and redirect URI.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
from sqlalchemy import select

from app.auth import Principal, WorkspaceAccess
from app.errors import AppError, FieldError, UserErrorCode, ValidationFailed
from app.infra import outbound
from app.logging import get_logger
from app.models import ApiKey, Membership, SocialAccount, User, Workspace
from app.models.vocabulary import Platform
from app.permissions import Action, Role
from app.platforms import identities, oauth
from app.platforms.adapters.base import Api
from app.platforms.publishing import Credentials, PublishError, TokenSet
from app.services.audit import trail as audit
from app.services.publishing.accounts import store_account
from app.state import AppState

log = get_logger(__name__)

STATE_PREFIX = "oauth:state:"
MASTODON_APP_PREFIX = "oauth:mastodon-app:"
MASTODON_APP_TTL_SECONDS = 30 * 24 * 3600
CONNECTABLE = (*oauth.OAUTH_PLATFORMS, Platform.MASTODON)


class ConnectionRefused(Exception):
    """Why a callback did not connect anything, as one short word for the browser's
    redirect (`reason`); never a token or a secret."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class Connected:
    platform: Platform
    workspace_id: uuid.UUID
    accounts: list[SocialAccount]


def redirect_uri(state: AppState, platform: Platform) -> str:
    return f"{state.settings.api_url}/oauth/{platform.value.lower()}/callback"


def platform_of(slug: str) -> Platform | None:
    try:
        platform = Platform(slug.upper())
    except ValueError:
        return None
    return platform if platform in CONNECTABLE else None


def _sha(*parts: str) -> str:
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


async def _mastodon_app(state: AppState, instance_url: str, redirect: str) -> oauth.OAuthApp:
    """The app registered on `instance_url` (registered on first use, then cached)."""
    key = MASTODON_APP_PREFIX + _sha(instance_url, redirect)
    cached = await state.redis.get(key)
    if cached:
        found = json.loads(
            state.keys.box.decrypt(cached if isinstance(cached, str) else cached.decode())
        )
        return oauth.mastodon_app(instance_url, found["client_id"], found["client_secret"])
    async with outbound.client(
        state.settings, timeout=state.settings.oauth_timeout_seconds
    ) as http:
        app = await oauth.register_mastodon_app(
            http, instance_url, redirect, website=state.settings.public_url
        )
    document = json.dumps({"client_id": app.client_id, "client_secret": app.client_secret})
    await state.redis.set(key, state.keys.box.encrypt(document), ex=MASTODON_APP_TTL_SECONDS)
    return app


async def start(
    state: AppState,
    principal: Principal,
    workspace_id: uuid.UUID,
    platform: Platform,
    *,
    instance_url: str | None = None,
) -> str:
    """The URL to send the admin's browser to; the flow's state waits in Redis."""
    principal.require(workspace_id, Action.ACCOUNT_MANAGE)
    if platform not in CONNECTABLE:
        raise ValidationFailed(
            [
                FieldError(
                    "platform",
                    UserErrorCode.INVALID,
                    f"{platform.value} does not connect through OAuth; use "
                    "connectBlueskyAccount, connectWebhookAccount or connectEmailAccount.",
                )
            ]
        )
    settings = state.settings
    redirect = redirect_uri(state, platform)
    app: oauth.OAuthApp | None = None
    document: dict[str, Any] = {
        "workspace_id": str(workspace_id),
        # Who began it (a user or an admin API key): checked again on the callback.
        "user_id": str(principal.user_id) if principal.user_id else None,
        "api_key_id": str(principal.api_key_id) if principal.api_key_id else None,
        "platform": platform.value,
    }
    if platform is Platform.MASTODON:
        base = (instance_url or "").strip().rstrip("/")
        if not base:
            raise ValidationFailed(
                [FieldError("instanceUrl", UserErrorCode.REQUIRED, "Name the Mastodon server.")]
            )
        if "://" not in base:
            base = f"https://{base}"
        problem = await outbound.check_url(
            base,
            allow_private=settings.outbound_allow_private_networks,
            schemes=frozenset({"https", "http"}),
        )
        if problem:
            raise ValidationFailed([FieldError("instanceUrl", UserErrorCode.INVALID, problem)])
        try:
            app = await _mastodon_app(state, base, redirect)
        except (PublishError, httpx.HTTPError) as exc:
            log.info("mastodon_app_registration_failed", error=repr(exc))
            raise ValidationFailed(
                [
                    FieldError(
                        "instanceUrl",
                        UserErrorCode.INVALID,
                        "That server did not register the app; is it a Mastodon server?",
                    )
                ]
            ) from None
        document.update(instance_url=base, client_id=app.client_id, client_secret=app.client_secret)
    try:
        request = oauth.begin(settings, platform, redirect, app=app)
    except oauth.NotConfigured:
        raise ValidationFailed(
            [
                FieldError(
                    "platform",
                    UserErrorCode.NOT_ENABLED,
                    f"{platform.value} is not set up on this instance (its OAuth client id "
                    "is missing); ask the operator.",
                )
            ]
        ) from None
    document["code_verifier"] = request.code_verifier
    await state.redis.set(
        STATE_PREFIX + request.state,
        state.keys.box.encrypt(json.dumps(document)),
        ex=settings.oauth_state_ttl_seconds,
    )
    return request.url


async def _take_state(state: AppState, token: str) -> dict[str, Any] | None:
    """The flow's state, removed in the same step: a second use finds nothing."""
    if not token or len(token) > 200:
        return None
    key = STATE_PREFIX + token
    async with state.redis.pipeline(transaction=True) as pipe:
        pipe.get(key)
        pipe.delete(key)
        raw, _ = await pipe.execute()
    if not raw:
        return None
    try:
        found: dict[str, Any] = json.loads(
            state.keys.box.decrypt(raw if isinstance(raw, str) else raw.decode())
        )
    except ValueError:
        return None
    return found


async def _admin(state: AppState, found: dict[str, Any], workspace_id: uuid.UUID) -> Principal:
    """Who began the flow, as a principal in that workspace: still an admin there (a user
    still a member; an API key neither revoked nor expired)?"""
    if found.get("api_key_id"):
        return await _key_admin(state, uuid.UUID(found["api_key_id"]), workspace_id)
    if not found.get("user_id"):
        raise ConnectionRefused("not_allowed", "begun by nobody")
    user_id = uuid.UUID(found["user_id"])
    async with state.read_session_factory() as session:
        row = (
            await session.execute(
                select(User.email, User.totp_enabled, Membership.role, Workspace.require_two_factor)
                .join(Membership, Membership.user_id == User.id)
                .join(Workspace, Workspace.id == Membership.workspace_id)
                .where(User.id == user_id, Membership.workspace_id == workspace_id)
            )
        ).one_or_none()
    if row is None:
        raise ConnectionRefused("not_allowed", "no longer a member of the workspace")
    email, totp, role, required = row
    principal = Principal(
        kind="user",
        user_id=user_id,
        label=email,
        two_factor_enabled=totp,
        access={workspace_id: WorkspaceAccess(Role.parse(role), bool(required))},
    )
    try:
        principal.require(workspace_id, Action.ACCOUNT_MANAGE)
    except AppError:
        raise ConnectionRefused("not_allowed", "no longer an admin of the workspace") from None
    return principal


async def _key_admin(state: AppState, key_id: uuid.UUID, workspace_id: uuid.UUID) -> Principal:
    async with state.read_session_factory() as session:
        key = await session.get(ApiKey, key_id)
    now = datetime.now(UTC)
    if (
        key is None
        or key.workspace_id != workspace_id
        or key.revoked_at is not None
        or (key.expires_at is not None and key.expires_at <= now)
    ):
        raise ConnectionRefused("not_allowed", "the API key is no longer valid")
    principal = Principal(
        kind="api_key",
        api_key_id=key.id,
        label=f"api-key:{key.prefix}",
        access={workspace_id: WorkspaceAccess(Role.parse(key.role), False)},
    )
    try:
        principal.require(workspace_id, Action.ACCOUNT_MANAGE)
    except AppError:
        raise ConnectionRefused("not_allowed", "the API key is not an admin key") from None
    return principal


async def _mastodon_identity(
    http: httpx.AsyncClient, instance_url: str, tokens: TokenSet
) -> identities.Identity:
    body = await Api(http, "Mastodon").json(
        "GET",
        f"{instance_url}/api/v1/accounts/verify_credentials",
        creates=False,
        headers={"Authorization": f"Bearer {tokens.access_token}"},
        secrets=(tokens.access_token,),
    )
    host = instance_url.split("://", 1)[-1]
    username = str(body.get("username") or body.get("acct") or "")
    return identities.Identity(
        str(body["id"]),
        str(body.get("display_name") or f"@{username}@{host}"),
        username,
        extra={"instance_url": instance_url, "username": username},
    )


def _credentials(tokens: TokenSet, identity: identities.Identity) -> Credentials:
    if identity.access_token and identity.access_token != tokens.access_token:
        # A Page's own token (Facebook, Instagram): made from a long-lived user token, it
        # does not expire, and there is nothing to refresh it with.
        return Credentials(
            access_token=identity.access_token,
            external_id=identity.external_id,
            extra=dict(identity.extra),
        )
    return Credentials(
        access_token=tokens.access_token,
        refresh_token=tokens.refresh_token,
        expires_at=tokens.expires_at,
        external_id=identity.external_id,
        extra=dict(identity.extra),
    )


async def complete(state: AppState, platform: Platform, code: str, token: str) -> Connected:
    """The callback: consume the state, exchange the code, store the account(s)."""
    found = await _take_state(state, token)
    if found is None or found.get("platform") != platform.value:
        raise ConnectionRefused("invalid_state", "unknown, expired or already used state")
    workspace_id = uuid.UUID(found["workspace_id"])
    principal = await _admin(state, found, workspace_id)
    if not code:
        raise ConnectionRefused("denied", "the platform sent no code")
    settings = state.settings
    redirect = redirect_uri(state, platform)
    app = None
    instance_url = str(found.get("instance_url") or "")
    if platform is Platform.MASTODON:
        app = oauth.mastodon_app(instance_url, found["client_id"], found["client_secret"])
    try:
        tokens = await oauth.complete(
            settings, platform, code, found["code_verifier"], redirect, app=app
        )
        async with outbound.client(settings, timeout=settings.oauth_timeout_seconds) as http:
            if platform is Platform.MASTODON:
                people = [await _mastodon_identity(http, instance_url, tokens)]
            else:
                people = await identities.identify(http, settings, platform, tokens)
    except PublishError as exc:
        log.info("oauth_callback_refused", platform=platform.value, error=exc.message)
        raise ConnectionRefused("refused", exc.message) from None
    if not people:
        raise ConnectionRefused("no_accounts", "the login manages no account to publish as")
    stored: list[SocialAccount] = []
    async with state.session_factory() as session, session.begin():
        for identity in people:
            account = await store_account(
                session,
                state.keys.box,
                workspace_id=workspace_id,
                platform=platform,
                name=(identity.name or identity.username or identity.external_id)[:200],
                credentials=_credentials(tokens, identity),
                created_by_id=principal.user_id,
            )
            audit.record_row(
                session,
                principal,
                "startAccountConnection",
                account,
                {"platform": platform.value, "name": account.name},
            )
            stored.append(account)
    return Connected(platform, workspace_id, stored)
