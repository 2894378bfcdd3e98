"""OAuth 2 client side for the platforms that connect through it (authlib's httpx client).

The account flow (routes, state storage, token encryption) calls, in order:

1. `begin(settings, platform, redirect_uri)` -> `AuthorizationRequest(url, state,
   code_verifier)`: send the user to `url`; keep `state` and `code_verifier` server-side.
2. On `/oauth/{platform}/callback?code&state`: check `state`, then
   `await complete(settings, platform, code, code_verifier, redirect_uri)` -> `TokenSet`
   (long-lived tokens where the platform has them: Facebook, Threads).
3. `await identities.identify(http, settings, platform, tokens)` -> the `Identity`s the tokens act
   for (the user; for Facebook and Instagram each Page / business account, with the Page's
   own token): what to store as `Credentials.external_id`, `extra` and the name.
4. Before expiry: `await refresh(settings, platform, credentials)` -> `TokenSet`
   (`AuthError`: reconnect needed). Each adapter's `refresh_token` calls this.

Mastodon has no central app: `register_mastodon_app(http, instance_url, redirect_uri)`
creates one on the instance, and `mastodon_app(...)` is passed as `app=` to `begin` and
`complete`. Bluesky connects with an app password (see adapters/bluesky.create_session).

Every authorize URL carries `state` and a PKCE S256 challenge. LinkedIn and Threads do not
document PKCE for web apps; they ignore the extra parameters, and `state` still binds the
callback to the session that began it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import httpx
from authlib.common.security import generate_token
from authlib.integrations.base_client import OAuthError
from authlib.integrations.httpx_client import AsyncOAuth2Client
from authlib.integrations.httpx_client import oauth2_client as _authlib_client
from authlib.oauth2.rfc6749.parameters import prepare_grant_uri
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from pydantic import SecretStr

from app.models.vocabulary import Platform
from app.platforms.adapters.base import Api, safe_message
from app.platforms.publishing import (
    AuthError,
    Credentials,
    PermanentError,
    PublishError,
    RetryableError,
    TokenSet,
)
from app.settings import Settings

# The HTTP library authlib's client is built on (httpx2 when installed, else httpx): its
# exceptions are what a token request raises.
_oauth_http: Any = _authlib_client.httpx2

OAUTH_PLATFORMS = (
    Platform.X,
    Platform.LINKEDIN,
    Platform.FACEBOOK,
    Platform.INSTAGRAM,
    Platform.THREADS,
)
ClientAuth = Literal["client_secret_basic", "client_secret_post", "none"]


class NotConfigured(LookupError):
    """The platform's OAuth client id/secret are not set on this instance."""


@dataclass(frozen=True)
class OAuthApp:
    platform: Platform
    client_id: str
    client_secret: str | None
    authorize_url: str
    token_url: str
    scope: str
    # How the client authenticates at the token endpoint (RFC 6749 section 2.3.1).
    auth_method: ClientAuth
    # Mastodon: the instance the app is registered on.
    instance_url: str | None = None


@dataclass(frozen=True)
class AuthorizationRequest:
    url: str
    state: str
    code_verifier: str


def _secret(value: SecretStr | None) -> str | None:
    return value.get_secret_value() if value is not None else None


def app_for(settings: Settings, platform: Platform) -> OAuthApp:
    """The instance's OAuth app for `platform` (`NotConfigured` without a client id)."""
    graph = f"{settings.meta_graph_base_url}/{settings.meta_graph_version}"
    apps: dict[Platform, tuple[str | None, SecretStr | None, str, str, str, ClientAuth]] = {
        # X: confidential clients authenticate with HTTP Basic (public clients: none).
        Platform.X: (
            settings.x_client_id,
            settings.x_client_secret,
            settings.x_authorize_url,
            settings.x_token_url,
            settings.x_scopes,
            "client_secret_basic" if settings.x_client_secret else "none",
        ),
        Platform.LINKEDIN: (
            settings.linkedin_client_id,
            settings.linkedin_client_secret,
            settings.linkedin_authorize_url,
            settings.linkedin_token_url,
            settings.linkedin_scopes,
            "client_secret_post",
        ),
        Platform.THREADS: (
            settings.threads_client_id,
            settings.threads_client_secret,
            settings.threads_authorize_url,
            f"{settings.threads_api_base_url}/oauth/access_token",
            settings.threads_scopes,
            "client_secret_post",
        ),
    }
    for meta in (Platform.FACEBOOK, Platform.INSTAGRAM):
        apps[meta] = (
            settings.facebook_client_id,
            settings.facebook_client_secret,
            settings.facebook_authorize_url,
            f"{graph}/oauth/access_token",
            settings.facebook_scopes,
            "client_secret_post",
        )
    if platform not in apps:
        raise NotConfigured(f"{platform.value} does not connect through OAuth")
    client_id, secret, authorize, token, scope, method = apps[platform]
    if not client_id:
        raise NotConfigured(f"{platform.value} OAuth is not configured on this instance")
    return OAuthApp(platform, client_id, _secret(secret), authorize, token, scope, method)


