"""socialAccountStatusChanged over a real websocket: accounts needing reconnection first
(catch-up), then a token refused while publishing arrives live with the platform's
reason; the refresher's message shape works too; a member removed meanwhile is cut off."""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy import delete, update

from app.models import Membership, SocialAccount
from app.services.publishing import delivery as engine
from app.services.publishing.delivery import Delivery
from app.services.publishing.refresher import channel
from app.state import AppState
from tests.helpers import GraphQLWebSocket
from tests.publishing.conftest import Team, connect_webhook
from tests.publishing.receiver import Receiver, Reply
from tests.publishing.steps import due_target
from tests.teams import join, uid, websocket

FOLLOW = (
    "subscription($ws: ID!) { socialAccountStatusChanged(workspaceId: $ws) {"
    " status reason catchUp account { id name status statusReason } } }"
)


async def _next(sub: GraphQLWebSocket, op: str) -> dict[str, Any]:
    while True:
        message = await sub.receive(timeout=15)
        if message.get("id") != op:
            continue
        assert message["type"] == "next", message
        change: dict[str, Any] = message["payload"]["data"]["socialAccountStatusChanged"]
        return change


async def test_refused_tokens_reach_followers(
    client: httpx.AsyncClient,
    pub_app: Any,
    state: AppState,
    delivery: Delivery,
    team: Team,
    receiver: Receiver,
) -> None:
    waiting = (await connect_webhook(client, team, receiver.url, name="Old"))["account"]["id"]
    async with state.session_factory() as session, session.begin():
        await session.execute(
            update(SocialAccount)
            .where(SocialAccount.id == uid(waiting))
            .values(status="NEEDS_RECONNECT", status_reason="revoked earlier")
        )
    _, [target] = await due_target(client, state, team, receiver.url)
    async with websocket(pub_app) as ws:
        sub = GraphQLWebSocket(ws)
        await sub.init({"authorization": f"Bearer {team.owner.access_token}"})
        op = await sub.subscribe(FOLLOW, {"ws": team.workspace_id})
        first = await _next(sub, op)
        assert first["catchUp"] is True and first["account"]["id"] == waiting
        assert first["status"] == "NEEDS_RECONNECT" and first["reason"] == "revoked earlier"

        receiver.script = [Reply(401, {"error": "signature no longer accepted"})]
        assert await engine.run(delivery, target.id, 0) == "failed"
        live = await _next(sub, op)
        assert live["catchUp"] is False
        assert uid(live["account"]["id"]) == target.social_account_id
        assert live["status"] == "NEEDS_RECONNECT"
        assert "signature no longer accepted" in live["reason"]

        # The refresher's message (app/services/publishing/refresher.py) is understood too.
        async with state.session_factory() as session, session.begin():
            await session.execute(
                update(SocialAccount)
                .where(SocialAccount.id == uid(waiting))
                .values(status="CONNECTED", status_reason=None)
            )
        await state.hub.publish(
            channel(uid(team.workspace_id)),
            {
                "account_id": str(uid(waiting)),
                "workspace_id": str(uid(team.workspace_id)),
                "status": "CONNECTED",
                "reason": None,
            },
        )
        back = await _next(sub, op)
        assert back["account"]["id"] == waiting and back["status"] == "CONNECTED"
        assert back["reason"] is None


async def test_a_removed_member_is_cut_off(
    client: httpx.AsyncClient, pub_app: Any, state: AppState, team: Team, receiver: Receiver
) -> None:
    account = (await connect_webhook(client, team, receiver.url))["account"]["id"]
    async with state.session_factory() as session, session.begin():
        await session.execute(
            update(SocialAccount)
            .where(SocialAccount.id == uid(account))
            .values(status="NEEDS_RECONNECT", status_reason="x")
        )
    member = await join(client, team.owner, team.workspace_id, "MEMBER")
    async with websocket(pub_app) as ws:
        sub = GraphQLWebSocket(ws)
        await sub.init({"authorization": f"Bearer {member.access_token}"})
        op = await sub.subscribe(FOLLOW, {"ws": team.workspace_id})
        assert (await _next(sub, op))["catchUp"] is True  # live from here on
        async with state.session_factory() as session, session.begin():
            await session.execute(
                delete(Membership).where(
                    Membership.user_id == uid(member.user_id),
                    Membership.workspace_id == uid(team.workspace_id),
                )
            )
        await state.hub.publish(channel(uid(team.workspace_id)), {"account_id": str(uid(account))})
        while (message := await sub.receive(timeout=15)).get("id") != op:
            continue
    errors = message["payload"] if message["type"] == "error" else message["payload"]["errors"]
    assert [e["extensions"]["code"] for e in errors] == ["FORBIDDEN"], message
