"""Helpers for the workspace, API-key, audit and privacy tests (clients' view of teams)."""

from __future__ import annotations

import base64
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from httpx_ws import aconnect_ws
from httpx_ws.transport import ASGIWebSocketTransport
from starlette.applications import Starlette

from app.state import AppState
from tests.helpers import Account, gql, register

INVITE = """
mutation($ws: ID!, $email: String!, $role: Role!) {
  inviteMember(workspaceId: $ws, email: $email, role: $role) {
    invitation { id email role expiresAt acceptedAt }
    invitationToken
    errors { field code message }
  }
}
"""
ACCEPT = """
mutation($t: String!) {
  acceptInvitation(token: $t) { workspace { id name viewerRole } errors { field code message } }
}
"""
UPDATE_ROLE = """
mutation($ws: ID!, $u: ID!, $r: Role!) {
  updateMemberRole(workspaceId: $ws, userId: $u, role: $r) {
    member { role user { id email } } errors { field code message }
  }
}
"""
REMOVE = """
mutation($ws: ID!, $u: ID!) {
  removeMember(workspaceId: $ws, userId: $u) { success errors { field code message } }
}
"""
TRANSFER = """
mutation($ws: ID!, $u: ID!) {
  transferOwnership(workspaceId: $ws, userId: $u) {
    workspace { id viewerRole } errors { field code message }
  }
}
"""
CREATE_KEY = """
mutation($ws: ID!, $name: String!, $r: Role!, $e: DateTime) {
  createApiKey(workspaceId: $ws, name: $name, role: $r, expiresAt: $e) {
    apiKey { id name role prefix createdAt expiresAt revokedAt lastUsedAt }
    secret
    errors { field code message }
  }
}
"""
REVOKE_KEY = """
mutation($id: ID!) {
  revokeApiKey(id: $id) { apiKey { id revokedAt } secret errors { field code message } }
}
"""
WORKSPACE = "query($id: ID!) { workspace(id: $id) { id name viewerRole memberCount } }"


def gid(type_name: str, value: uuid.UUID | str) -> str:
    return base64.b64encode(f"{type_name}:{value}".encode()).decode()


def uid(global_id: str) -> uuid.UUID:
    return uuid.UUID(base64.b64decode(global_id).decode().split(":", 1)[1])


def state_of(app: Starlette) -> AppState:
    state: AppState = app.state.smartcontent
    return state


def error_code(body: dict[str, Any]) -> str | None:
    """`extensions.code` of the first GraphQL error, or None when there is none."""
    errors = body.get("errors") or []
    return errors[0]["extensions"]["code"] if errors else None


async def invite(
    client: httpx.AsyncClient,
    inviter: Account | dict[str, str],
    workspace_id: str,
    email: str,
    role: str,
) -> dict[str, Any]:
    headers = inviter.headers if isinstance(inviter, Account) else inviter
    body = await gql(
        client, INVITE, {"ws": workspace_id, "email": email, "role": role}, headers=headers
    )
    assert "errors" not in body, body
    payload: dict[str, Any] = body["data"]["inviteMember"]
    return payload


async def accept(client: httpx.AsyncClient, account: Account, token: str) -> dict[str, Any]:
    body = await gql(client, ACCEPT, {"t": token}, headers=account.headers)
    assert "errors" not in body, body
    payload: dict[str, Any] = body["data"]["acceptInvitation"]
    return payload


async def join(
    client: httpx.AsyncClient, owner: Account, workspace_id: str, role: str, name: str = "Joiner"
) -> Account:
    """Register a new user and bring them into the workspace through an invitation."""
    account = await register(client, name=name)
    invited = await invite(client, owner, workspace_id, account.email, role)
    assert invited["errors"] == [], invited
    accepted = await accept(client, account, invited["invitationToken"])
    assert accepted["errors"] == [], accepted
    return account


async def create_key(
    client: httpx.AsyncClient,
    creator: Account | dict[str, str],
    workspace_id: str,
    role: str,
    name: str = "partner",
    expires_at: str | None = None,
) -> dict[str, Any]:
    headers = creator.headers if isinstance(creator, Account) else creator
    body = await gql(
        client,
        CREATE_KEY,
        {"ws": workspace_id, "name": name, "r": role, "e": expires_at},
        headers=headers,
    )
    assert "errors" not in body, body
    payload: dict[str, Any] = body["data"]["createApiKey"]
    return payload


@asynccontextmanager
async def websocket(app: Starlette) -> AsyncIterator[Any]:
    async with (
        httpx.AsyncClient(
            transport=ASGIWebSocketTransport(app), base_url="http://testserver"
        ) as client,
        aconnect_ws(
            "http://testserver/graphql", client, subprotocols=["graphql-transport-ws"]
        ) as ws,
    ):
        yield ws
