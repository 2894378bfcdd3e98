"""Connecting accounts end to end against the local platform fakes (real HTTP servers):
startAccountConnection -> the platform's consent (the fake's `approve`) -> the callback
route -> the account stored with its tokens encrypted; the state works once, for its
platform only; Bluesky with an app password."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import httpx
from sqlalchemy import select

from app.models import AuditEntry, SocialAccount
from app.services.publishing.accounts import credentials_of
from app.state import AppState
from tests.platforms.fakes import FakePlatforms
from tests.publishing.conftest import PUBLIC, Team, call
from tests.teams import uid

START = """
mutation($ws: ID!, $p: Platform!, $i: String) {
  startAccountConnection(workspaceId: $ws, platform: $p, instanceUrl: $i) {
    authorizeUrl errors { field code message }
  }
}
"""
BLUESKY = """
mutation($i: ConnectBlueskyAccountInput!) {
  connectBlueskyAccount(input: $i) {
    account { id platform status name } errors { field code message }
  }
}
"""
ACCOUNTS = "query($ws: ID!) { socialAccounts(workspaceId: $ws) { edges { node { platform status name } } } }"


async def start(
    web: httpx.AsyncClient, team: Team, platform: str, instance: str | None = None
) -> dict[str, object]:
    data = await call(
        web, team.owner, START, {"ws": team.workspace_id, "p": platform, "i": instance}
    )
    payload: dict[str, object] = data["startAccountConnection"]
    return payload


def consent(fake: FakePlatforms, authorize_url: str) -> tuple[str, str]:
    """What the platform's consent page does: a code for the URL's challenge; and the
    state to send back."""
    query = {k: v[0] for k, v in parse_qs(urlsplit(authorize_url).query).items()}
    return fake.approve(query["code_challenge"], query["redirect_uri"]), query["state"]


def outcome(response: httpx.Response) -> dict[str, str]:
    assert response.status_code == 303, response.text
    location = response.headers["location"]
    assert location.startswith(f"{PUBLIC}/?")
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


async def test_x_round_trip_stores_encrypted_tokens_and_state_works_once(
    web: httpx.AsyncClient, admin: Team, fake_api: FakePlatforms, app_state: AppState
) -> None:
    payload = await start(web, admin, "X")
    assert payload["errors"] == []
    url = str(payload["authorizeUrl"])
    assert url.startswith(f"{fake_api.url}/i/oauth2/authorize?")
    query = parse_qs(urlsplit(url).query)
    assert query["redirect_uri"] == [f"{app_state.settings.api_url}/oauth/x/callback"]
    code, state = consent(fake_api, url)

    response = await web.get("/oauth/x/callback", params={"code": code, "state": state})
    assert outcome(response) == {"oauth": "connected", "platform": "x", "accounts": "1"}
    assert "access" not in response.headers["location"]

    data = await call(web, admin.owner, ACCOUNTS, {"ws": admin.workspace_id})
    assert [e["node"] for e in data["socialAccounts"]["edges"]] == [
        {"platform": "X", "status": "CONNECTED", "name": "Dev"}
    ]
    async with app_state.session_factory() as session:
        row = await session.scalar(
            select(SocialAccount).where(SocialAccount.workspace_id == uid(admin.workspace_id))
        )
        assert row is not None and row.credentials is not None
        audited = await session.scalar(
            select(AuditEntry.action).where(
                AuditEntry.target_id == str(row.id), AuditEntry.action == "startAccountConnection"
            )
        )
    assert audited == "startAccountConnection"
    creds = credentials_of(app_state.keys.box, row)
    assert creds.access_token in fake_api.issued
    assert creds.refresh_token in fake_api.refresh_tokens
    assert creds.external_id == "2244994945" and row.token_expires_at is not None
    # Encrypted at rest: neither token appears in the stored column.
    assert creds.access_token not in row.credentials
    assert str(creds.refresh_token) not in row.credentials

    # The same state again (a replayed or reloaded callback) is refused.
    again = await web.get("/oauth/x/callback", params={"code": code, "state": state})
    assert outcome(again) == {"oauth": "error", "platform": "x", "reason": "invalid_state"}


async def test_state_is_bound_to_its_platform_and_forged_states_fail(
    web: httpx.AsyncClient, admin: Team, fake_api: FakePlatforms
) -> None:
    payload = await start(web, admin, "X")
    code, state = consent(fake_api, str(payload["authorizeUrl"]))
    wrong = await web.get("/oauth/linkedin/callback", params={"code": code, "state": state})
    assert outcome(wrong)["reason"] == "invalid_state"
    # Used up by the wrong platform's callback: it does not work for X either.
    used = await web.get("/oauth/x/callback", params={"code": code, "state": state})
    assert outcome(used)["reason"] == "invalid_state"
    forged = await web.get("/oauth/x/callback", params={"code": code, "state": "forged"})
    assert outcome(forged)["reason"] == "invalid_state"
    unknown = await web.get("/oauth/myspace/callback", params={"code": code, "state": "x"})
    assert outcome(unknown)["reason"] == "unknown_platform"


async def test_denied_consent_and_refused_code(
    web: httpx.AsyncClient, admin: Team, fake_api: FakePlatforms
) -> None:
    payload = await start(web, admin, "X")
    _, state = consent(fake_api, str(payload["authorizeUrl"]))
    denied = await web.get("/oauth/x/callback", params={"error": "access_denied", "state": state})
    assert outcome(denied)["reason"] == "denied"
    payload = await start(web, admin, "X")
    _, state = consent(fake_api, str(payload["authorizeUrl"]))
    bad = await web.get("/oauth/x/callback", params={"code": "not-a-code", "state": state})
    assert outcome(bad)["reason"] == "refused"
    data = await call(web, admin.owner, ACCOUNTS, {"ws": admin.workspace_id})
    assert [e["node"] for e in data["socialAccounts"]["edges"]] == []


async def test_unconfigured_and_non_oauth_platforms_are_user_errors(
    web: httpx.AsyncClient, admin: Team
) -> None:
    payload = await start(web, admin, "THREADS")
    assert payload["authorizeUrl"] is None
    [error] = payload["errors"]  # type: ignore[misc]
    assert error["code"] == "NOT_ENABLED" and error["field"] == "platform"
    payload = await start(web, admin, "BLUESKY")
    assert [e["code"] for e in payload["errors"]] == ["INVALID"]  # type: ignore[attr-defined]
    payload = await start(web, admin, "MASTODON")
    assert [e["field"] for e in payload["errors"]] == ["instanceUrl"]  # type: ignore[attr-defined]


async def test_mastodon_registers_an_app_once_and_connects(
    web: httpx.AsyncClient, admin: Team, fake_api: FakePlatforms
) -> None:
    first = await start(web, admin, "MASTODON", fake_api.url)
    second = await start(web, admin, "MASTODON", fake_api.url)
    assert first["errors"] == [] and second["errors"] == []
    assert len(fake_api.requests("POST", "/api/v1/apps")) <= 1  # cached per instance
    url = str(second["authorizeUrl"])
    assert url.startswith(f"{fake_api.url}/oauth/authorize?")
    assert parse_qs(urlsplit(url).query)["client_id"] == ["md-client"]
    code, state = consent(fake_api, url)
    response = await web.get("/oauth/mastodon/callback", params={"code": code, "state": state})
    assert outcome(response)["oauth"] == "connected"
    data = await call(web, admin.owner, ACCOUNTS, {"ws": admin.workspace_id})
    assert [e["node"] for e in data["socialAccounts"]["edges"]] == [
        {"platform": "MASTODON", "status": "CONNECTED", "name": "Dev"}
    ]


async def test_bluesky_connects_with_an_app_password(
    web: httpx.AsyncClient, admin: Team, app_state: AppState
) -> None:
    wrong = await call(
        web,
        admin.owner,
        BLUESKY,
        {
            "i": {
                "workspaceId": admin.workspace_id,
                "handle": "dev.bsky.social",
                "appPassword": "guess-guess",
            }
        },
    )
    payload = wrong["connectBlueskyAccount"]
    assert payload["account"] is None
    assert [(e["field"], e["code"]) for e in payload["errors"]] == [
        ("appPassword", "INVALID_CREDENTIALS")
    ]
    assert "guess-guess" not in str(payload)

    data = await call(
        web,
        admin.owner,
        BLUESKY,
        {
            "i": {
                "workspaceId": admin.workspace_id,
                "handle": "@dev.bsky.social",
                "appPassword": "app-pass-word",
            }
        },
    )
    payload = data["connectBlueskyAccount"]
    assert payload["errors"] == []
    assert payload["account"]["platform"] == "BLUESKY"
    assert payload["account"]["name"] == "@dev.bsky.social"
    async with app_state.session_factory() as session:
        row = await session.scalar(
            select(SocialAccount).where(
                SocialAccount.workspace_id == uid(admin.workspace_id),
                SocialAccount.platform == "BLUESKY",
            )
        )
    assert row is not None and row.credentials is not None
    assert "app-pass-word" not in row.credentials
    creds = credentials_of(app_state.keys.box, row)
    assert creds.external_id == "did:plc:fake1234"
    assert creds.extra["app_password"] == "app-pass-word"
    assert creds.access_token and row.token_expires_at is not None
