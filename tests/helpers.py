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
