"""OAuth 2 client side against the fakes' token endpoints: the authorize URL carries
state and a PKCE S256 challenge, the code exchange sends the verifier (and the client
authentication each platform documents), refreshes map refusals to AuthError."""

from __future__ import annotations

import base64
import hashlib
import re
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from app.models.vocabulary import Platform
from app.platforms import identities, oauth
from app.platforms.publishing import AuthError, Credentials, RetryableError, TokenSet
from app.settings import Settings
from tests.platforms.conftest import adapter_settings
from tests.platforms.fakes import TOKEN, FakePlatforms, Fault

pytestmark = pytest.mark.no_db

REDIRECT = "https://app.example.com/oauth/x/callback"


def challenge_of(verifier: str) -> str:
    return (
        base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    )


@pytest.mark.parametrize("platform", oauth.OAUTH_PLATFORMS, ids=lambda p: p.value)
def test_authorize_url_has_state_and_pkce_s256(
    platform: Platform, platform_settings: Settings
) -> None:
    first = oauth.begin(platform_settings, platform, REDIRECT)
    second = oauth.begin(platform_settings, platform, REDIRECT)
    app = oauth.app_for(platform_settings, platform)
    parts = urlsplit(first.url)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == app.authorize_url
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    assert query == {
        "response_type": "code",
        "client_id": app.client_id,
        "redirect_uri": REDIRECT,
        "scope": app.scope,
        "state": first.state,
        "code_challenge": challenge_of(first.code_verifier),
        "code_challenge_method": "S256",
    }
    # RFC 7636: 43-128 unreserved characters; fresh state and verifier every time.
    assert re.fullmatch(r"[A-Za-z0-9\-._~]{43,128}", first.code_verifier)
    assert len(first.state) >= 32
    assert first.state != second.state and first.code_verifier != second.code_verifier


def test_unconfigured_platform_is_refused(fake: FakePlatforms) -> None:
    settings = adapter_settings(fake, x_client_id=None)
    with pytest.raises(oauth.NotConfigured):
        oauth.begin(settings, Platform.X, REDIRECT)
    assert Platform.X not in oauth.configured_platforms(settings)
    assert Platform.LINKEDIN in oauth.configured_platforms(settings)
    with pytest.raises(oauth.NotConfigured):
        oauth.app_for(settings, Platform.BLUESKY)


async def test_x_code_exchange_sends_the_verifier(
    fake: FakePlatforms, platform_settings: Settings
) -> None:
    started = oauth.begin(platform_settings, Platform.X, REDIRECT)
    query = parse_qs(urlsplit(started.url).query)
    code = fake.approve(query["code_challenge"][0], REDIRECT)
    tokens = await oauth.complete(
        platform_settings, Platform.X, code, started.code_verifier, REDIRECT
    )
    [seen] = fake.requests("POST", "/2/oauth2/token")
    assert seen.headers["content-type"].startswith("application/x-www-form-urlencoded")
    assert seen.form() == {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REDIRECT,
        "code_verifier": started.code_verifier,
    }
    basic = base64.b64encode(b"x-client:x-secret-value").decode()
    assert seen.headers["authorization"] == f"Basic {basic}"
    assert tokens.access_token.startswith("x-access-") and tokens.refresh_token
    assert tokens.expires_at is not None and tokens.scope


async def test_wrong_verifier_is_refused(fake: FakePlatforms, platform_settings: Settings) -> None:
    started = oauth.begin(platform_settings, Platform.X, REDIRECT)
    code = fake.approve(parse_qs(urlsplit(started.url).query)["code_challenge"][0], REDIRECT)
    with pytest.raises(AuthError) as caught:
        await oauth.complete(platform_settings, Platform.X, code, "not-the-verifier" * 3, REDIRECT)
    assert "invalid_grant" in caught.value.message
    assert "x-secret-value" not in caught.value.message and code not in caught.value.message


