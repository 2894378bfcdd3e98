"""The audit log (who, what, target, when, IP, request id), GDPR export and deletion, and
per-principal rate limits over HTTP and websockets.

Longer than 400 lines because the audit log and data export/deletion assert on the same
recorded history.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

import httpx
import pytest
from httpx_ws import WebSocketDisconnect
from sqlalchemy import func, select, update
from starlette.applications import Starlette
from strawberry import relay

from app.models import (
    ApiKey,
    AuditEntry,
    ContentComment,
    Invitation,
    Membership,
    PasswordResetToken,
    RefreshToken,
    User,
    Workspace,
)
from app.security import tokens
from tests.conftest import Servers, make_settings, running_app
from tests.helpers import (
    PASSWORD,
    Account,
    GraphQLWebSocket,
    bearer,
    create_workspace,
    gql,
    register,
)
from tests.teams import (
    ACCEPT,
    CREATE_KEY,
    INVITE,
    REMOVE,
    REVOKE_KEY,
    TRANSFER,
    UPDATE_ROLE,
    create_key,
    error_code,
    gid,
    invite,
    join,
    state_of,
    uid,
    websocket,
)

AUDIT = """
query($ws: ID!, $first: Int!, $after: String, $filter: AuditLogFilter) {
  auditLog(workspaceId: $ws, first: $first, after: $after, filter: $filter) {
    edges { cursor node {
      id action actorLabel targetType targetId ip requestId details createdAt
    } }
    pageInfo { hasNextPage endCursor }
  }
}
"""
DELETE = "mutation($p: String!) { deleteAccount(password: $p) { success errors { field code } } }"
EXPORT = "mutation { exportMyData { data errors { code } } }"
LOGIN = """
mutation($i: LoginInput!) {
  login(input: $i) { accessToken refreshToken errors { field code } }
}
"""
REFRESH = """
mutation($t: String!) { refreshToken(refreshToken: $t) { accessToken errors { code } } }
"""
ME = "{ me { id email } }"


@asynccontextmanager
async def _client_from(app: Starlette, ip: str) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, client=(ip, 50123))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client


async def _entries(app: Starlette, *where: Any) -> list[AuditEntry]:
    async with state_of(app).session_factory() as session:
        return list(
            (await session.scalars(select(AuditEntry).where(*where).order_by(AuditEntry.id))).all()
        )


async def _audit_page(
    client: httpx.AsyncClient, account: Account, ws: str, **variables: Any
) -> dict[str, Any]:
    body = await gql(client, AUDIT, {"ws": ws, "first": 50, **variables}, headers=account.headers)
    assert "errors" not in body, body
    connection: dict[str, Any] = body["data"]["auditLog"]
    return connection


# Audit entries --------------------------------------------------------------------------------


async def test_every_team_mutation_writes_one_audit_entry_with_actor_target_ip_and_request_id(
    app: Starlette,
) -> None:
    async with (
        _client_from(app, "203.0.113.7") as owner_client,
        _client_from(app, "198.51.100.23") as other_client,
    ):
        owner = await register(owner_client)
        ws = await create_workspace(owner_client, owner, "Audited")
        invitee = await register(other_client)
        calls: list[tuple[httpx.AsyncClient, Account, str, dict[str, Any], str, str, Any]] = []

        async def run(
            client: httpx.AsyncClient,
            actor: Account,
            query: str,
            variables: dict[str, Any],
            action: str,
            target_type: str,
            target_id: Any,
        ) -> dict[str, Any]:
            request_id = f"audit-{action}-{uuid.uuid4().hex[:8]}"
            response = await client.post(
                "/graphql",
                json={"query": query, "variables": variables},
                headers={**actor.headers, "X-Request-ID": request_id},
            )
            assert response.status_code == 200 and response.headers["x-request-id"] == request_id
            body: dict[str, Any] = response.json()
            assert "errors" not in body, body
            calls.append((client, actor, request_id, variables, action, target_type, target_id))
            return body

        await run(
            owner_client,
            owner,
            'mutation($id: ID!) { updateWorkspace(id: $id, input: {name: "Audited 2"})'
            " { errors { code } } }",
            {"id": ws},
            "updateWorkspace",
            "Workspace",
            uid(ws),
        )
        invited = await run(
            owner_client,
            owner,
            INVITE,
            {"ws": ws, "email": invitee.email, "role": "MEMBER"},
            "inviteMember",
            "Invitation",
            None,  # filled in below
        )
        invitation_id = uid(invited["data"]["inviteMember"]["invitation"]["id"])
        calls[-1] = (*calls[-1][:6], invitation_id)
        await run(
            other_client,
            invitee,
            ACCEPT,
            {"t": invited["data"]["inviteMember"]["invitationToken"]},
            "acceptInvitation",
            "Invitation",
            invitation_id,
        )
        await run(
            owner_client,
            owner,
            UPDATE_ROLE,
            {"ws": ws, "u": invitee.user_id, "r": "ADMIN"},
            "updateMemberRole",
            "User",
            uid(invitee.user_id),
        )
        key = await run(
            owner_client,
            owner,
            CREATE_KEY,
            {"ws": ws, "name": "audit key", "r": "VIEWER", "e": None},
            "createApiKey",
            "ApiKey",
            None,
        )
        key_id = uid(key["data"]["createApiKey"]["apiKey"]["id"])
        calls[-1] = (*calls[-1][:6], key_id)
        await run(
            owner_client,
            owner,
            REVOKE_KEY,
            {"id": gid("ApiKey", key_id)},
            "revokeApiKey",
            "ApiKey",
            key_id,
        )
        await run(
            owner_client,
            owner,
            TRANSFER,
            {"ws": ws, "u": invitee.user_id},
            "transferOwnership",
            "User",
            uid(invitee.user_id),
        )
        await run(
            other_client,
            invitee,
            REMOVE,
            {"ws": ws, "u": owner.user_id},
            "removeMember",
            "User",
            uid(owner.user_id),
        )
        await run(
            other_client,
            invitee,
            "mutation($ws: ID!) { ping(workspaceId: $ws) { job { id } errors { code } } }",
            {"ws": ws},
            "ping",
            "Job",
            None,
        )

    ips = {owner_client: "203.0.113.7", other_client: "198.51.100.23"}
    for client, actor, request_id, _variables, action, target_type, target_id in calls:
        entries = await _entries(app, AuditEntry.request_id == request_id)
        assert len(entries) == 1, (action, entries)
        entry = entries[0]
        assert entry.action == action
        assert entry.workspace_id == uid(ws), action
        assert entry.actor_user_id == uid(actor.user_id), action
        assert entry.actor_label == actor.email, action
        assert entry.actor_api_key_id is None
        assert entry.target_type == target_type, action
        if target_id is not None:
            assert entry.target_id == str(target_id), action
        else:
            assert entry.target_id, action
        assert entry.ip == ips[client], action
    # The create is recorded too (register/login are the identity tests' business).
    created = await _entries(app, AuditEntry.action == "createWorkspace")
    assert [(e.workspace_id, e.actor_user_id, e.ip) for e in created] == [
        (uid(ws), uid(owner.user_id), "203.0.113.7")
    ]


async def test_refused_mutations_write_no_entry_and_request_ids_are_sanitised(
    app: Starlette, client: httpx.AsyncClient
) -> None:
    owner = await register(client)
    ws = await create_workspace(client, owner)
    stranger = await register(client)
    before = len(await _entries(app, AuditEntry.workspace_id == uid(ws)))
    for actor, variables in (
        (owner, {"ws": ws, "email": "x@example.com", "role": "OWNER"}),  # business rule
        (stranger, {"ws": ws, "email": "x@example.com", "role": "VIEWER"}),  # forbidden
    ):
        await client.post(
            "/graphql",
            json={"query": INVITE, "variables": variables},
            headers={**actor.headers, "X-Request-ID": "refused-0001"},
        )
    assert await _entries(app, AuditEntry.request_id == "refused-0001") == []
    assert len(await _entries(app, AuditEntry.workspace_id == uid(ws))) == before
    # A request id that is not a sane token is replaced; the entry has the one echoed back.
    response = await client.post(
        "/graphql",
        json={
            "query": 'mutation($id: ID!) { updateWorkspace(id: $id, input: {name: "N"})'
            " { errors { code } } }",
            "variables": {"id": ws},
        },
        headers={**owner.headers, "X-Request-ID": "bad id\x7f<script>"},
    )
    echoed = response.headers["x-request-id"]
    assert echoed != "bad id\x7f<script>"
    [entry] = await _entries(app, AuditEntry.action == "updateWorkspace")
    assert entry.request_id == echoed


async def test_api_key_actions_are_attributed_to_the_key(
    app: Starlette, client: httpx.AsyncClient
) -> None:
    owner = await register(client)
    ws = await create_workspace(client, owner)
    created = await create_key(client, owner, ws, "ADMIN")
    invited = await invite(
        client,
        {**bearer(created["secret"]), "X-Request-ID": "by-key-000001"},
        ws,
        "k@example.com",
        "VIEWER",
    )
    assert invited["errors"] == []
    [entry] = await _entries(app, AuditEntry.request_id == "by-key-000001")
    assert entry.action == "inviteMember" and entry.actor_user_id is None
    assert entry.actor_api_key_id == uid(created["apiKey"]["id"])
    assert entry.actor_label == f"api-key:{created['apiKey']['prefix']}"
    assert entry.details == {"email": "k@example.com", "role": "VIEWER"}


# auditLog ------------------------------------------------------------------------------------


async def test_audit_log_is_newest_first_paginated_and_filtered(
    app: Starlette, client: httpx.AsyncClient
) -> None:
    owner = await register(client)
    ws = await create_workspace(client, owner)
    admin = await join(client, owner, ws, "ADMIN")  # inviteMember (owner), acceptInvitation (admin)
    rename = (
        "mutation($id: ID!, $n: String!) { updateWorkspace(id: $id, input: {name: $n})"
        " { errors { code } } }"
    )
    for i in range(3):
        await gql(client, rename, {"id": ws, "n": f"By owner {i}"}, headers=owner.headers)
    for i in range(2):
        await gql(client, rename, {"id": ws, "n": f"By admin {i}"}, headers=admin.headers)
    # Another workspace's entries never show here.
    other = await create_workspace(client, owner, "Other")
    await gql(client, rename, {"id": other, "n": "Other 2"}, headers=owner.headers)

    nodes: list[dict[str, Any]] = []
    after = None
    pages = 0
    while True:
        page = await _audit_page(client, admin, ws, first=3, after=after)
        nodes += [e["node"] for e in page["edges"]]
        pages += 1
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert pages == 3
    actions = [n["action"] for n in nodes]
    assert actions == [
        "updateWorkspace",
        "updateWorkspace",
        "updateWorkspace",
        "updateWorkspace",
        "updateWorkspace",
        "acceptInvitation",
        "inviteMember",
        "createWorkspace",
    ]
    ids = [int(n["id"]) for n in nodes]
    assert ids == sorted(ids, reverse=True) and len(set(ids)) == len(ids)
    stored = await _entries(app, AuditEntry.workspace_id == uid(ws))
    assert sorted(ids) == [e.id for e in stored]
    assert [n["details"].get("name") for n in nodes[:5]] == [
        "By admin 1",
        "By admin 0",
        "By owner 2",
        "By owner 1",
        "By owner 0",
    ]
    assert all(n["ip"] == "127.0.0.1" and n["requestId"] for n in nodes)

    async def filtered(**f: Any) -> list[str]:
        page = await _audit_page(client, owner, ws, filter=f)
        return [e["node"]["details"].get("name") or e["node"]["action"] for e in page["edges"]]

    assert await filtered(action="updateWorkspace") == [
        "By admin 1",
        "By admin 0",
        "By owner 2",
        "By owner 1",
        "By owner 0",
    ]
    assert await filtered(actorUserId=admin.user_id) == [
        "By admin 1",
        "By admin 0",
        "acceptInvitation",
    ]
    assert await filtered(actorUserId=admin.user_id, action="updateWorkspace") == [
        "By admin 1",
        "By admin 0",
    ]
    # `since` is inclusive, `until` exclusive; take the bounds from the entries themselves.
    by_name = {n["details"].get("name"): n for n in nodes}
    since = by_name["By owner 2"]["createdAt"]
    until = by_name["By admin 1"]["createdAt"]
    assert await filtered(since=since) == ["By admin 1", "By admin 0", "By owner 2"]
    assert await filtered(since=since, until=until) == ["By admin 0", "By owner 2"]
    assert datetime.fromisoformat(since) < datetime.fromisoformat(until)
    assert await filtered(action="noSuchAction") == []
    assert await filtered(targetType="Invitation") == ["acceptInvitation", "inviteMember"]
    bad = await gql(
        client, AUDIT, {"ws": ws, "first": 5, "filter": {"actorUserId": ws}}, headers=owner.headers
    )
    assert error_code(bad) == "BAD_USER_INPUT"
    too_big = await gql(client, AUDIT, {"ws": ws, "first": 101}, headers=owner.headers)
    assert error_code(too_big) == "BAD_USER_INPUT"


async def test_audit_log_is_for_admins_only(client: httpx.AsyncClient) -> None:
    owner = await register(client)
    ws = await create_workspace(client, owner)
    admin = await join(client, owner, ws, "ADMIN")
    member = await join(client, owner, ws, "MEMBER")
    viewer = await join(client, owner, ws, "VIEWER")
    stranger = await register(client)
    for account in (owner, admin):
        page = await _audit_page(client, account, ws)
        assert page["edges"], "admins read the log"
    for account in (member, viewer, stranger):
        body = await gql(client, AUDIT, {"ws": ws, "first": 5}, headers=account.headers)
        assert error_code(body) == "FORBIDDEN" and body["data"] is None
    anonymous = await gql(client, AUDIT, {"ws": ws, "first": 5})
    assert error_code(anonymous) == "UNAUTHENTICATED"
    viewer_key = await create_key(client, owner, ws, "VIEWER")
    body = await gql(client, AUDIT, {"ws": ws, "first": 5}, headers=bearer(viewer_key["secret"]))
    assert error_code(body) == "FORBIDDEN"


# GDPR export --------------------------------------------------------------------------------------


async def test_export_my_data_contains_profile_memberships_sessions_keys_and_activity(
    app: Starlette, client: httpx.AsyncClient
) -> None:
    me = await register(client, name="Grace Export")
    await gql(client, LOGIN, {"i": {"email": me.email, "password": PASSWORD}})  # a 2nd session
    mine = await create_workspace(client, me, "My Own")
    host = await register(client, name="Hedy Host")
    theirs = await create_workspace(client, host, "Their Place")
    token = (await invite(client, host, theirs, me.email, "VIEWER"))["invitationToken"]
    await gql(client, ACCEPT, {"t": token}, headers=me.headers)
    key = await create_key(client, me, mine, "MEMBER", name="export key")
    body = await gql(client, EXPORT, headers=me.headers)
    payload = body["data"]["exportMyData"]
    assert payload["errors"] == []
    data = payload["data"]
    text = json.dumps(data)

    assert data["profile"]["id"] == str(uid(me.user_id))
    assert data["profile"]["email"] == me.email and data["profile"]["name"] == "Grace Export"
    assert data["profile"]["two_factor_enabled"] is False
    assert {(m["workspace_name"], m["role"]) for m in data["memberships"]} == {
        ("My Own", "OWNER"),
        ("Their Place", "VIEWER"),
    }
    assert len(data["sessions"]) == 2
    assert all(s["ip"] == "127.0.0.1" for s in data["sessions"])
    assert [(k["name"], k["prefix"], k["role"]) for k in data["api_keys_created"]] == [
        ("export key", key["apiKey"]["prefix"], "MEMBER")
    ]
    assert [i["workspace_id"] for i in data["invitations"]] == [str(uid(theirs))]
    actions = [a["action"] for a in data["activity"]]
    for action in ("register", "login", "createWorkspace", "acceptInvitation", "createApiKey"):
        assert action in actions, action
    # No secrets and nobody else's personal data.
    assert key["secret"] not in text and key["secret"].split("_", 2)[2] not in text
    assert "argon2" not in text and me.refresh_token not in text
    assert host.email not in text and "Hedy Host" not in text
    # Exporting is itself recorded; anonymous callers and API keys get nothing.
    assert await _entries(app, AuditEntry.action == "exportMyData")
    assert error_code(await gql(client, EXPORT)) == "UNAUTHENTICATED"
    assert error_code(await gql(client, EXPORT, headers=bearer(key["secret"]))) == "FORBIDDEN"


# GDPR deletion ------------------------------------------------------------------------------------


async def _roles(app: Starlette, ws: str) -> dict[uuid.UUID, str]:
    async with state_of(app).session_factory() as session:
        rows = await session.execute(
            select(Membership.user_id, Membership.role).where(Membership.workspace_id == uid(ws))
        )
        return {user_id: role for user_id, role in rows.all()}


async def test_delete_account_with_a_wrong_password_changes_nothing(
    app: Starlette, client: httpx.AsyncClient
) -> None:
    me = await register(client)
    ws = await create_workspace(client, me)
    body = await gql(client, DELETE, {"p": "not my password at all"}, headers=me.headers)
    assert body["data"]["deleteAccount"] == {
        "success": False,
        "errors": [{"field": "password", "code": "INVALID_CREDENTIALS"}],
    }
    async with state_of(app).session_factory() as session:
        assert await session.get(User, uid(me.user_id)) is not None
        assert await session.get(Workspace, uid(ws)) is not None
    assert (
        await client.post("/graphql", json={"query": ME}, headers=me.headers)
    ).status_code == 200
    assert error_code(await gql(client, DELETE, {"p": PASSWORD})) == "UNAUTHENTICATED"


async def test_delete_account_hands_workspaces_on_and_removes_personal_data(
    app: Starlette, client: httpx.AsyncClient
) -> None:
    me = await register(client, name="Dora Deleted")
    # Shared: a member joined first, then two admins: the earlier admin inherits.
    shared = await create_workspace(client, me, "Shared")
    early_member = await join(client, me, shared, "MEMBER")
    first_admin = await join(client, me, shared, "ADMIN")
    second_admin = await join(client, me, shared, "ADMIN")
    # No admins: the earliest member inherits (before an earlier viewer).
    members_only = await create_workspace(client, me, "Members only")
    viewer = await join(client, me, members_only, "VIEWER")
    heir = await join(client, me, members_only, "MEMBER")
    await join(client, me, members_only, "MEMBER")
    # Alone: the workspace goes with me, keys and invitations included.
    solo = await create_workspace(client, me, "Solo")
    solo_key = await create_key(client, me, solo, "VIEWER")
    await invite(client, me, solo, "pending@example.com", "VIEWER")
    # Someone else's workspace I only belong to survives without me.
    host = await register(client)
    hosted = await create_workspace(client, host, "Hosted")
    token = (await invite(client, host, hosted, me.email, "MEMBER"))["invitationToken"]
    await gql(client, ACCEPT, {"t": token}, headers=me.headers)
    # A pending invitation to me, a comment, a profile change and an API key of mine.
    elsewhere = await create_workspace(client, host, "Elsewhere")
    await invite(client, host, elsewhere, me.email, "VIEWER")
    content = await gql(
        client,
        'mutation($ws: ID!) { createContent(input: {workspaceId: $ws, title: "Post",'
        ' body: "Hello"}) { content { id } errors { code } } }',
        {"ws": shared},
        headers=me.headers,
    )
    content_id = content["data"]["createContent"]["content"]["id"]
    comment = await gql(
        client,
        'mutation($c: ID!) { addComment(contentId: $c, body: "Nice") { errors { code } } }',
        {"c": content_id},
        headers=me.headers,
    )
    assert comment["data"]["addComment"]["errors"] == []
    await gql(
        client,
        'mutation { updateProfile(input: {name: "Dora Renamed"}) { errors { code } } }',
        headers=me.headers,
    )
    shared_key = await create_key(client, me, shared, "VIEWER")
    await gql(
        client,
        "mutation($e: String!) { requestPasswordReset(email: $e) { success } }",
        {"e": me.email},
    )
    login = await gql(client, LOGIN, {"i": {"email": me.email, "password": PASSWORD}})
    second_refresh = login["data"]["login"]["refreshToken"]

    done = await gql(
        client, DELETE, {"p": PASSWORD}, headers={**me.headers, "X-Request-ID": "gdpr-delete-01"}
    )
    assert done["data"]["deleteAccount"] == {"success": True, "errors": []}

    me_id = uid(me.user_id)
    assert await _roles(app, shared) == {
        uid(early_member.user_id): "MEMBER",
        uid(first_admin.user_id): "OWNER",
        uid(second_admin.user_id): "ADMIN",
    }
    roles = await _roles(app, members_only)
    assert roles[uid(heir.user_id)] == "OWNER" and roles[uid(viewer.user_id)] == "VIEWER"
    assert list(roles.values()).count("OWNER") == 1 and me_id not in roles
    assert await _roles(app, hosted) == {uid(host.user_id): "OWNER"}
    async with state_of(app).session_factory() as session:
        assert await session.get(User, me_id) is None
        assert await session.get(Workspace, uid(solo)) is None, "alone in it: deleted"
        assert await session.get(ApiKey, uid(solo_key["apiKey"]["id"])) is None
        for survivor in (shared, members_only, hosted):
            assert await session.get(Workspace, uid(survivor)) is not None
        for model, column in (
            (RefreshToken, RefreshToken.user_id),
            (PasswordResetToken, PasswordResetToken.user_id),
            (Membership, Membership.user_id),
        ):
            count = await session.scalar(
                select(func.count()).select_from(model).where(column == me_id)
            )
            assert count == 0, model
        pending = await session.scalar(
            select(func.count()).select_from(Invitation).where(Invitation.email == me.email)
        )
        assert pending == 0
        shared_key_row = await session.get(ApiKey, uid(shared_key["apiKey"]["id"]))
        assert shared_key_row is not None and shared_key_row.created_by_id is None
        comment_row = await session.scalar(select(ContentComment))
        assert comment_row is not None and comment_row.author_id is None
        assert comment_row.author_name == "deleted user"
    # The trail stays for the workspaces, anonymised: no id, no email, no name, no IP.
    trail = await _entries(app)
    mine = [e for e in trail if e.actor_label == "deleted user"]
    assert {"createWorkspace", "inviteMember", "createContent", "transferOwnership"} <= {
        e.action for e in mine
    }
    assert [(e.action, e.actor_user_id, e.ip) for e in mine if e.actor_user_id or e.ip] == []
    assert not [e for e in trail if e.actor_user_id == me_id]
    # Other people's entries are left as they were.
    hosts = [e for e in trail if e.actor_user_id == uid(host.user_id)]
    assert hosts and all(e.actor_label == host.email and e.ip == "127.0.0.1" for e in hosts)
    text = json.dumps([[e.actor_label, e.target_id, e.details, e.ip] for e in trail])
    for personal in (me.email, "Dora Deleted", "Dora Renamed"):
        assert personal not in text, personal
    transfers = [e for e in mine if e.action == "transferOwnership"]
    assert {e.target_id for e in transfers} == {
        str(uid(first_admin.user_id)),
        str(uid(heir.user_id)),
    }
    assert [e.action for e in await _entries(app, AuditEntry.request_id == "gdpr-delete-01")][
        -1
    ] == "deleteAccount"
    # Every credential is dead, the account cannot sign in, and the address is free again.
    assert (await client.post("/graphql", json={"query": ME}, headers=me.headers)).status_code == (
        401
    )
    for refresh in (me.refresh_token, second_refresh):
        refreshed = await gql(client, REFRESH, {"t": refresh})
        assert refreshed["data"]["refreshToken"]["accessToken"] is None
        assert refreshed["data"]["refreshToken"]["errors"]
    relogin = await gql(client, LOGIN, {"i": {"email": me.email, "password": PASSWORD}})
    assert relogin["data"]["login"]["accessToken"] is None
    assert relogin["data"]["login"]["errors"][0]["code"] == "INVALID_CREDENTIALS"
    again = await register(client, email=me.email)
    assert again.user_id != me.user_id
    # The heirs run their workspaces: the new owner of Shared can transfer it.
    handed = await gql(
        client,
        TRANSFER,
        {"ws": shared, "u": second_admin.user_id},
        headers=first_admin.headers,
    )
    assert handed["data"]["transferOwnership"]["errors"] == []


async def test_a_deleted_users_open_websocket_stops_working(
    app: Starlette, client: httpx.AsyncClient
) -> None:
    me = await register(client)
    async with websocket(app) as conn:
        gws = GraphQLWebSocket(conn)
        await gws.init({"authorization": f"Bearer {me.access_token}"})
        op = await gws.subscribe(ME)
        assert (await gws.collect(op, timeout=5))[0]["data"]["me"]["email"] == me.email
        done = await gql(client, DELETE, {"p": PASSWORD}, headers=me.headers)
        assert done["data"]["deleteAccount"]["success"] is True
        op = await gws.subscribe(ME)
        [result] = await gws.collect(op, timeout=5)
    assert result["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


# Rate limits -------------------------------------------------------------------------------------


@asynccontextmanager
async def _limited_app(servers: Servers, **limits: Any) -> AsyncIterator[Starlette]:
    settings = make_settings(servers, rate_limit_free=3, rate_limit_anonymous=3, **limits)
    async with running_app(settings) as app:
        yield app


HEALTH = {"query": "{ health { version } }"}


async def test_rate_limit_headers_then_429_with_retry_after(servers: Servers) -> None:
    async with (
        _limited_app(servers) as app,
        _client_from(app, "10.0.0.1") as setup,
        _client_from(app, "10.0.0.2") as client,
    ):
        alice = await register(setup)
        bob = await register(setup)
        seen = []
        for _ in range(3):
            response = await client.post("/graphql", json={"query": ME}, headers=alice.headers)
            assert response.status_code == 200
            assert response.headers["x-ratelimit-limit"] == "3"
            reset = int(response.headers["x-ratelimit-reset"])
            assert time.time() - 1 <= reset <= time.time() + 61
            assert "retry-after" not in response.headers
            seen.append(int(response.headers["x-ratelimit-remaining"]))
        assert seen == [2, 1, 0]
        limited = await client.post("/graphql", json={"query": ME}, headers=alice.headers)
        assert limited.status_code == 429
        assert limited.headers["x-ratelimit-limit"] == "3"
        assert limited.headers["x-ratelimit-remaining"] == "0"
        retry_after = int(limited.headers["retry-after"])
        assert 1 <= retry_after <= 20  # one token every 20 s at 3 per minute
        body = limited.json()
        assert body["data"] is None
        error = body["errors"][0]
        assert error["extensions"]["code"] == "RATE_LIMITED"
        assert error["extensions"]["retryAfter"] == retry_after
        # A limited request is not executed: no mutation slips through.
        made = await client.post(
            "/graphql",
            json={
                "query": 'mutation { createWorkspace(input: {name: "Sneaky"}) { errors { code } } }'
            },
            headers=alice.headers,
        )
        assert made.status_code == 429
        async with state_of(app).session_factory() as session:
            assert await session.scalar(select(func.count()).select_from(Workspace)) == 0
        # Bob has a bucket of his own.
        other = await client.post("/graphql", json={"query": ME}, headers=bob.headers)
        assert other.status_code == 200 and other.headers["x-ratelimit-remaining"] == "2"
        # So does Alice's anonymous IP: her exhausted user bucket is not the IP's.
        anonymous = await client.post("/graphql", json=HEALTH)
        assert anonymous.status_code == 200 and anonymous.headers["x-ratelimit-remaining"] == "2"


async def test_anonymous_callers_are_limited_per_ip(servers: Servers) -> None:
    async with (
        _limited_app(servers) as app,
        _client_from(app, "192.0.2.10") as first,
        _client_from(app, "192.0.2.11") as second,
    ):
        for _ in range(3):
            assert (await first.post("/graphql", json=HEALTH)).status_code == 200
        limited = await first.post("/graphql", json=HEALTH)
        assert limited.status_code == 429
        assert limited.json()["errors"][0]["extensions"]["code"] == "RATE_LIMITED"
        # Registering (anonymous) from the same IP is refused as well.
        refused = await first.post(
            "/graphql",
            json={
                "query": "mutation($i: RegisterInput!) { register(input: $i) { accessToken } }",
                "variables": {
                    "i": {"email": "late@example.com", "password": PASSWORD, "name": "L"}
                },
            },
        )
        assert refused.status_code == 429
        response = await second.post("/graphql", json=HEALTH)
        assert response.status_code == 200 and response.headers["x-ratelimit-remaining"] == "2"
        async with state_of(app).session_factory() as session:
            assert await session.scalar(select(func.count()).select_from(User)) == 0


async def test_limits_follow_the_plan_tier_and_api_keys_have_their_own_bucket(
    servers: Servers,
) -> None:
    async with (
        _limited_app(servers, rate_limit_pro=7) as app,
        _client_from(app, "10.1.0.1") as setup,
        _client_from(app, "10.1.0.2") as client,
    ):
        owner = await register(setup)
        ws = await create_workspace(setup, owner)
        key = await create_key(setup, owner, ws, "VIEWER")
        assert key["errors"] == []
        # Owner's bucket is now empty (2 operations above + this one).
        assert (
            await client.post("/graphql", json={"query": ME}, headers=owner.headers)
        ).status_code == 200
        assert (
            await client.post("/graphql", json={"query": ME}, headers=owner.headers)
        ).status_code == 429
        # The workspace's key has a bucket of its own, at the workspace's plan (free: 3).
        keyed = await client.post(
            "/graphql",
            json={"query": "{ workspaces { edges { cursor } } }"},
            headers=bearer(key["secret"]),
        )
        assert keyed.status_code == 200
        assert keyed.headers["x-ratelimit-limit"] == "3"
        assert keyed.headers["x-ratelimit-remaining"] == "2"
        # A pro user gets the pro limit.
        async with state_of(app).session_factory() as session, session.begin():
            await session.execute(
                update(User).where(User.id == uid(owner.user_id)).values(plan="pro")
            )
            await session.execute(
                update(Workspace).where(Workspace.id == uid(ws)).values(plan="pro")
            )
        assert (await client.post("/graphql", json={"query": ME}, headers=owner.headers)).headers[
            "x-ratelimit-limit"
        ] == "7"
        keyed = await client.post(
            "/graphql",
            json={"query": "{ workspaces { edges { cursor } } }"},
            headers=bearer(key["secret"]),
        )
        assert keyed.headers["x-ratelimit-limit"] == "7"


async def test_guessed_credentials_are_limited_per_address(servers: Servers) -> None:
    """Forged tokens and unknown API keys count against the address presenting them; past
    the limit every credential from there is refused unchecked, so a right guess looks like
    a wrong one. Other addresses, and requests without a credential, are unaffected."""
    async with (
        _limited_app(servers, rate_limit_rejected_credentials=3) as app,
        _client_from(app, "10.3.0.1") as guesser,
        _client_from(app, "10.3.0.2") as other,
    ):
        account = await register(other)
        guesses = [bearer("forged.jwt.token"), bearer("sk_abcdefgh_wrong"), bearer("x.y.z")]
        for headers in guesses:
            response = await guesser.post("/graphql", json={"query": ME}, headers=headers)
            assert response.status_code == 401
        limited = await guesser.post(
            "/graphql", json={"query": ME}, headers=bearer("sk_abcdefgh_again")
        )
        assert limited.status_code == 429
        assert 1 <= int(limited.headers["retry-after"]) <= 20  # one guess per 20 s at 3/min
        error = limited.json()["errors"][0]
        assert error["extensions"]["code"] == "RATE_LIMITED"
        right = await guesser.post("/graphql", json={"query": ME}, headers=account.headers)
        assert right.status_code == 429
        assert right.json()["errors"][0]["extensions"]["code"] == "RATE_LIMITED"
        elsewhere = await other.post("/graphql", json={"query": ME}, headers=account.headers)
        assert elsewhere.status_code == 200
        assert elsewhere.json()["data"]["me"]["email"] == account.email
        anonymous = await guesser.post("/graphql", json=HEALTH)
        assert anonymous.status_code == 200


async def test_expired_credentials_are_not_counted_as_guesses(servers: Servers) -> None:
    async with (
        _limited_app(servers, rate_limit_rejected_credentials=2) as app,
        _client_from(app, "10.3.1.1") as client,
    ):
        account = await register(client)
        user_id = uuid.UUID(relay.GlobalID.from_id(account.user_id).node_id)
        expired, _ = tokens.issue_access_token(
            state_of(app).keys.signing_secret, user_id, 0, minutes=-1
        )
        for _ in range(4):
            response = await client.post("/graphql", json={"query": ME}, headers=bearer(expired))
            assert response.status_code == 401
            assert "expired" in response.json()["errors"][0]["message"]
        fresh = await client.post("/graphql", json={"query": ME}, headers=account.headers)
        assert fresh.status_code == 200


async def test_a_guessed_websocket_credential_counts_too(servers: Servers) -> None:
    async with (
        _limited_app(servers, rate_limit_rejected_credentials=2) as app,
        _client_from(app, "127.0.0.1") as client,
    ):
        account = await register(client)
        for _ in range(2):
            async with websocket(app) as conn:
                gws = GraphQLWebSocket(conn)
                with pytest.raises(WebSocketDisconnect):
                    await gws.init({"authorization": "Bearer forged"})
        # The websocket test client's address is now over the limit, for HTTP as well.
        response = await client.post("/graphql", json={"query": ME}, headers=account.headers)
        assert response.status_code == 429


async def test_websocket_operations_are_rate_limited(servers: Servers) -> None:
    async with (
        _limited_app(servers) as app,
        _client_from(app, "10.2.0.1") as setup,
    ):
        account = await register(setup)
        async with websocket(app) as conn:
            gws = GraphQLWebSocket(conn)
            await gws.init({"authorization": f"Bearer {account.access_token}"})
            for _ in range(3):
                op = await gws.subscribe(ME)
                [result] = await gws.collect(op, timeout=5)
                assert result["data"]["me"]["email"] == account.email
            op = await gws.subscribe(ME)
            message = await gws.receive(timeout=5)
        assert message["id"] == op and message["type"] == "error"
        error = message["payload"][0]
        assert error["extensions"]["code"] == "RATE_LIMITED"
        assert 1 <= error["extensions"]["retryAfter"] <= 20
        # HTTP and websocket share the principal's bucket.
        http = await setup.post("/graphql", json={"query": ME}, headers=account.headers)
        assert http.status_code == 429


@pytest.mark.parametrize("header", ["authorization", "Authorization"])
async def test_websocket_connection_params_accept_either_spelling(
    app: Starlette, client: httpx.AsyncClient, header: str
) -> None:
    account = await register(client)
    async with websocket(app) as conn:
        gws = GraphQLWebSocket(conn)
        await gws.init({header: f"Bearer {account.access_token}"})
        [result] = await gws.collect(await gws.subscribe(ME), timeout=5)
    assert result["data"]["me"]["email"] == account.email