def mastodon_app(instance_url: str, client_id: str, client_secret: str) -> OAuthApp:
    base = instance_url.rstrip("/")
    return OAuthApp(
        Platform.MASTODON,
        client_id,
        client_secret,
        f"{base}/oauth/authorize",
        f"{base}/oauth/token",
        MASTODON_SCOPES,
        "client_secret_post",
        instance_url=base,
    )


MASTODON_SCOPES = "read write"


def configured_platforms(settings: Settings) -> list[Platform]:
    """The OAuth platforms this instance has client ids for."""
    found = []
    for platform in OAUTH_PLATFORMS:
        try:
            app_for(settings, platform)
        except NotConfigured:
            continue
        found.append(platform)
    return found


def _client(settings: Settings, app: OAuthApp, redirect_uri: str | None = None) -> Any:
    return AsyncOAuth2Client(
        client_id=app.client_id,
        client_secret=app.client_secret,
        token_endpoint_auth_method=app.auth_method,
        scope=app.scope,
        redirect_uri=redirect_uri,
        code_challenge_method="S256",
        timeout=settings.oauth_timeout_seconds,
    )


def begin(
    settings: Settings,
    platform: Platform,
    redirect_uri: str,
    *,
    app: OAuthApp | None = None,
    state: str | None = None,
) -> AuthorizationRequest:
    """The authorize URL (with state and a PKCE S256 challenge) and what to keep."""
    app = app or app_for(settings, platform)
    # RFC 7636: 43-128 characters from the unreserved set; 64 random ones.
    code_verifier = generate_token(64)
    state = state or generate_token(32)
    url = prepare_grant_uri(
        app.authorize_url,
        client_id=app.client_id,
        response_type="code",
        redirect_uri=redirect_uri,
        scope=app.scope,
        state=state,
        code_challenge=create_s256_code_challenge(code_verifier),
        code_challenge_method="S256",
    )
    return AuthorizationRequest(url=url, state=state, code_verifier=code_verifier)


def _expires(token: Mapping[str, Any]) -> datetime | None:
    if isinstance(token.get("expires_at"), int | float):
        return datetime.fromtimestamp(float(token["expires_at"]), UTC)
    if isinstance(token.get("expires_in"), int | float) and token["expires_in"] > 0:
        return datetime.now(UTC) + timedelta(seconds=float(token["expires_in"]))
    return None


def _token_set(token: Mapping[str, Any], *, keep_refresh: str | None = None) -> TokenSet:
    access = token.get("access_token")
    if not isinstance(access, str) or not access:
        raise PermanentError("the token endpoint answered without an access token")
    refresh = token.get("refresh_token")
    scope = token.get("scope")
    return TokenSet(
        access_token=access,
        refresh_token=refresh if isinstance(refresh, str) and refresh else keep_refresh,
        expires_at=_expires(token),
        scope=" ".join(scope) if isinstance(scope, list) else scope,
    )


def _token_error(exc: Exception, name: str, secrets: tuple[str, ...]) -> PublishError:
    """A token request's failure, in publishing terms (never with the token or secret)."""
    if isinstance(exc, OAuthError):
        error: Any = exc.error
        code: Any = None
        if isinstance(error, dict):  # Graph API: {"error": {"message", "code", ...}}
            code, error = error.get("code"), error.get("message", "OAuthException")
        text = safe_message(f"{error}: {exc.description or ''}".rstrip(": "), secrets)
        if error in ("invalid_grant", "invalid_token", "unauthorized_client") or code == 190:
            return AuthError(f"{name} refused the grant: {text}")
        return PermanentError(f"{name} token request refused: {text}")
    if isinstance(exc, _oauth_http.HTTPStatusError):
        status = exc.response.status_code
        if status == 429 or status >= 500:
            return RetryableError(f"{name} token endpoint unavailable ({status})", status=status)
        if status in (400, 401):
            return AuthError(f"{name} refused the grant ({status})", status=status)
        return PermanentError(f"{name} token request refused ({status})", status=status)
    if isinstance(exc, _oauth_http.TransportError | httpx.TransportError):
        return RetryableError(f"{name} token endpoint unreachable ({type(exc).__name__})")
    return PermanentError(f"{name} token endpoint answered unexpectedly")


async def _token_request(
    settings: Settings, app: OAuthApp, call: str, secrets: tuple[str, ...], **kwargs: Any
) -> dict[str, Any]:
    name = app.platform.value
    async with _client(settings, app, kwargs.pop("redirect_uri", None)) as client:
        try:
            if call == "fetch":
                token = await client.fetch_token(app.token_url, **kwargs)
            else:
                token = await client.refresh_token(app.token_url, **kwargs)
        except Exception as exc:  # authlib, httpx2 and JSON errors alike
            raise _token_error(exc, name, secrets) from None
    return dict(token)