async def test_linkedin_posts_its_client_credentials(
    fake: FakePlatforms, platform_settings: Settings
) -> None:
    started = oauth.begin(platform_settings, Platform.LINKEDIN, REDIRECT)
    code = fake.approve(challenge_of(started.code_verifier), REDIRECT)
    tokens = await oauth.complete(
        platform_settings, Platform.LINKEDIN, code, started.code_verifier, REDIRECT
    )
    [seen] = fake.requests("POST", "/oauth/v2/accessToken")
    form = seen.form()
    assert (form["client_id"], form["client_secret"]) == ("li-client", "li-secret-value")
    assert form["code_verifier"] == started.code_verifier and "authorization" not in seen.headers
    refreshed = await oauth.refresh(
        platform_settings,
        Platform.LINKEDIN,
        Credentials(access_token=tokens.access_token, refresh_token=tokens.refresh_token),
    )
    assert refreshed.access_token != tokens.access_token


async def test_facebook_exchanges_for_a_long_lived_token(
    fake: FakePlatforms, http: httpx.AsyncClient, platform_settings: Settings
) -> None:
    started = oauth.begin(platform_settings, Platform.FACEBOOK, REDIRECT)
    code = fake.approve(challenge_of(started.code_verifier), REDIRECT)
    tokens = await oauth.complete(
        platform_settings, Platform.FACEBOOK, code, started.code_verifier, REDIRECT
    )
    [exchange] = fake.requests("GET", "/v23.0/oauth/access_token")
    assert exchange.query == {
        "grant_type": "fb_exchange_token",
        "client_id": "fb-app",
        "client_secret": "fb-secret-value",
        "fb_exchange_token": "fb-short",
    }
    assert tokens.access_token == "fb-long" and tokens.expires_at is not None
    pages = await identities.identify(http, platform_settings, Platform.FACEBOOK, TokenSet(TOKEN))
    assert pages == [identities.Identity("111", "Dev Page", None, "page-token")]
    business = await identities.identify(
        http, platform_settings, Platform.INSTAGRAM, TokenSet(TOKEN)
    )
    assert business == [
        identities.Identity("17841400001", "devshop", "devshop", "page-token", {"page_id": "111"})
    ]
    # Page tokens do not expire: refreshing one returns it unchanged.
    same = await oauth.refresh(
        platform_settings, Platform.FACEBOOK, Credentials(access_token="page-token")
    )
    assert same.access_token == "page-token"


async def test_threads_exchange_and_identity(
    fake: FakePlatforms, http: httpx.AsyncClient, platform_settings: Settings
) -> None:
    started = oauth.begin(platform_settings, Platform.THREADS, REDIRECT)
    code = fake.approve(challenge_of(started.code_verifier), REDIRECT)
    tokens = await oauth.complete(
        platform_settings, Platform.THREADS, code, started.code_verifier, REDIRECT
    )
    [exchange] = fake.requests("GET", "/access_token")
    assert exchange.query == {
        "grant_type": "th_exchange_token",
        "client_secret": "th-secret-value",
        "access_token": "threads-short",
    }
    assert tokens.access_token == "threads-long"
    [me] = await identities.identify(http, platform_settings, Platform.THREADS, TokenSet(TOKEN))
    assert (me.external_id, me.username) == ("1234", "dev.threads")


async def test_identities_x_and_linkedin(
    fake: FakePlatforms, http: httpx.AsyncClient, platform_settings: Settings
) -> None:
    [user] = await identities.identify(http, platform_settings, Platform.X, TokenSet(TOKEN))
    assert (user.external_id, user.username) == ("2244994945", "dev")
    [member] = await identities.identify(
        http, platform_settings, Platform.LINKEDIN, TokenSet(TOKEN)
    )
    assert member.external_id == "urn:li:person:782bbtaQ"


async def test_refresh_failures(fake: FakePlatforms, platform_settings: Settings) -> None:
    with pytest.raises(AuthError):
        await oauth.refresh(
            platform_settings, Platform.X, Credentials(access_token="a", refresh_token="revoked")
        )
    with pytest.raises(AuthError, match="no refresh token"):
        await oauth.refresh(platform_settings, Platform.X, Credentials(access_token="a"))
    fake.fail("POST", "/2/oauth2/token", Fault(503, {"error": "temporarily_unavailable"}))
    with pytest.raises(RetryableError):
        await oauth.refresh(
            platform_settings, Platform.X, Credentials(access_token="a", refresh_token="refresh-1")
        )
