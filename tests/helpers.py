"""Helpers for talking to the API as clients do."""

from __future__ import annotations

import uuid
from typing import Any

import httpx


async def gql(
    client: httpx.AsyncClient,
    query: str,
    variables: dict[str, Any] | None = None,
    **kwargs: Any,
) -> dict[str, Any]:
    """POST one operation; returns the JSON body (asserting HTTP 200)."""
    response = await client.post(
        "/graphql", json={"query": query, "variables": variables or {}}, **kwargs
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def unique(prefix: str = "x") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


class GraphQLWebSocket:
    """A minimal graphql-transport-ws client over an httpx-ws session."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self._next_id = 0

    async def init(self, payload: dict[str, Any] | None = None) -> dict[str, Any]:
        await self.ws.send_json({"type": "connection_init", "payload": payload or {}})
        ack: dict[str, Any] = await self.ws.receive_json(timeout=5)
        assert ack["type"] == "connection_ack", ack
        return ack

    async def subscribe(self, query: str, variables: dict[str, Any] | None = None) -> str:
        self._next_id += 1
        op_id = str(self._next_id)
        await self.ws.send_json(
            {
                "id": op_id,
                "type": "subscribe",
                "payload": {"query": query, "variables": variables or {}},
            }
        )
        return op_id

    async def receive(self, timeout: float = 10) -> dict[str, Any]:
        message: dict[str, Any] = await self.ws.receive_json(timeout=timeout)
        return message

    async def collect(self, op_id: str, timeout: float = 15) -> list[dict[str, Any]]:
        """All `next` payloads of `op_id` until its `complete` (or an `error`)."""
        out: list[dict[str, Any]] = []
        while True:
            message = await self.receive(timeout)
            if message.get("id") != op_id:
                continue
            if message["type"] == "next":
                out.append(message["payload"])
            elif message["type"] == "complete":
                return out
            elif message["type"] == "error":
                out.append({"errors": message["payload"]})
                return out


PASSWORD = "correct horse battery staple 42"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


class Account:
    """A registered user as a client sees it."""

    def __init__(self, email: str, password: str, payload: dict[str, Any]) -> None:
        self.email = email
        self.password = password
        self.access_token: str = payload["accessToken"]
        self.refresh_token: str = payload["refreshToken"]
        self.user_id: str = payload["user"]["id"]

    @property
    def headers(self) -> dict[str, str]:
        return bearer(self.access_token)


REGISTER = """
mutation($input: RegisterInput!) {
  register(input: $input) {
    accessToken refreshToken user { id email name } errors { field code message }
  }
}
"""


async def register(
    client: httpx.AsyncClient,
    email: str | None = None,
    password: str = PASSWORD,
    name: str = "Test User",
) -> Account:
    email = email or f"{unique('user')}@example.com"
    body = await gql(
        client, REGISTER, {"input": {"email": email, "password": password, "name": name}}
    )
    payload = body["data"]["register"]
    assert payload["errors"] == [], payload
    return Account(email, password, payload)


async def create_workspace(client: httpx.AsyncClient, account: Account, name: str = "Acme") -> str:
    body = await gql(
        client,
        "mutation($i: CreateWorkspaceInput!) {"
        " createWorkspace(input: $i) { workspace { id } errors { code } } }",
        {"i": {"name": name}},
        headers=account.headers,
    )
    payload = body["data"]["createWorkspace"]
    assert payload["errors"] == [], payload
    workspace_id: str = payload["workspace"]["id"]
    return workspace_id


PING = """
mutation($ws: ID!, $m: String!, $d: Int!) {
  ping(workspaceId: $ws, message: $m, delayMs: $d) {
    job { id kind status } errors { field code message }
  }
}
"""


async def ping(
    client: httpx.AsyncClient,
    account: Account,
    workspace_id: str,
    message: str = "hello",
    delay_ms: int = 0,
) -> dict[str, Any]:
    body = await gql(
        client, PING, {"ws": workspace_id, "m": message, "d": delay_ms}, headers=account.headers
    )
    payload: dict[str, Any] = body["data"]["ping"]
    return payload
