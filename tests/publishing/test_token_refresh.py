"""The token refresher against the X fake's real OAuth token endpoint: due tokens are
renewed and stored encrypted, a pass is idempotent, two refreshers at once renew an
account once, and a refused refresh makes the account NEEDS_RECONNECT, audited, with an
event on the workspace's accounts channel."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy import select

from app.infra import outbound
from app.models import AuditEntry, SocialAccount
from app.models.vocabulary import Platform
from app.platforms.publishing import Credentials
from app.services.publishing import refresher
from app.services.publishing.accounts import credentials_of, store_account
from app.state import AppState
from tests.platforms.fakes import FakePlatforms
from tests.publishing.conftest import Team
from tests.teams import uid

X_TOKEN_PATH = "/2/oauth2/token"


async def x_account(state: AppState, team: Team, refresh_token: str, minutes: int = 5) -> uuid.UUID:
    async with state.session_factory() as session, session.begin():
        account = await store_account(
            session,
            state.keys.box,
            workspace_id=uid(team.workspace_id),
            platform=Platform.X,
            name="Dev",
            credentials=Credentials(
                access_token="old-access",
                refresh_token=refresh_token,
                expires_at=datetime.now(UTC) + timedelta(minutes=minutes),
                external_id=f"x-{uuid.uuid4()}",
            ),
            created_by_id=None,
        )
    return account.id


async def run_pass(state: AppState, http: httpx.AsyncClient) -> refresher.RefreshReport:
    return await refresher.refresh_due(
        state.session_factory, state.settings, state.keys.box, http, state.hub, window_seconds=3600
    )


def refreshes_with(fake: FakePlatforms, token: str) -> int:
    return sum(
        1 for s in fake.requests("POST", X_TOKEN_PATH) if s.form().get("refresh_token") == token
    )


async def load(state: AppState, account_id: uuid.UUID) -> SocialAccount:
    async with state.session_factory() as session:
        row = await session.get(SocialAccount, account_id)
    assert row is not None
    return row


async def test_due_tokens_are_refreshed_once_and_stored_encrypted(
    admin: Team, app_state: AppState, fake_api: FakePlatforms
) -> None:
    token = f"refresh-{uuid.uuid4()}"
    fake_api.refresh_tokens.add(token)
    account_id = await x_account(app_state, admin, token)
    later = await x_account(app_state, admin, "not-due", minutes=600)  # outside the window
    before = await load(app_state, account_id)
    async with outbound.client(app_state.settings) as http:
        report = await run_pass(app_state, http)
        assert account_id in report.refreshed and later not in report.refreshed
        row = await load(app_state, account_id)
        creds = credentials_of(app_state.keys.box, row)
        assert creds.access_token in fake_api.issued
        assert creds.refresh_token in fake_api.refresh_tokens and creds.refresh_token != token
        assert creds.access_token not in str(row.credentials)
        assert row.token_expires_at and before.token_expires_at
        assert row.token_expires_at > before.token_expires_at + timedelta(minutes=60)
        # Idempotent: renewed tokens are outside the window; nothing is sent again.
        again = await run_pass(app_state, http)
    assert account_id not in again.refreshed + again.failed + again.needs_reconnect
    assert refreshes_with(fake_api, token) == 1


async def test_two_refreshers_at_once_refresh_an_account_once(
    admin: Team, app_state: AppState, fake_api: FakePlatforms
) -> None:
    tokens = [f"refresh-{uuid.uuid4()}" for _ in range(3)]
    fake_api.refresh_tokens.update(tokens)
    ids = [await x_account(app_state, admin, t) for t in tokens]
    async with outbound.client(app_state.settings) as http:
        first, second = await asyncio.gather(run_pass(app_state, http), run_pass(app_state, http))
    done = [i for i in first.refreshed + second.refreshed if i in ids]
    assert sorted(done) == sorted(ids)  # each exactly once, none failed
    assert [refreshes_with(fake_api, t) for t in tokens] == [1, 1, 1]


async def test_refused_refresh_needs_reconnect_with_an_event(
    admin: Team, app_state: AppState, fake_api: FakePlatforms
) -> None:
    account_id = await x_account(app_state, admin, "revoked-by-the-user")
    workspace_id = uid(admin.workspace_id)
    async with (
        app_state.hub.subscribe(refresher.channel(workspace_id)) as events,
        outbound.client(app_state.settings) as http,
    ):
        report = await run_pass(app_state, http)
        assert account_id in report.needs_reconnect
        event = await events.get(wait=10)
    assert event == {
        "account_id": str(account_id),
        "workspace_id": str(workspace_id),
        "status": "NEEDS_RECONNECT",
        "reason": event["reason"],  # type: ignore[index]
    }
    row = await load(app_state, account_id)
    assert row.status == "NEEDS_RECONNECT" and row.status_reason
    assert "revoked-by-the-user" not in row.status_reason
    async with app_state.session_factory() as session:
        entry = await session.scalar(
            select(AuditEntry).where(AuditEntry.target_id == str(account_id))
        )
    assert entry is not None and entry.action == "accountNeedsReconnect"
    assert entry.actor_label == refresher.ACTOR
    # Not picked again: a NEEDS_RECONNECT account waits for a person.
    async with outbound.client(app_state.settings) as http:
        again = await run_pass(app_state, http)
    assert account_id not in again.needs_reconnect
