"""API keys as partners use them: created once, stored hashed, scoped to one workspace and
one role, over HTTP and websockets; revocation and expiry take effect at once.

Longer than 400 lines because key creation, use, scopes and revocation are one lifecycle.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from httpx_ws import WebSocketDisconnect
from sqlalchemy import func, select, update
from starlette.applications import Starlette

from app.models import ApiKey, AuditEntry, Membership, Workspace
from app.security.tokens import token_hash
from tests.helpers import Account, GraphQLWebSocket, bearer, create_workspace, gql, register
from tests.teams import (
    CREATE_KEY,
    REVOKE_KEY,
    WORKSPACE,
    create_key,
    error_code,
    gid,
    invite,
    join,
    state_of,
    uid,
    websocket,
)

KEYS = """
query($ws: ID!, $first: Int!, $after: String) {
  apiKeys(workspaceId: $ws, first: $first, after: $after) {
    edges { cursor node { id name role prefix createdAt expiresAt revokedAt lastUsedAt } }
    pageInfo { hasNextPage endCursor }
  }
}
"""
PING = "mutation($ws: ID!) { ping(workspaceId: $ws) { job { id status } errors { code } } }"
WORKSPACES = "{ workspaces { edges { node { id name viewerRole } } } }"


async def _owner_and_key(
    client: httpx.AsyncClient, role: str, name: str = "A"
) -> tuple[Account, str, dict[str, Any]]:
    owner = await register(client)
    ws = await create_workspace(client, owner, name)
    created = await create_key(client, owner, ws, role)
    assert created["errors"] == [], created
    return owner, ws, created


# Creation and storage ------------------------------------------------------------------------


async def test_create_api_key_returns_the_secret_once_and_stores_only_a_hash(
    app: Starlette, client: httpx.AsyncClient
) -> None:
    owner = await register(client)
    ws = await create_workspace(client, owner)
    expires = (datetime.now(UTC) + timedelta(days=30)).replace(microsecond=0)
    created = await create_key(
        client, owner, ws, "MEMBER", name="  Zapier  ", expires_at=expires.isoformat()
    )
    assert created["errors"] == []
    key, secret = created["apiKey"], created["secret"]
    assert key["name"] == "Zapier" and key["role"] == "MEMBER"
    assert key["revokedAt"] is None and key["lastUsedAt"] is None
    assert datetime.fromisoformat(key["expiresAt"]) == expires
    prefix = key["prefix"]
    assert secret.startswith(f"sk_{prefix}_") and len(secret) > len(prefix) + 40
    async with state_of(app).session_factory() as session:
        row = await session.get(ApiKey, uid(key["id"]))
        assert row is not None
        assert row.secret_hash != secret and secret not in row.secret_hash
        assert row.secret_hash == token_hash(secret)
        secret_part = secret.split("_", 2)[2]
        assert secret_part not in (row.prefix, row.name, row.secret_hash)
        assert row.workspace_id == uid(ws) and row.created_by_id == uid(owner.user_id)
    # The secret is never shown again: not in the list, not on revoke, not as a field.
    listed = await gql(client, KEYS, {"ws": ws, "first": 10}, headers=owner.headers)
    assert secret_part not in str(listed)
    no_field = await gql(
        client,
        "query($ws: ID!) { apiKeys(workspaceId: $ws) { edges { node { secret } } } }",
        {"ws": ws},
        headers=owner.headers,
    )
    assert error_code(no_field) == "GRAPHQL_VALIDATION_FAILED"
    revoked = await gql(client, REVOKE_KEY, {"id": key["id"]}, headers=owner.headers)
    assert revoked["data"]["revokeApiKey"]["secret"] is None


async def test_create_api_key_validation(app: Starlette, client: httpx.AsyncClient) -> None:
    owner = await register(client)
    ws = await create_workspace(client, owner)
    past = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    cases = [
        ({"role": "OWNER"}, [("role", "NOT_ALLOWED")]),
        ({"role": "VIEWER", "name": "   "}, [("name", "INVALID")]),
        ({"role": "VIEWER", "name": "n" * 201}, [("name", "INVALID")]),
        ({"role": "VIEWER", "expires_at": past}, [("expiresAt", "IN_THE_PAST")]),
    ]
    for args, expected in cases:
        payload = await create_key(client, owner, ws, **args)
        assert payload["apiKey"] is None and payload["secret"] is None
        assert [(e["field"], e["code"]) for e in payload["errors"]] == expected, args
    async with state_of(app).session_factory() as session:
        assert await session.scalar(select(func.count()).select_from(ApiKey)) == 0


async def test_only_admins_create_keys_and_never_above_their_role(
    client: httpx.AsyncClient,
) -> None:
    owner = await register(client)
    ws = await create_workspace(client, owner)
    admin = await join(client, owner, ws, "ADMIN")
    member = await join(client, owner, ws, "MEMBER")
    assert (await create_key(client, admin, ws, "ADMIN"))["errors"] == []
    denied = await gql(
        client,
        CREATE_KEY,
        {"ws": ws, "name": "mine", "r": "VIEWER", "e": None},
        headers=member.headers,
    )
    assert error_code(denied) == "FORBIDDEN"


# Scope: its workspace, its role -----------------------------------------------------------------


async def test_a_key_acts_in_its_workspace_with_its_role(
    app: Starlette, client: httpx.AsyncClient
) -> None:
    owner, ws, created = await _owner_and_key(client, "MEMBER")
    key = bearer(created["secret"])
    read = await gql(client, WORKSPACE, {"id": ws}, headers=key)
    assert read["data"]["workspace"] == {
        "id": ws,
        "name": "A",
        "viewerRole": "MEMBER",
        "memberCount": 1,
    }
    listed = await gql(client, WORKSPACES, headers=key)
    assert [e["node"]["id"] for e in listed["data"]["workspaces"]["edges"]] == [ws]
    pinged = await gql(client, PING, {"ws": ws}, headers=key)
    assert pinged["data"]["ping"]["errors"] == [] and pinged["data"]["ping"]["job"]["id"]
    # Member role: no key management, no audit log, no invitations.
    for query, variables in (
        (KEYS, {"ws": ws, "first": 5}),
        ("query($ws: ID!) { auditLog(workspaceId: $ws) { edges { cursor } } }", {"ws": ws}),
        (
            'mutation($ws: ID!) { inviteMember(workspaceId: $ws, email: "x@example.com",'
            " role: VIEWER) { invitationToken } }",
            {"ws": ws},
        ),
    ):
        assert error_code(await gql(client, query, variables, headers=key)) == "FORBIDDEN"
    # The ping is audited as the key.
    async with state_of(app).session_factory() as session:
        entry = await session.scalar(select(AuditEntry).where(AuditEntry.action == "ping"))
        assert entry is not None
        assert entry.actor_api_key_id == uid(created["apiKey"]["id"])
        assert entry.actor_user_id is None
        assert entry.actor_label == f"api-key:{created['apiKey']['prefix']}"
    # Use is recorded (to the minute), visible to admins.
    keys = await gql(client, KEYS, {"ws": ws, "first": 5}, headers=owner.headers)
    last_used = keys["data"]["apiKeys"]["edges"][0]["node"]["lastUsedAt"]
    assert last_used is not None
    assert datetime.now(UTC) - datetime.fromisoformat(last_used) < timedelta(minutes=1)


async def test_a_viewer_key_reads_but_cannot_run_jobs(client: httpx.AsyncClient) -> None:
    _owner, ws, created = await _owner_and_key(client, "VIEWER")
    key = bearer(created["secret"])
    read = await gql(client, WORKSPACE, {"id": ws}, headers=key)
    assert read["data"]["workspace"]["viewerRole"] == "VIEWER"
    members = await gql(
        client,
        "query($id: ID!) { workspace(id: $id) { members { edges { node { role } } } } }",
        {"id": ws},
        headers=key,
    )
    assert members["data"]["workspace"]["members"]["edges"] == [{"node": {"role": "OWNER"}}]
    denied = await gql(client, PING, {"ws": ws}, headers=key)
    assert error_code(denied) == "FORBIDDEN" and denied["data"] is None


async def test_a_key_of_workspace_a_can_do_nothing_in_workspace_b(
    app: Starlette, client: httpx.AsyncClient
) -> None:
    # The most powerful key there is (ADMIN), created by the owner of both workspaces.
    owner, ws_a, created = await _owner_and_key(client, "ADMIN")
    ws_b = await create_workspace(client, owner, "B")
    colleague = await join(client, owner, ws_b, "MEMBER")
    key_b = await create_key(client, owner, ws_b, "VIEWER")
    key = bearer(created["secret"])
    operations: list[tuple[str, dict[str, Any]]] = [
        (WORKSPACE, {"id": ws_b}),
        (
            "query($id: ID!) { workspace(id: $id) { members { edges { cursor } } } }",
            {"id": ws_b},
        ),
        (PING, {"ws": ws_b}),
        (KEYS, {"ws": ws_b, "first": 5}),
        ("query($ws: ID!) { auditLog(workspaceId: $ws) { edges { cursor } } }", {"ws": ws_b}),
        ("query($ws: ID!) { contents(workspaceId: $ws) { edges { cursor } } }", {"ws": ws_b}),
        (
            'mutation($ws: ID!) { inviteMember(workspaceId: $ws, email: "spy@example.com",'
            " role: VIEWER) { invitationToken } }",
            {"ws": ws_b},
        ),
        (
            'mutation($id: ID!) { updateWorkspace(id: $id, input: {name: "Owned"})'
            " { workspace { name } } }",
            {"id": ws_b},
        ),
        (
            "mutation($ws: ID!, $u: ID!) { updateMemberRole(workspaceId: $ws, userId: $u,"
            " role: ADMIN) { member { role } } }",
            {"ws": ws_b, "u": colleague.user_id},
        ),
        (
            "mutation($ws: ID!, $u: ID!) { removeMember(workspaceId: $ws, userId: $u)"
            " { success } }",
            {"ws": ws_b, "u": colleague.user_id},
        ),
        (
            "mutation($ws: ID!, $u: ID!) { transferOwnership(workspaceId: $ws, userId: $u)"
            " { workspace { id } } }",
            {"ws": ws_b, "u": colleague.user_id},
        ),
        (
            'mutation($ws: ID!) { createApiKey(workspaceId: $ws, name: "x", role: VIEWER)'
            " { secret } }",
            {"ws": ws_b},
        ),
        (
            "mutation($id: ID!) { revokeApiKey(id: $id) { apiKey { revokedAt } } }",
            {"id": key_b["apiKey"]["id"]},
        ),
        (
            'mutation($ws: ID!) { createContent(input: {workspaceId: $ws, title: "t",'
            ' body: "b"}) { content { id } } }',
            {"ws": ws_b},
        ),
    ]
    for query, variables in operations:
        body = await gql(client, query, variables, headers=key)
        assert error_code(body) == "FORBIDDEN", (query, body)
        assert body["data"] is None, query
    node = await gql(client, "query($id: ID!) { node(id: $id) { id } }", {"id": ws_b}, headers=key)
    assert node["data"] == {"node": None}
    listed = await gql(client, WORKSPACES, headers=key)
    assert [e["node"]["id"] for e in listed["data"]["workspaces"]["edges"]] == [ws_a]
    # Workspace B is untouched, and nothing was recorded there by the key.
    async with state_of(app).session_factory() as session:
        b = await session.get(Workspace, uid(ws_b))
        assert b is not None and b.name == "B"
        roles = dict(
            (
                await session.execute(
                    select(Membership.user_id, Membership.role).where(
                        Membership.workspace_id == uid(ws_b)
                    )
                )
            ).all()
        )
        assert roles == {uid(owner.user_id): "OWNER", uid(colleague.user_id): "MEMBER"}
        by_key = await session.scalar(
            select(func.count())
            .select_from(AuditEntry)
            .where(AuditEntry.actor_api_key_id == uid(created["apiKey"]["id"]))
        )
        assert by_key == 0
        other_key = await session.get(ApiKey, uid(key_b["apiKey"]["id"]))
        assert other_key is not None and other_key.revoked_at is None
        assert await session.scalar(select(func.count()).select_from(ApiKey)) == 2


async def test_an_admin_key_manages_its_own_workspace_within_limits(
    app: Starlette, client: httpx.AsyncClient
) -> None:
    owner, ws, created = await _owner_and_key(client, "ADMIN")
    key = bearer(created["secret"])
    # It may create keys up to its own role, never owner.
    assert (await create_key(client, key, ws, "ADMIN"))["errors"] == []
    too_high = await create_key(client, key, ws, "OWNER")
    assert [(e["field"], e["code"]) for e in too_high["errors"]] == [("role", "NOT_ALLOWED")]
    # It may invite (up to admin), but ownership stays with people.
    invited = await invite(client, key, ws, f"{uuid.uuid4().hex[:8]}@example.com", "ADMIN")
    assert invited["errors"] == [] and invited["invitationToken"].startswith("inv_")
    transfer = await gql(
        client,
        "mutation($ws: ID!, $u: ID!) { transferOwnership(workspaceId: $ws, userId: $u)"
        " { errors { code } } }",
        {"ws": ws, "u": owner.user_id},
        headers=key,
    )
    assert error_code(transfer) == "FORBIDDEN"
    owner_role = await gql(
        client,
        "mutation($ws: ID!, $u: ID!) { updateMemberRole(workspaceId: $ws, userId: $u,"
        " role: VIEWER) { errors { code } } }",
        {"ws": ws, "u": owner.user_id},
        headers=key,
    )
    assert error_code(owner_role) == "FORBIDDEN"
    policy = await gql(
        client,
        "mutation($id: ID!) { updateWorkspace(id: $id, input: {requireTwoFactor: true})"
        " { errors { code } } }",
        {"id": ws},
        headers=key,
    )
    assert error_code(policy) == "FORBIDDEN"
    async with state_of(app).session_factory() as session:
        role = await session.scalar(
            select(Membership.role).where(
                Membership.workspace_id == uid(ws), Membership.user_id == uid(owner.user_id)
            )
        )
    assert role == "OWNER"


@pytest.mark.parametrize(
    "operation",
    [
        "{ me { id } }",
        'mutation { createWorkspace(input: {name: "Keyed"}) { workspace { id } } }',
        'mutation { acceptInvitation(token: "inv_x") { workspace { id } } }',
        "mutation { exportMyData { data } }",
        'mutation { deleteAccount(password: "whatever") { success } }',
        'mutation { updateProfile(input: {name: "Key"}) { user { id } } }',
        "mutation { enableTwoFactor { secret } }",
    ],
)
async def test_a_key_cannot_act_as_a_user(
    app: Starlette, client: httpx.AsyncClient, operation: str
) -> None:
    _owner, _ws, created = await _owner_and_key(client, "ADMIN")
    body = await gql(client, operation, headers=bearer(created["secret"]))
    assert error_code(body) == "FORBIDDEN", body
    async with state_of(app).session_factory() as session:
        assert await session.scalar(select(func.count()).select_from(Workspace)) == 1


# Revocation, expiry, malformed keys -------------------------------------------------------------


async def _status_and_code(client: httpx.AsyncClient, secret: str) -> tuple[int, str | None]:
    response = await client.post("/graphql", json={"query": WORKSPACES}, headers=bearer(secret))
    return response.status_code, error_code(response.json())


async def test_revoked_key_fails_at_once(app: Starlette, client: httpx.AsyncClient) -> None:
    owner, ws, created = await _owner_and_key(client, "MEMBER")
    secret, key_id = created["secret"], created["apiKey"]["id"]
    assert await _status_and_code(client, secret) == (200, None)
    member = await join(client, owner, ws, "MEMBER")
    denied = await gql(client, REVOKE_KEY, {"id": key_id}, headers=member.headers)
    assert error_code(denied) == "FORBIDDEN"
    assert await _status_and_code(client, secret) == (200, None), "still valid"
    revoked = await gql(client, REVOKE_KEY, {"id": key_id}, headers=owner.headers)
    revoked_at = revoked["data"]["revokeApiKey"]["apiKey"]["revokedAt"]
    assert revoked_at is not None and revoked["data"]["revokeApiKey"]["errors"] == []
    response = await client.post("/graphql", json={"query": WORKSPACES}, headers=bearer(secret))
    assert response.status_code == 401
    assert response.json()["data"] is None
    assert error_code(response.json()) == "UNAUTHENTICATED"
    assert response.headers["www-authenticate"].startswith("Bearer")
    # Revoking again changes nothing; an unknown id is NOT_FOUND.
    again = await gql(client, REVOKE_KEY, {"id": key_id}, headers=owner.headers)
    assert again["data"]["revokeApiKey"]["apiKey"]["revokedAt"] == revoked_at
    missing = await gql(
        client, REVOKE_KEY, {"id": gid("ApiKey", uuid.uuid4())}, headers=owner.headers
    )
    assert error_code(missing) == "NOT_FOUND"
    # A revoked key cannot open a websocket either.
    async with websocket(app) as ws_conn:
        await ws_conn.send_json(
            {"type": "connection_init", "payload": {"authorization": f"Bearer {secret}"}}
        )
        with pytest.raises(WebSocketDisconnect) as closed:
            await ws_conn.receive_json(timeout=5)
    assert closed.value.code == 4403


async def test_expired_key_fails(app: Starlette, client: httpx.AsyncClient) -> None:
    _owner, _ws, created = await _owner_and_key(client, "VIEWER")
    secret = created["secret"]
    assert await _status_and_code(client, secret) == (200, None)
    async with state_of(app).session_factory() as session, session.begin():
        await session.execute(
            update(ApiKey)
            .where(ApiKey.id == uid(created["apiKey"]["id"]))
            .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
    assert await _status_and_code(client, secret) == (401, "UNAUTHENTICATED")


async def test_malformed_and_forged_keys_fail_with_401(client: httpx.AsyncClient) -> None:
    _owner, _ws, created = await _owner_and_key(client, "VIEWER")
    prefix = created["apiKey"]["prefix"]
    real = created["secret"]
    forged = [
        "sk_",
        "sk_abc",
        "sk_abc_",
        "sk__secret",
        f"sk_{prefix}_wrong-secret",  # a real prefix with the wrong secret
        real[:-1] + ("A" if real[-1] != "A" else "B"),  # one character off
        f"sk_nosuchprefix_{real.split('_', 2)[2]}",  # the real secret under another prefix
    ]
    for value in forged:
        assert await _status_and_code(client, value) == (401, "UNAUTHENTICATED"), value
    for header in (f"Basic {real}", "Bearer", real):
        response = await client.post(
            "/graphql", json={"query": WORKSPACES}, headers={"Authorization": header}
        )
        assert response.status_code == 401, header
    assert await _status_and_code(client, real) == (200, None)


# apiKeys ---------------------------------------------------------------------------------------


async def test_api_keys_list_is_for_admins_and_shows_prefix_and_last_use(
    client: httpx.AsyncClient,
) -> None:
    owner = await register(client)
    ws = await create_workspace(client, owner)
    admin = await join(client, owner, ws, "ADMIN")
    member = await join(client, owner, ws, "MEMBER")
    viewer = await join(client, owner, ws, "VIEWER")
    made = [await create_key(client, owner, ws, "VIEWER", name=f"key {i}") for i in range(3)]
    used, unused = made[0], made[1]
    await gql(client, WORKSPACES, headers=bearer(used["secret"]))
    await gql(client, REVOKE_KEY, {"id": made[2]["apiKey"]["id"]}, headers=admin.headers)

    nodes: list[dict[str, Any]] = []
    after = None
    while True:
        body = await gql(
            client, KEYS, {"ws": ws, "first": 2, "after": after}, headers=admin.headers
        )
        connection = body["data"]["apiKeys"]
        nodes += [e["node"] for e in connection["edges"]]
        if not connection["pageInfo"]["hasNextPage"]:
            break
        after = connection["pageInfo"]["endCursor"]
    assert [n["name"] for n in nodes] == ["key 2", "key 1", "key 0"], "newest first"
    by_name = {n["name"]: n for n in nodes}
    assert by_name["key 0"]["prefix"] == used["apiKey"]["prefix"]
    assert by_name["key 0"]["lastUsedAt"] is not None
    assert by_name["key 1"]["lastUsedAt"] is None and by_name["key 1"]["revokedAt"] is None
    assert by_name["key 2"]["revokedAt"] is not None
    assert all(m["secret"].split("_", 2)[2] not in str(nodes) for m in made)
    assert unused["apiKey"]["id"] == by_name["key 1"]["id"]
    for account in (member, viewer):
        denied = await gql(client, KEYS, {"ws": ws, "first": 5}, headers=account.headers)
        assert error_code(denied) == "FORBIDDEN"
    too_big = await gql(client, KEYS, {"ws": ws, "first": 101}, headers=owner.headers)
    assert error_code(too_big) == "BAD_USER_INPUT"


# Websockets ------------------------------------------------------------------------------------


async def _ws_result(
    gws: GraphQLWebSocket, query: str, variables: dict[str, Any]
) -> dict[str, Any]:
    op = await gws.subscribe(query, variables)
    payloads = await gws.collect(op, timeout=5)
    assert len(payloads) == 1, payloads
    return payloads[0]


async def test_a_key_authenticates_a_websocket_in_its_workspace_only(
    app: Starlette, client: httpx.AsyncClient
) -> None:
    owner, ws_a, created = await _owner_and_key(client, "MEMBER")
    ws_b = await create_workspace(client, owner, "B")
    job_b = (await gql(client, PING, {"ws": ws_b}, headers=owner.headers))["data"]["ping"]["job"]
    async with websocket(app) as conn:
        gws = GraphQLWebSocket(conn)
        await gws.init({"authorization": f"Bearer {created['secret']}"})
        read = await _ws_result(gws, WORKSPACE, {"id": ws_a})
        assert read["data"]["workspace"]["viewerRole"] == "MEMBER"
        pinged = await _ws_result(gws, PING, {"ws": ws_a})
        assert pinged["data"]["ping"]["errors"] == []
        job_a = pinged["data"]["ping"]["job"]
        follow = "subscription($id: ID!) { jobEvents(id: $id) { status job { id } } }"
        first_event = await gws.subscribe(follow, {"id": job_a["id"]})
        message = await gws.receive(timeout=5)
        assert message["id"] == first_event and message["type"] == "next"
        assert message["payload"]["data"]["jobEvents"]["job"]["id"] == job_a["id"]
        for query, variables, code in (
            (WORKSPACE, {"id": ws_b}, "FORBIDDEN"),
            (PING, {"ws": ws_b}, "FORBIDDEN"),
            (follow, {"id": job_b["id"]}, "NOT_FOUND"),  # another tenant's job looks absent
            ("{ me { id } }", {}, "FORBIDDEN"),
        ):
            op = await gws.subscribe(query, variables)
            while True:
                message = await gws.receive(timeout=5)
                if message.get("id") == op:
                    break
            errors = (
                message["payload"]
                if message["type"] == "error"
                else message["payload"].get("errors")
            )
            assert errors and errors[0]["extensions"]["code"] == code, (query, message)


async def test_a_key_in_the_upgrade_header_also_authenticates_a_websocket(
    app: Starlette, client: httpx.AsyncClient
) -> None:
    _owner, ws, created = await _owner_and_key(client, "VIEWER")
    from httpx_ws import aconnect_ws
    from httpx_ws.transport import ASGIWebSocketTransport

    async with (
        httpx.AsyncClient(
            transport=ASGIWebSocketTransport(app), base_url="http://testserver"
        ) as ws_client,
        aconnect_ws(
            "http://testserver/graphql",
            ws_client,
            subprotocols=["graphql-transport-ws"],
            headers=bearer(created["secret"]),
        ) as conn,
    ):
        gws = GraphQLWebSocket(conn)
        await gws.init()
        read = await _ws_result(gws, WORKSPACE, {"id": ws})
        assert read["data"]["workspace"]["viewerRole"] == "VIEWER"
        denied = await _ws_result(gws, PING, {"ws": ws})
        assert denied["errors"][0]["extensions"]["code"] == "FORBIDDEN"


async def test_a_key_revoked_while_its_websocket_is_open_stops_working(
    app: Starlette, client: httpx.AsyncClient
) -> None:
    owner, ws, created = await _owner_and_key(client, "MEMBER")
    async with websocket(app) as conn:
        gws = GraphQLWebSocket(conn)
        await gws.init({"authorization": f"Bearer {created['secret']}"})
        before = await _ws_result(gws, WORKSPACE, {"id": ws})
        assert before["data"]["workspace"]["name"] == "A"
        revoked = await gql(
            client, REVOKE_KEY, {"id": created["apiKey"]["id"]}, headers=owner.headers
        )
        assert revoked["data"]["revokeApiKey"]["errors"] == []
        after = await _ws_result(gws, WORKSPACE, {"id": ws})
        assert after.get("data") is None
        assert after["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