async def _graph_get(
    settings: Settings, app: OAuthApp, url: str, params: dict[str, str], secrets: tuple[str, ...]
) -> dict[str, Any]:
    """Meta's long-lived token exchanges (GET with the secret in the query, as documented)."""
    async with httpx.AsyncClient(timeout=settings.oauth_timeout_seconds) as http:
        api = Api(http, app.platform.value)
        try:
            body = await api.json("GET", url, creates=False, secrets=secrets, params=params)
        except PermanentError as exc:
            if exc.status in (400, 401):
                raise AuthError(exc.message, status=exc.status) from None
            raise
    if not isinstance(body, dict):
        raise PermanentError(f"{app.platform.value} token exchange answered unexpectedly")
    return body


async def complete(
    settings: Settings,
    platform: Platform,
    code: str,
    code_verifier: str,
    redirect_uri: str,
    *,
    app: OAuthApp | None = None,
) -> TokenSet:
    """Exchange the callback's code (with the PKCE verifier) for tokens."""
    app = app or app_for(settings, platform)
    secrets = tuple(s for s in (app.client_secret, code) if s)
    token = await _token_request(
        settings,
        app,
        "fetch",
        secrets,
        code=code,
        code_verifier=code_verifier,
        redirect_uri=redirect_uri,
    )
    short = _token_set(token)
    if platform in (Platform.FACEBOOK, Platform.INSTAGRAM):
        return await _facebook_long_lived(settings, app, short.access_token)
    if platform is Platform.THREADS:
        body = await _graph_get(
            settings,
            app,
            f"{settings.threads_api_base_url}/access_token",
            {
                "grant_type": "th_exchange_token",
                "client_secret": app.client_secret or "",
                "access_token": short.access_token,
            },
            (*secrets, short.access_token),
        )
        return _token_set(body)
    return short


async def _facebook_long_lived(settings: Settings, app: OAuthApp, token: str) -> TokenSet:
    graph = f"{settings.meta_graph_base_url}/{settings.meta_graph_version}"
    body = await _graph_get(
        settings,
        app,
        f"{graph}/oauth/access_token",
        {
            "grant_type": "fb_exchange_token",
            "client_id": app.client_id,
            "client_secret": app.client_secret or "",
            "fb_exchange_token": token,
        },
        tuple(s for s in (app.client_secret, token) if s),
    )
    return _token_set(body)


async def refresh(
    settings: Settings,
    platform: Platform,
    credentials: Credentials,
    *,
    app: OAuthApp | None = None,
) -> TokenSet:
    """New tokens for an account; `AuthError` when the platform refuses (reconnect)."""
    app = app or app_for(settings, platform)
    current = credentials.access_token or ""
    secrets = tuple(s for s in (app.client_secret, current, credentials.refresh_token) if s)
    if platform in (Platform.FACEBOOK, Platform.INSTAGRAM):
        # Page tokens made from a long-lived user token do not expire; a user token is
        # exchanged for a fresh long-lived one while it is still valid.
        if credentials.expires_at is None:
            return TokenSet(access_token=current, refresh_token=credentials.refresh_token)
        return await _facebook_long_lived(settings, app, current)
    if platform is Platform.THREADS:
        body = await _graph_get(
            settings,
            app,
            f"{settings.threads_api_base_url}/refresh_access_token",
            {"grant_type": "th_refresh_token", "access_token": current},
            secrets,
        )
        return _token_set(body)
    if not credentials.refresh_token:
        raise AuthError(f"{platform.value} gave this account no refresh token; reconnect it")
    token = await _token_request(
        settings, app, "refresh", secrets, refresh_token=credentials.refresh_token
    )
    # Platforms that do not rotate refresh tokens answer without one: keep the old one.
    return _token_set(token, keep_refresh=credentials.refresh_token)


async def register_mastodon_app(
    http: httpx.AsyncClient,
    instance_url: str,
    redirect_uri: str,
    *,
    client_name: str = "SmartContent",
    website: str | None = None,
) -> OAuthApp:
    """Register this instance as an app on a Mastodon server (POST /api/v1/apps)."""
    base = instance_url.rstrip("/")
    data = {"client_name": client_name, "redirect_uris": redirect_uri, "scopes": MASTODON_SCOPES}
    if website:
        data["website"] = website
    body = await Api(http, "Mastodon").json("POST", f"{base}/api/v1/apps", creates=False, data=data)
    if not isinstance(body, dict) or not body.get("client_id") or not body.get("client_secret"):
        raise PermanentError("the Mastodon server did not register the app")
    return mastodon_app(base, str(body["client_id"]), str(body["client_secret"]))
