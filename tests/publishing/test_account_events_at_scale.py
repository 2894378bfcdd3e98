"""socialAccountStatusChanged with many followers of one workspace: one event costs two
statements for all of them (their roles, the account's row: batched for the process), each
follower's role is still its own (a removed member is cut off, the others go on, an API
key is checked as a key), and the selection runs once per event (schema.shared_events)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
from sqlalchemy import delete, event, update
from starlette.applications import Starlette

from app.auth import Principal, WorkspaceAccess
from app.errors import Forbidden
from app.models import ApiKey, Membership, SocialAccount
from app.permissions import Role
from app.services.publishing import account_events
from app.services.publishing.refresher import channel
from app.state import AppState
from tests.api.test_subscription_sharing import sharing, subscribers
from tests.publishing.conftest import Team, connect_webhook
from tests.publishing.receiver import Receiver
from tests.teams import create_key, join, uid

FOLLOW = (
    "subscription($ws: ID!) { socialAccountStatusChanged(workspaceId: $ws) {"
    " status reason catchUp account { id name status statusReason postingSlots { weekday time } } } }"
)


async def _account(client: httpx.AsyncClient, team: Team, receiver: Receiver) -> str:
    account: str = (await connect_webhook(client, team, receiver.url))["account"]["id"]
    return account


async def _set_status(state: AppState, account: str, status: str) -> None:
    async with state.session_factory() as session, session.begin():
        await session.execute(
            update(SocialAccount)
            .where(SocialAccount.id == uid(account))
            .values(status=status, status_reason="token refused" if status != "CONNECTED" else None)
        )


def _user(user_id: str, workspace_id: str, role: Role) -> Principal:
    return Principal(
        kind="user",
        user_id=uid(user_id),
        access={uid(workspace_id): WorkspaceAccess(role, False)},
    )


async def test_one_event_to_many_followers_costs_two_statements(
    client: httpx.AsyncClient, state: AppState, team: Team, receiver: Receiver
) -> None:
    account = await _account(client, team, receiver)
    member = await join(client, team.owner, team.workspace_id, "MEMBER")
    key = await create_key(client, team.owner, team.workspace_id, "MEMBER")
    workspace_id = uid(team.workspace_id)
    principals = [_user(team.owner.user_id, team.workspace_id, Role.OWNER)] * 10
    principals += [_user(member.user_id, team.workspace_id, Role.MEMBER)] * 5
    principals.append(
        Principal(
            kind="api_key",
            api_key_id=uid(key["apiKey"]["id"]),
            access={workspace_id: WorkspaceAccess(Role.MEMBER, False)},
        )
    )
    streams = [
        account_events.follow(state.session_factory, state.hub, p, workspace_id) for p in principals
    ]
    waiting = [asyncio.ensure_future(anext(stream)) for stream in streams]
    await asyncio.sleep(0.2)  # subscribed; nothing needs reconnecting: no catch-up
    assert not any(w.done() for w in waiting)
    await _set_status(state, account, "NEEDS_RECONNECT")
    engine = state.engine.sync_engine
    selects: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            selects.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    try:
        await account_events.announce(state.hub, workspace_id, uid(account))
        changes = await asyncio.gather(*waiting)
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert [(c.account.id, c.account.status, c.catch_up) for c in changes] == [
        (uid(account), "NEEDS_RECONNECT", False)
    ] * len(principals)
    # Memberships, API keys, the account: one each for all 16 (32 with a read each).
    assert len(selects) == 3, selects

    # The member is removed and the key revoked: at the next event both are cut off, in
    # the same batch as the owner who goes on.
    async with state.session_factory() as session, session.begin():
        await session.execute(
            delete(Membership).where(
                Membership.user_id == uid(member.user_id), Membership.workspace_id == workspace_id
            )
        )
        await session.execute(
            update(ApiKey)
            .where(ApiKey.id == uid(key["apiKey"]["id"]))
            .values(revoked_at=ApiKey.created_at)
        )
    await _set_status(state, account, "CONNECTED")
    waiting = [asyncio.ensure_future(anext(stream)) for stream in streams]
    await account_events.announce(state.hub, workspace_id, uid(account))
    outcomes = await asyncio.gather(*waiting, return_exceptions=True)
    owners, others = outcomes[:10], outcomes[10:]
    assert all(not isinstance(o, BaseException) and o.account.status == "CONNECTED" for o in owners)
    assert all(isinstance(o, Forbidden) for o in others), others
    for stream in streams:
        await stream.aclose()


async def test_five_subscribers_get_one_execution_per_event(
    client: httpx.AsyncClient,
    pub_app: Starlette,
    state: AppState,
    team: Team,
    receiver: Receiver,
) -> None:
    account = await _account(client, team, receiver)
    await _set_status(state, account, "NEEDS_RECONNECT")
    async with subscribers(pub_app, team.owner, 5, FOLLOW, {"ws": team.workspace_id}) as subs:
        firsts = [await s.next_text() for s in subs]
        assert len(set(firsts)) == 1, "the same catch-up, byte for byte"
        await _set_status(state, account, "CONNECTED")
        with sharing(True) as counts:
            await state.hub.publish(
                channel(uid(team.workspace_id)), {"account_id": str(uid(account))}
            )
            texts = [await s.next_text() for s in subs]
    assert len(set(texts)) == 1, "identical messages"
    [text] = set(texts)
    assert text is not None
    change = json.loads(text)["payload"]["data"]["socialAccountStatusChanged"]
    assert (change["status"], change["catchUp"], change["account"]["id"]) == (
        "CONNECTED",
        False,
        account,
    )
    assert counts.executed == 1 and counts.shared == 4
