"""Workspaces and teams as a client sees them: creation, updates, listing, invitations,
roles, removal, ownership, members.

Longer than 400 lines because workspaces, invitations and member roles are one lifecycle
exercised end to end.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import event, func, select, update
from sqlalchemy.exc import IntegrityError
from starlette.applications import Starlette

from app.models import Invitation, Membership, Workspace
from app.security.tokens import token_hash
from tests.helpers import Account, GraphQLWebSocket, create_workspace, gql, ping, register
from tests.teams import (
    ACCEPT,
    REMOVE,
    TRANSFER,
    UPDATE_ROLE,
    WORKSPACE,
    accept,
    error_code,
    gid,
    invite,
    join,
    state_of,
    uid,
    websocket,
)

CREATE = """
mutation($i: CreateWorkspaceInput!) {
  createWorkspace(input: $i) {
    workspace {
      id name plan requireTwoFactor createdAt viewerRole memberCount
      brandVoice { tone styleNotes keywords bannedWords examplePosts }
      members { edges { node { role joinedAt user { id email name } } } }
    }
    errors { field code message }
  }
}
"""
UPDATE = """
mutation($id: ID!, $i: UpdateWorkspaceInput!) {
  updateWorkspace(id: $id, input: $i) {
    workspace { id name requireTwoFactor brandVoice { tone styleNotes keywords bannedWords } }
    errors { field code message }
  }
}
"""
LIST = """
query($first: Int!, $after: String) {
  workspaces(first: $first, after: $after) {
    edges { cursor node { id name viewerRole memberCount } }
    pageInfo { hasNextPage endCursor }
  }
}
"""
MEMBERS = """
query($id: ID!, $first: Int!, $after: String) {
  workspace(id: $id) {
    memberCount viewerRole
    members(first: $first, after: $after) {
      edges { cursor node { role joinedAt user { id email name } } }
      pageInfo { hasNextPage endCursor }
    }
  }
}
"""


async def _create(
    client: httpx.AsyncClient, account: Account | None, input: dict[str, Any]
) -> dict[str, Any]:
    return await gql(client, CREATE, {"i": input}, headers=account.headers if account else {})


async def _workspace_count(app: Starlette) -> int:
    async with state_of(app).session_factory() as session:
        return int(await session.scalar(select(func.count()).select_from(Workspace)) or 0)


async def _roles(app: Starlette, workspace_id: str) -> dict[uuid.UUID, str]:
    async with state_of(app).session_factory() as session:
        rows = await session.execute(
            select(Membership.user_id, Membership.role).where(
                Membership.workspace_id == uid(workspace_id)
            )
        )
        return {user_id: role for user_id, role in rows.all()}


async def _team(client: httpx.AsyncClient) -> tuple[Account, str, dict[str, Account]]:
    """An owner and a workspace with one admin, member and viewer."""
    owner = await register(client, name="Owner")
    ws = await create_workspace(client, owner, "Team")
    people = {
        role: await join(client, owner, ws, role.upper(), name=role.title())
        for role in ("admin", "member", "viewer")
    }
    return owner, ws, people


# createWorkspace ------------------------------------------------------------------------------


async def test_create_workspace_makes_the_creator_owner_and_stores_the_brand_voice(
    app: Starlette, client: httpx.AsyncClient
) -> None:
    owner = await register(client, name="Olive Owner")
    voice = {
        "tone": "  friendly, expert  ",
        "styleNotes": "Short sentences.",
        "keywords": ["AI", "  ", " content "],
        "bannedWords": ["synergy"],
        "examplePosts": ["We ship on Fridays."],
    }
    body = await _create(client, owner, {"name": "  Acme Marketing  ", "brandVoice": voice})
    payload = body["data"]["createWorkspace"]
    assert payload["errors"] == []
    workspace = payload["workspace"]
    assert workspace["name"] == "Acme Marketing", "name is trimmed"
    assert workspace["plan"] == "free" and workspace["requireTwoFactor"] is False
    assert workspace["viewerRole"] == "OWNER" and workspace["memberCount"] == 1
    expected_voice = {
        "tone": "friendly, expert",
        "styleNotes": "Short sentences.",
        "keywords": ["AI", "content"],
        "bannedWords": ["synergy"],
        "examplePosts": ["We ship on Fridays."],
    }
    assert workspace["brandVoice"] == expected_voice
    assert workspace["members"]["edges"] == [
        {
            "node": {
                "role": "OWNER",
                "joinedAt": workspace["members"]["edges"][0]["node"]["joinedAt"],
                "user": {"id": owner.user_id, "email": owner.email, "name": "Olive Owner"},
            }
        }
    ]
    # Read back through the API and straight from the database.
    read = await gql(
        client,
        "query($id: ID!) { workspace(id: $id) { name brandVoice { tone styleNotes keywords"
        " bannedWords examplePosts } } }",
        {"id": workspace["id"]},
        headers=owner.headers,
    )
    assert read["data"]["workspace"] == {"name": "Acme Marketing", "brandVoice": expected_voice}
    async with state_of(app).session_factory() as session:
        row = await session.get(Workspace, uid(workspace["id"]))
        assert row is not None
        assert row.brand_voice == {
            "tone": "friendly, expert",
            "style_notes": "Short sentences.",
            "keywords": ["AI", "content"],
            "banned_words": ["synergy"],
            "example_posts": ["We ship on Fridays."],
        }
    assert await _roles(app, workspace["id"]) == {uid(owner.user_id): "OWNER"}


async def test_create_workspace_without_brand_voice_has_an_empty_one(
    client: httpx.AsyncClient,
) -> None:
    owner = await register(client)
    body = await _create(client, owner, {"name": "Plain"})
    assert body["data"]["createWorkspace"]["workspace"]["brandVoice"] == {
        "tone": "",
        "styleNotes": "",
        "keywords": [],
        "bannedWords": [],
        "examplePosts": [],
    }


@pytest.mark.parametrize(
    ("input", "field", "code"),
    [
        ({"name": ""}, "name", "REQUIRED"),
        ({"name": "   "}, "name", "REQUIRED"),
        ({"name": "x" * 201}, "name", "TOO_LONG"),
        ({"name": "ok", "brandVoice": {"tone": "t" * 201}}, "brandVoice.tone", "TOO_LONG"),
        (
            {"name": "ok", "brandVoice": {"styleNotes": "s" * 4001}},
            "brandVoice.style_notes",
            "TOO_LONG",
        ),
        (
            {"name": "ok", "brandVoice": {"keywords": [f"k{i}" for i in range(101)]}},
            "brandVoice.keywords",
            "TOO_MANY",
        ),
    ],
)
async def test_create_workspace_validation_errors(
    app: Starlette, client: httpx.AsyncClient, input: dict[str, Any], field: str, code: str
) -> None:
    owner = await register(client)
    body = await _create(client, owner, input)
    payload = body["data"]["createWorkspace"]
    assert payload["workspace"] is None
    assert [(e["field"], e["code"]) for e in payload["errors"]] == [(field, code)]
    assert await _workspace_count(app) == 0, "nothing is written"


async def test_create_workspace_name_of_exactly_200_characters_is_fine(
    client: httpx.AsyncClient,
) -> None:
    owner = await register(client)
    body = await _create(client, owner, {"name": "n" * 200})
    assert body["data"]["createWorkspace"]["workspace"]["name"] == "n" * 200


async def test_create_workspace_needs_a_signed_in_user(
    app: Starlette, client: httpx.AsyncClient
) -> None:
    body = await _create(client, None, {"name": "Nobody's"})
    assert error_code(body) == "UNAUTHENTICATED" and body["data"] is None
    assert await _workspace_count(app) == 0


# updateWorkspace ------------------------------------------------------------------------------


async def test_admin_updates_the_workspace_and_a_member_cannot(
    app: Starlette, client: httpx.AsyncClient
) -> None:
    owner, ws, people = await _team(client)
    changed = await gql(
        client,
        UPDATE,
        {"id": ws, "i": {"name": "Renamed", "brandVoice": {"tone": "bold", "keywords": ["x"]}}},
        headers=people["admin"].headers,
    )
    assert changed["data"]["updateWorkspace"] == {
        "workspace": {
            "id": ws,
            "name": "Renamed",
            "requireTwoFactor": False,
            "brandVoice": {"tone": "bold", "styleNotes": "", "keywords": ["x"], "bannedWords": []},
        },
        "errors": [],
    }
    # Omitted fields stay as they are.
    only_name = await gql(client, UPDATE, {"id": ws, "i": {"name": "Again"}}, headers=owner.headers)
    assert only_name["data"]["updateWorkspace"]["workspace"]["brandVoice"]["tone"] == "bold"
    for role in ("member", "viewer"):
        denied = await gql(
            client, UPDATE, {"id": ws, "i": {"name": "Hijacked"}}, headers=people[role].headers
        )
        assert error_code(denied) == "FORBIDDEN", role
        assert denied["data"] is None
    outsider = await register(client)
    denied = await gql(
        client, UPDATE, {"id": ws, "i": {"name": "Hijacked"}}, headers=outsider.headers
    )
    assert error_code(denied) == "FORBIDDEN"
    # Requiring two-factor authentication is the owner's call.
    policy = await gql(
        client, UPDATE, {"id": ws, "i": {"requireTwoFactor": True}}, headers=people["admin"].headers
    )
    assert error_code(policy) == "FORBIDDEN"
    invalid = await gql(client, UPDATE, {"id": ws, "i": {"name": " "}}, headers=owner.headers)
    assert [e["code"] for e in invalid["data"]["updateWorkspace"]["errors"]] == ["REQUIRED"]
    async with state_of(app).session_factory() as session:
        row = await session.get(Workspace, uid(ws))
        assert row is not None and row.name == "Again" and row.require_two_factor is False


# workspaces / workspace -------------------------------------------------------------------------


async def test_workspaces_lists_only_mine_newest_first_with_pagination(
    client: httpx.AsyncClient,
) -> None:
    alice, bob = await register(client), await register(client)
    mine = [await create_workspace(client, alice, f"A{i}") for i in range(5)]
    bobs = await create_workspace(client, bob, "Bob's")
    # Bob is invited into one of Alice's workspaces: he sees that one too.
    invited = await invite(client, alice, mine[0], bob.email, "VIEWER")
    await accept(client, bob, invited["invitationToken"])

    seen: list[str] = []
    pages: list[bool] = []
    after = None
    while True:
        body = await gql(client, LIST, {"first": 2, "after": after}, headers=alice.headers)
        connection = body["data"]["workspaces"]
        seen += [e["node"]["id"] for e in connection["edges"]]
        pages.append(connection["pageInfo"]["hasNextPage"])
        assert connection["pageInfo"]["endCursor"] == connection["edges"][-1]["cursor"]
        if not connection["pageInfo"]["hasNextPage"]:
            break
        after = connection["pageInfo"]["endCursor"]
    assert seen == list(reversed(mine)), "newest first, each once"
    assert pages == [True, True, False]

    bob_view = await gql(client, LIST, {"first": 10}, headers=bob.headers)
    nodes = [e["node"] for e in bob_view["data"]["workspaces"]["edges"]]
    assert [(n["id"], n["viewerRole"], n["memberCount"]) for n in nodes] == [
        (bobs, "OWNER", 1),
        (mine[0], "VIEWER", 2),
    ]
    assert bobs not in seen


@pytest.mark.parametrize("first", [0, -1, 101])
async def test_workspaces_page_size_is_bounded(client: httpx.AsyncClient, first: int) -> None:
    account = await register(client)
    body = await gql(client, LIST, {"first": first}, headers=account.headers)
    assert error_code(body) == "BAD_USER_INPUT"
    assert body["data"] is None


async def test_workspaces_rejects_a_malformed_cursor_and_anonymous_callers(
    client: httpx.AsyncClient,
) -> None:
    account = await register(client)
    body = await gql(client, LIST, {"first": 5, "after": "not-a-cursor"}, headers=account.headers)
    assert error_code(body) == "BAD_USER_INPUT"
    anonymous = await gql(client, LIST, {"first": 5})
    assert error_code(anonymous) == "UNAUTHENTICATED"


async def test_another_tenants_workspace_is_forbidden(client: httpx.AsyncClient) -> None:
    owner, stranger = await register(client), await register(client)
    ws = await create_workspace(client, owner, "Private")
    body = await gql(client, WORKSPACE, {"id": ws}, headers=stranger.headers)
    assert error_code(body) == "FORBIDDEN" and body["data"] is None
    assert "Private" not in str(body)
    # node() does not reveal it either; a workspace id that does not exist looks the same.
    node = await gql(
        client, "query($id: ID!) { node(id: $id) { id } }", {"id": ws}, headers=stranger.headers
    )
    assert node["data"] == {"node": None}
    missing = await gql(
        client, WORKSPACE, {"id": gid("Workspace", uuid.uuid4())}, headers=stranger.headers
    )
    assert error_code(missing) == "FORBIDDEN"
    wrong_type = await gql(client, WORKSPACE, {"id": owner.user_id}, headers=owner.headers)
    assert error_code(wrong_type) == "BAD_USER_INPUT"
    anonymous = await gql(client, WORKSPACE, {"id": ws})
    assert error_code(anonymous) == "UNAUTHENTICATED"
    mine = await gql(client, WORKSPACE, {"id": ws}, headers=owner.headers)
    assert mine["data"]["workspace"] == {
        "id": ws,
        "name": "Private",
        "viewerRole": "OWNER",
        "memberCount": 1,
    }


# inviteMember ---------------------------------------------------------------------------------


async def test_invite_member_returns_and_mails_a_token(
    app: Starlette, client: httpx.AsyncClient
) -> None:
    owner = await register(client)
    ws = await create_workspace(client, owner, "Mailroom")
    email = f"New.Person.{uuid.uuid4().hex[:6]}@Example.COM"
    before = datetime.now(UTC)
    payload = await invite(client, owner, ws, email, "MEMBER")
    assert payload["errors"] == []
    token = payload["invitationToken"]
    assert token.startswith("inv_") and len(token) > 30
    invitation = payload["invitation"]
    assert invitation["email"] == email.lower() and invitation["role"] == "MEMBER"
    assert invitation["acceptedAt"] is None
    expires = datetime.fromisoformat(invitation["expiresAt"])
    assert before + timedelta(days=7) - timedelta(minutes=1) < expires
    assert expires < datetime.now(UTC) + timedelta(days=7, minutes=1)
    mails = [m for m in state_of(app).mailer.outbox if m.to == email.lower()]  # type: ignore[attr-defined]
    assert len(mails) == 1
    assert token in mails[0].body and "Mailroom" in mails[0].subject
    async with state_of(app).session_factory() as session:
        row = await session.get(Invitation, uid(invitation["id"]))
        assert row is not None
        assert row.token_hash == token_hash(token) and token not in row.token_hash
        assert row.invited_by_id == uid(owner.user_id)
    # The invited person signs up with the address in lower case and joins.
    newcomer = await register(client, email=email.lower())
    joined = await accept(client, newcomer, token)
    assert joined == {
        "workspace": {"id": ws, "name": "Mailroom", "viewerRole": "MEMBER"},
        "errors": [],
    }


async def test_invite_member_rules(app: Starlette, client: httpx.AsyncClient) -> None:
    owner, ws, people = await _team(client)
    outbox = state_of(app).mailer.outbox  # type: ignore[attr-defined]
    sent = len(outbox)

    def fresh() -> str:
        return f"{uuid.uuid4().hex[:10]}@example.com"

    # Nobody invites an owner; an admin may invite up to admin.
    for inviter in (owner, people["admin"]):
        refused = await invite(client, inviter, ws, fresh(), "OWNER")
        assert refused["invitationToken"] is None and refused["invitation"] is None
        assert [(e["field"], e["code"]) for e in refused["errors"]] == [("role", "NOT_ALLOWED")]
    for role in ("ADMIN", "MEMBER", "VIEWER"):
        ok = await invite(client, people["admin"], ws, fresh(), role)
        assert ok["errors"] == [] and ok["invitation"]["role"] == role
    # Members and viewers cannot invite at all.
    for role in ("member", "viewer"):
        body = await gql(
            client,
            'mutation($ws: ID!) { inviteMember(workspaceId: $ws, email: "a@example.com",'
            " role: VIEWER) { invitationToken } }",
            {"ws": ws},
            headers=people[role].headers,
        )
        assert error_code(body) == "FORBIDDEN", role
    bad_email = await invite(client, owner, ws, "not-an-email", "MEMBER")
    assert [e["code"] for e in bad_email["errors"]] == ["INVALID"]
    already = await invite(client, owner, ws, people["member"].email.upper(), "VIEWER")
    assert [(e["field"], e["code"]) for e in already["errors"]] == [("email", "ALREADY_MEMBER")]
    assert len(outbox) == sent + 3, "mail only for the three invitations made"
    async with state_of(app).session_factory() as session:
        count = await session.scalar(
            select(func.count())
            .select_from(Invitation)
            .where(Invitation.workspace_id == uid(ws), Invitation.accepted_at.is_(None))
        )
    assert count == 3


# acceptInvitation -----------------------------------------------------------------------------


async def test_accept_invitation_must_be_the_invited_account_and_works_once(
    app: Starlette, client: httpx.AsyncClient
) -> None:
    owner = await register(client)
    ws = await create_workspace(client, owner)
    invitee, intruder = await register(client), await register(client)
    token = (await invite(client, owner, ws, invitee.email, "ADMIN"))["invitationToken"]

    wrong = await accept(client, intruder, token)
    assert wrong["workspace"] is None
    assert [(e["field"], e["code"]) for e in wrong["errors"]] == [("token", "WRONG_ACCOUNT")]
    assert uid(intruder.user_id) not in await _roles(app, ws)
    async with state_of(app).session_factory() as session:
        row = await session.scalar(select(Invitation).where(Invitation.workspace_id == uid(ws)))
        assert row is not None and row.accepted_at is None, "a wrong try does not use it up"

    anonymous = await gql(client, ACCEPT, {"t": token})
    assert error_code(anonymous) == "UNAUTHENTICATED"

    first = await accept(client, invitee, token)
    assert first["errors"] == [] and first["workspace"]["viewerRole"] == "ADMIN"
    assert (await _roles(app, ws))[uid(invitee.user_id)] == "ADMIN"
    again = await accept(client, invitee, token)
    assert [e["code"] for e in again["errors"]] == ["INVALID_TOKEN"]
    garbage = await accept(client, invitee, "inv_nothing-like-a-real-token")
    assert [e["code"] for e in garbage["errors"]] == ["INVALID_TOKEN"]


async def test_expired_or_revoked_invitation_fails(
    app: Starlette, client: httpx.AsyncClient
) -> None:
    owner = await register(client)
    ws = await create_workspace(client, owner)
    late, revoked = await register(client), await register(client)
    late_token = (await invite(client, owner, ws, late.email, "MEMBER"))["invitationToken"]
    revoked_token = (await invite(client, owner, ws, revoked.email, "MEMBER"))["invitationToken"]
    async with state_of(app).session_factory() as session, session.begin():
        await session.execute(
            update(Invitation)
            .where(Invitation.token_hash == token_hash(late_token))
            .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
        await session.execute(
            update(Invitation)
            .where(Invitation.token_hash == token_hash(revoked_token))
            .values(revoked_at=datetime.now(UTC))
        )
    for account, token in ((late, late_token), (revoked, revoked_token)):
        payload = await accept(client, account, token)
        assert payload["workspace"] is None
        assert [e["code"] for e in payload["errors"]] == ["INVALID_TOKEN"]
    assert set(await _roles(app, ws)) == {uid(owner.user_id)}


# updateMemberRole -----------------------------------------------------------------------------


async def test_update_member_role_rules(app: Starlette, client: httpx.AsyncClient) -> None:
    owner, ws, people = await _team(client)
    admin, member, viewer = people["admin"], people["member"], people["viewer"]

    def call(actor: Account, target: Account, role: str) -> Any:
        return gql(
            client, UPDATE_ROLE, {"ws": ws, "u": target.user_id, "r": role}, headers=actor.headers
        )

    # A viewer cannot run jobs; promoted to member, they can at once.
    assert error_code(await gql_ping(client, viewer, ws)) == "FORBIDDEN"
    promoted = await call(owner, viewer, "MEMBER")
    assert promoted["data"]["updateMemberRole"] == {
        "member": {"role": "MEMBER", "user": {"id": viewer.user_id, "email": viewer.email}},
        "errors": [],
    }
    assert (await ping(client, viewer, ws))["errors"] == []

    # Nobody is made owner this way.
    for actor in (owner, admin):
        made_owner = await call(actor, member, "OWNER")
        assert [
            (e["field"], e["code"]) for e in made_owner["data"]["updateMemberRole"]["errors"]
        ] == [("role", "NOT_ALLOWED")]
    # An admin may grant up to admin, but cannot touch the owner above them.
    assert (await call(admin, member, "ADMIN"))["data"]["updateMemberRole"]["member"]["role"] == (
        "ADMIN"
    )
    assert error_code(await call(admin, owner, "VIEWER")) == "FORBIDDEN"
    # The owner's role never changes through this mutation, even by the owner.
    assert error_code(await call(owner, owner, "ADMIN")) == "FORBIDDEN"
    # Members and viewers change no roles.
    assert error_code(await call(viewer, member, "VIEWER")) == "FORBIDDEN"  # viewer is MEMBER now
    outsider = await register(client)
    assert error_code(await call(outsider, member, "VIEWER")) == "FORBIDDEN"
    assert error_code(await call(owner, outsider, "VIEWER")) == "NOT_FOUND"

    assert await _roles(app, ws) == {
        uid(owner.user_id): "OWNER",
        uid(admin.user_id): "ADMIN",
        uid(member.user_id): "ADMIN",
        uid(viewer.user_id): "MEMBER",
    }


async def gql_ping(client: httpx.AsyncClient, account: Account, ws: str) -> dict[str, Any]:
    return await gql(
        client,
        "mutation($ws: ID!) { ping(workspaceId: $ws) { job { id } errors { code } } }",
        {"ws": ws},
        headers=account.headers,
    )


# removeMember ---------------------------------------------------------------------------------


async def test_remove_member_and_leaving(app: Starlette, client: httpx.AsyncClient) -> None:
    owner, ws, people = await _team(client)
    admin, member, viewer = people["admin"], people["member"], people["viewer"]

    def call(actor: Account, target: Account) -> Any:
        return gql(client, REMOVE, {"ws": ws, "u": target.user_id}, headers=actor.headers)

    # A member cannot remove anyone else.
    assert error_code(await call(member, viewer)) == "FORBIDDEN"
    # The owner can be neither removed nor leave.
    for actor in (admin, owner):
        refused = await call(actor, owner)
        assert refused["data"]["removeMember"]["success"] is False
        assert [e["code"] for e in refused["data"]["removeMember"]["errors"]] == ["OWNER"]
    # An admin removes a member; that member loses access at once.
    removed = await call(admin, member)
    assert removed["data"]["removeMember"] == {"success": True, "errors": []}
    assert error_code(await gql(client, WORKSPACE, {"id": ws}, headers=member.headers)) == (
        "FORBIDDEN"
    )
    listed = await gql(client, LIST, {"first": 10}, headers=member.headers)
    assert listed["data"]["workspaces"]["edges"] == []
    # A viewer leaves on their own.
    left = await call(viewer, viewer)
    assert left["data"]["removeMember"] == {"success": True, "errors": []}
    # Removing someone who is no longer there.
    assert error_code(await call(owner, viewer)) == "NOT_FOUND"
    # An ex-member can do nothing there any more, not even leave again.
    assert error_code(await call(member, member)) == "FORBIDDEN"
    count = await gql(client, WORKSPACE, {"id": ws}, headers=owner.headers)
    assert count["data"]["workspace"]["memberCount"] == 2
    assert await _roles(app, ws) == {uid(owner.user_id): "OWNER", uid(admin.user_id): "ADMIN"}


# transferOwnership ----------------------------------------------------------------------------


async def test_transfer_ownership(app: Starlette, client: httpx.AsyncClient) -> None:
    owner, ws, people = await _team(client)
    admin, member = people["admin"], people["member"]

    def call(actor: Account, target_id: str) -> Any:
        return gql(client, TRANSFER, {"ws": ws, "u": target_id}, headers=actor.headers)

    assert error_code(await call(admin, admin.user_id)) == "FORBIDDEN"
    assert error_code(await call(member, member.user_id)) == "FORBIDDEN"
    same = await call(owner, owner.user_id)
    assert [e["code"] for e in same["data"]["transferOwnership"]["errors"]] == ["SAME_USER"]
    stranger = await register(client)
    assert error_code(await call(owner, stranger.user_id)) == "NOT_FOUND"
    assert (await _roles(app, ws))[uid(owner.user_id)] == "OWNER", "nothing changed"

    done = await call(owner, member.user_id)
    assert done["data"]["transferOwnership"] == {
        "workspace": {"id": ws, "viewerRole": "ADMIN"},
        "errors": [],
    }
    roles = await _roles(app, ws)
    assert roles[uid(owner.user_id)] == "ADMIN" and roles[uid(member.user_id)] == "OWNER"
    assert list(roles.values()).count("OWNER") == 1
    # The old owner is an admin now: no second transfer.
    assert error_code(await call(owner, admin.user_id)) == "FORBIDDEN"
    # The new owner holds every owner right.
    back = await call(member, owner.user_id)
    assert back["data"]["transferOwnership"]["errors"] == []
    roles = await _roles(app, ws)
    assert roles[uid(owner.user_id)] == "OWNER" and roles[uid(member.user_id)] == "ADMIN"


async def test_one_owner_per_workspace_is_enforced_by_the_database(
    app: Starlette, client: httpx.AsyncClient
) -> None:
    owner = await register(client)
    ws = await create_workspace(client, owner)
    other = await join(client, owner, ws, "ADMIN")
    with pytest.raises(IntegrityError, match="uq_memberships_one_owner"):
        async with state_of(app).session_factory() as session, session.begin():
            await session.execute(
                update(Membership)
                .where(
                    Membership.workspace_id == uid(ws),
                    Membership.user_id == uid(other.user_id),
                )
                .values(role="OWNER")
            )


async def test_concurrent_transfers_leave_exactly_one_owner(
    app: Starlette, client: httpx.AsyncClient
) -> None:
    owner, ws, people = await _team(client)
    targets = (people["admin"], people["member"])
    results = await asyncio.gather(
        *(gql(client, TRANSFER, {"ws": ws, "u": t.user_id}, headers=owner.headers) for t in targets)
    )
    succeeded = [r for r in results if r.get("data") and r["data"]["transferOwnership"]]
    failed = [r for r in results if r not in succeeded]
    assert len(succeeded) == 1 and len(failed) == 1, results
    assert succeeded[0]["data"]["transferOwnership"]["errors"] == []
    assert error_code(failed[0]) == "FORBIDDEN", failed[0]
    roles = await _roles(app, ws)
    assert list(roles.values()).count("OWNER") == 1
    assert roles[uid(owner.user_id)] == "ADMIN"


# members, viewerRole, memberCount -------------------------------------------------------------


@contextmanager
def _count_statements(app: Starlette) -> Iterator[list[str]]:
    engine = state_of(app).engine.sync_engine
    statements: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", record)


async def test_members_connection_pages_in_join_order_with_users(
    app: Starlette, client: httpx.AsyncClient
) -> None:
    owner, ws, people = await _team(client)
    order = [owner, people["admin"], people["member"], people["viewer"]]
    seen: list[tuple[str, str, str]] = []
    after = None
    while True:
        body = await gql(
            client,
            MEMBERS,
            {"id": ws, "first": 3, "after": after},
            headers=people["viewer"].headers,
        )
        workspace = body["data"]["workspace"]
        assert workspace["memberCount"] == 4 and workspace["viewerRole"] == "VIEWER"
        members = workspace["members"]
        seen += [
            (e["node"]["user"]["email"], e["node"]["user"]["name"], e["node"]["role"])
            for e in members["edges"]
        ]
        if not members["pageInfo"]["hasNextPage"]:
            break
        after = members["pageInfo"]["endCursor"]
    assert seen == [
        (owner.email, "Owner", "OWNER"),
        (people["admin"].email, "Admin", "ADMIN"),
        (people["member"].email, "Member", "MEMBER"),
        (people["viewer"].email, "Viewer", "VIEWER"),
    ]
    assert [a.email for a in order] == [s[0] for s in seen]
    too_big = await gql(client, MEMBERS, {"id": ws, "first": 101}, headers=owner.headers)
    assert error_code(too_big) == "BAD_USER_INPUT"


async def test_members_users_come_from_one_batched_load(
    app: Starlette, client: httpx.AsyncClient
) -> None:
    """The SQL statement count is the same for 1 member and for 5 (dataloaders)."""
    small_owner = await register(client)
    small = await create_workspace(client, small_owner, "Small")
    big_owner = await register(client)
    big = await create_workspace(client, big_owner, "Big")
    for _ in range(4):
        await join(client, big_owner, big, "MEMBER")
    counts = {}
    for account, ws, size in ((small_owner, small, 1), (big_owner, big, 5)):
        await gql(client, "{ __typename }", headers=account.headers)  # its principal, cached
        with _count_statements(app) as statements:
            body = await gql(client, MEMBERS, {"id": ws, "first": 50}, headers=account.headers)
        edges = body["data"]["workspace"]["members"]["edges"]
        assert len(edges) == size and all(e["node"]["user"]["email"] for e in edges)
        counts[size] = len(statements)
    assert counts[1] == counts[5], counts


async def test_viewer_role_and_member_count_per_workspace(client: httpx.AsyncClient) -> None:
    alice, bob = await register(client), await register(client)
    own = await create_workspace(client, bob, "Bob's own")
    admin_in = await create_workspace(client, alice, "Alice admin")
    viewer_in = await create_workspace(client, alice, "Alice view")
    for ws, role in ((admin_in, "ADMIN"), (viewer_in, "VIEWER")):
        token = (await invite(client, alice, ws, bob.email, role))["invitationToken"]
        await accept(client, bob, token)
    await join(client, alice, viewer_in, "MEMBER")
    body = await gql(client, LIST, {"first": 10}, headers=bob.headers)
    got = {
        e["node"]["name"]: (e["node"]["viewerRole"], e["node"]["memberCount"])
        for e in body["data"]["workspaces"]["edges"]
    }
    assert got == {
        "Bob's own": ("OWNER", 1),
        "Alice admin": ("ADMIN", 2),
        "Alice view": ("VIEWER", 3),
    }
    assert own


async def test_accept_invitation_payload_can_list_the_members_just_joined(
    client: httpx.AsyncClient,
) -> None:
    owner = await register(client)
    ws = await create_workspace(client, owner, "Welcome")
    newcomer = await register(client)
    token = (await invite(client, owner, ws, newcomer.email, "VIEWER"))["invitationToken"]
    body = await gql(
        client,
        "mutation($t: String!) { acceptInvitation(token: $t) { workspace { viewerRole"
        " memberCount members { edges { node { role user { email } } } } } errors { code } } }",
        {"t": token},
        headers=newcomer.headers,
    )
    assert "errors" not in body, body
    workspace = body["data"]["acceptInvitation"]["workspace"]
    assert workspace["viewerRole"] == "VIEWER" and workspace["memberCount"] == 2
    assert [e["node"] for e in workspace["members"]["edges"]] == [
        {"role": "OWNER", "user": {"email": owner.email}},
        {"role": "VIEWER", "user": {"email": newcomer.email}},
    ]


async def test_a_removed_members_open_websocket_loses_access_at_once(
    app: Starlette, client: httpx.AsyncClient
) -> None:
    owner = await register(client)
    ws = await create_workspace(client, owner, "Live")
    member = await join(client, owner, ws, "MEMBER")
    async with websocket(app) as conn:
        gws = GraphQLWebSocket(conn)
        await gws.init({"authorization": f"Bearer {member.access_token}"})
        [before] = await gws.collect(await gws.subscribe(WORKSPACE, {"id": ws}), timeout=5)
        assert before["data"]["workspace"]["viewerRole"] == "MEMBER"
        removed = await gql(client, REMOVE, {"ws": ws, "u": member.user_id}, headers=owner.headers)
        assert removed["data"]["removeMember"]["success"] is True
        [after] = await gws.collect(await gws.subscribe(WORKSPACE, {"id": ws}), timeout=5)
    assert after["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert after.get("data") is None
