"""A refused token refresh is reported to the workspace's webhooks (ACCOUNT_NEEDS_RECONNECT),
in the refresher's transaction, against the X fake's real OAuth token endpoint."""

from __future__ import annotations

import uuid

from sqlalchemy import select

from app.infra import outbound
from app.models import Job, WebhookEndpoint, WebhookEventRow
from app.services.outgoing.outbox import DELIVER_WEBHOOK
from app.state import AppState
from tests.platforms.fakes import FakePlatforms
from tests.publishing.conftest import Team
from tests.publishing.test_token_refresh import run_pass, x_account
from tests.teams import uid


async def test_a_refused_refresh_is_an_account_needs_reconnect_event(
    admin: Team, app_state: AppState, fake_api: FakePlatforms
) -> None:
    workspace_id = uid(admin.workspace_id)
    async with app_state.session_factory() as session, session.begin():
        session.add(
            WebhookEndpoint(
                id=uuid.uuid4(),
                workspace_id=workspace_id,
                url="https://93.184.215.14/events",
                events=["ACCOUNT_NEEDS_RECONNECT"],
                secret=app_state.keys.box.encrypt("whsec_x"),
            )
        )
    account_id = await x_account(app_state, admin, "revoked-for-the-webhook")
    async with outbound.client(app_state.settings) as http:
        report = await run_pass(app_state, http)
    assert account_id in report.needs_reconnect
    async with app_state.session_factory() as session:
        [event] = (await session.scalars(select(WebhookEventRow))).all()
        jobs = (await session.scalars(select(Job).where(Job.kind == DELIVER_WEBHOOK))).all()
    assert event.event == "ACCOUNT_NEEDS_RECONNECT"
    assert event.payload["social_account_id"] == str(account_id)
    assert event.payload["platform"] == "X" and event.payload["reason"]
    assert len(jobs) == 1
