"""OAuth connections end to end for Facebook Pages, Instagram, LinkedIn and Threads:
startAccountConnection -> the browser follows the authorize URL to the provider's (fake)
consent page, which redirects back -> GET /oauth/{platform}/callback -> the account(s)
stored with encrypted tokens and the identity each platform publishes as. (X and Mastodon:
test_connections.py.)"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from sqlalchemy import select

from app.models import SocialAccount
from app.platforms.publishing import Credentials
from app.services.publishing.accounts import credentials_of
from app.settings import Settings
from app.state import AppState
from tests.conftest import Servers, make_settings
from tests.publishing.conftest import PUBLIC, PUBLISHING, Team, call
from tests.publishing.oauth_providers import Page, Providers, serve_providers
from tests.teams import uid

START = """
mutation($ws: ID!, $p: Platform!) {
  startAccountConnection(workspaceId: $ws, platform: $p) { authorizeUrl errors { code } }
}
"""


@pytest.fixture(scope="module")
async def providers() -> AsyncIterator[Providers]:
    async with serve_providers() as fake:
        yield fake


@pytest.fixture(scope="module")
def connect_settings(servers: Servers, providers: Providers) -> Settings:
    """The connection app (tests/publishing/conftest.py) pointed at these providers."""
    return make_settings(servers, **PUBLISHING, public_url=PUBLIC, **providers.settings())


async def connect(
    web: httpx.AsyncClient, team: Team, app_state: AppState, platform: str
) -> dict[str, str]:
    """What the admin's browser does: begin, follow the authorize URL to the provider,
    come back to the callback; the outcome the web app is redirected to."""
    data = await call(web, team.owner, START, {"ws": team.workspace_id, "p": platform})
    payload = data["startAccountConnection"]
    assert payload["errors"] == []
    async with httpx.AsyncClient() as browser:
        consent = await browser.get(payload["authorizeUrl"])
    assert consent.status_code == 302, consent.text
    back = urlsplit(consent.headers["location"])
    slug = platform.lower()
    assert f"{back.scheme}://{back.netloc}{back.path}" == (
        f"{app_state.settings.api_url}/oauth/{slug}/callback"
    )
    response = await web.get(f"{back.path}?{back.query}")
    assert response.status_code == 303, response.text
    location = response.headers["location"]
    assert location.startswith(f"{PUBLIC}/?")
    outcome = {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}
    assert outcome["platform"] == slug
    return outcome


async def stored(
    app_state: AppState, team: Team, platform: str
) -> list[tuple[SocialAccount, Credentials]]:
    async with app_state.session_factory() as session:
        rows = (
            await session.scalars(
                select(SocialAccount)
                .where(
                    SocialAccount.workspace_id == uid(team.workspace_id),
                    SocialAccount.platform == platform,
                )
                .order_by(SocialAccount.external_id)
            )
        ).all()
    found = []
    for row in rows:
        creds = credentials_of(app_state.keys.box, row)
        assert row.credentials is not None and row.status == "CONNECTED"
        # Encrypted at rest: no token in the stored column.
        for secret in (creds.access_token, creds.refresh_token):
            assert not secret or secret not in row.credentials
        found.append((row, creds))
    return found


def about(when: datetime | None, delta: timedelta) -> bool:
    return when is not None and abs(when - (datetime.now(UTC) + delta)) < timedelta(minutes=5)


async def test_facebook_stores_every_page_with_its_page_token(
    web: httpx.AsyncClient, admin: Team, app_state: AppState, providers: Providers
) -> None:
    providers.pages = [
        Page("111", "Dev Page"),
        Page("222", "Shop"),
        Page("444", "Analyst only", tasks=("ANALYZE",)),  # may not post: not stored
        Page("333", "Events"),
    ]
    providers.page_size = 2  # the Graph API pages /me/accounts: two are on page two
    outcome = await connect(web, admin, app_state, "FACEBOOK")
    assert outcome == {"oauth": "connected", "platform": "facebook", "accounts": "3"}

    [exchange] = [
        p for p in providers.seen("/graph/v23.0/oauth/access_token") if "fb_exchange_token" in p
    ]
    long_lived = [t for t, kind in providers.tokens.items() if kind == "fb-user-long"][-1]
    accounts = await stored(app_state, admin, "FACEBOOK")
    assert [(row.external_id, row.name) for row, _ in accounts] == [
        ("111", "Dev Page"),
        ("222", "Shop"),
        ("333", "Events"),
    ]
    for row, creds in accounts:
        # Each Page publishes with its own token, made from the long-lived user token:
        # it does not expire and there is nothing to refresh it with.
        assert creds.access_token == f"page-{row.external_id}-of-{long_lived}"
        assert creds.external_id == row.external_id
        assert creds.refresh_token is None and row.token_expires_at is None
    assert exchange["client_id"] == "fb-app"
    # The code exchange authenticated the app and proved the PKCE verifier.
    [code_exchange] = [
        p
        for p in providers.seen("/graph/v23.0/oauth/access_token")
        if p.get("grant_type") == "authorization_code"
    ]
    assert code_exchange["client_secret"] == "fb-secret-value" and code_exchange["code_verifier"]


async def test_instagram_stores_the_business_account_linked_to_each_page(
    web: httpx.AsyncClient, admin: Team, app_state: AppState, providers: Providers
) -> None:
    providers.page_size = 25
    providers.pages = [
        Page("111", "Dev Page", {"id": "17841400001", "username": "devshop", "name": "Dev Shop"}),
        Page("222", "No Instagram here"),
    ]
    outcome = await connect(web, admin, app_state, "INSTAGRAM")
    assert outcome == {"oauth": "connected", "platform": "instagram", "accounts": "1"}
    [(row, creds)] = await stored(app_state, admin, "INSTAGRAM")
    assert (row.external_id, row.name) == ("17841400001", "Dev Shop")
    assert creds.extra == {"page_id": "111"}
    long_lived = [t for t, kind in providers.tokens.items() if kind == "fb-user-long"][-1]
    assert creds.access_token == f"page-111-of-{long_lived}"  # the linked Page's token
    [accounts_call, *_] = providers.seen("/graph/v23.0/me/accounts")[-1:]
    assert "instagram_business_account" in accounts_call["fields"]

    # A login whose Pages have no Instagram business account connects nothing.
    providers.pages = [Page("222", "No Instagram here")]
    none = await connect(web, admin, app_state, "INSTAGRAM")
    assert none == {"oauth": "error", "platform": "instagram", "reason": "no_accounts"}
    assert len(await stored(app_state, admin, "INSTAGRAM")) == 1


async def test_linkedin_stores_the_member_and_a_reconnect_updates_it(
    web: httpx.AsyncClient, admin: Team, app_state: AppState, providers: Providers
) -> None:
    outcome = await connect(web, admin, app_state, "LINKEDIN")
    assert outcome == {"oauth": "connected", "platform": "linkedin", "accounts": "1"}
    [(row, creds)] = await stored(app_state, admin, "LINKEDIN")
    # The author URN of the Posts API, from OpenID userinfo's `sub`.
    assert (row.external_id, row.name) == ("urn:li:person:782bbtaQ", "Dana Dev")
    assert providers.tokens.get(creds.access_token) == "li"
    assert providers.tokens.get(str(creds.refresh_token)) == "li-refresh"
    assert about(row.token_expires_at, timedelta(days=60))
    [token_call] = providers.seen("/li/oauth/v2/accessToken")
    assert token_call["client_id"] == "li-client"
    assert token_call["client_secret"] == "li-secret-value"  # client_secret_post
    assert token_call["redirect_uri"] == f"{app_state.settings.api_url}/oauth/linkedin/callback"

    again = await connect(web, admin, app_state, "LINKEDIN")
    assert again["oauth"] == "connected"
    [(same, fresh)] = await stored(app_state, admin, "LINKEDIN")
    assert same.id == row.id and fresh.access_token != creds.access_token


async def test_threads_stores_the_user_with_the_long_lived_token(
    web: httpx.AsyncClient, admin: Team, app_state: AppState, providers: Providers
) -> None:
    outcome = await connect(web, admin, app_state, "THREADS")
    assert outcome == {"oauth": "connected", "platform": "threads", "accounts": "1"}
    [(row, creds)] = await stored(app_state, admin, "THREADS")
    assert (row.external_id, row.name) == ("17841401", "Dana Dev")
    # The short-lived token (1 hour) was exchanged for the 60-day one that is stored.
    assert providers.tokens.get(creds.access_token) == "th-long"
    assert about(row.token_expires_at, timedelta(days=60))
    [me] = providers.seen("/threads/v1.0/me")
    assert set(me["fields"].split(",")) >= {"id", "username", "name"}
    [token_call] = providers.seen("/threads/oauth/access_token")
    assert token_call["client_secret"] == "th-secret-value"
    assert token_call["grant_type"] == "authorization_code"
