"""Audience segments: CRUD with role checks; each segment is embedded by a worker job."""

from __future__ import annotations

import asyncio
import base64
import uuid

import httpx
from arq.worker import Worker
from starlette.applications import Starlette

from app.models import AudienceSegment
from tests.helpers import create_workspace, gql, register

CREATE = """
mutation($ws: ID!, $a: SegmentAttributesInput) {
  createAudienceSegment(workspaceId: $ws, name: "Fintech founders", description: "Early-stage founders", attributes: $a) {
    segment { id name description attributes { industry experienceLevel interests } embedded }
    errors { field code }
  }
}
"""


async def _embedding(app: Starlette, segment_id: str) -> list[float] | None:
    raw = uuid.UUID(base64.b64decode(segment_id).decode().split(":", 1)[1])
    async with app.state.smartcontent.session_factory() as session:
        row = await session.get(AudienceSegment, raw)
    assert row is not None
    return None if row.embedding is None else list(row.embedding)


async def _wait_embedding(app: Starlette, segment_id: str) -> list[float]:
    for _ in range(200):
        vector = await _embedding(app, segment_id)
        if vector is not None:
            return vector
        await asyncio.sleep(0.05)
    raise AssertionError("segment was not embedded")


async def test_segment_crud_and_embedding(
    app: Starlette, client: httpx.AsyncClient, worker: Worker
) -> None:
    owner = await register(client)
    ws = await create_workspace(client, owner)
    attrs = {
        "industry": "fintech",
        "experienceLevel": "expert",
        "interests": ["payments", " ", "compliance"],
    }
    made = await gql(client, CREATE, {"ws": ws, "a": attrs}, headers=owner.headers)
    segment = made["data"]["createAudienceSegment"]["segment"]
    assert segment["attributes"] == {
        "industry": "fintech",
        "experienceLevel": "expert",
        "interests": ["payments", "compliance"],
    }
    first = await _wait_embedding(app, segment["id"])
    assert len(first) == 384
    update = 'mutation($id: ID!) { updateAudienceSegment(id: $id, input: {attributes: {interests: ["lending"]}}) { segment { attributes { industry interests } } errors { code } } }'
    changed = await gql(client, update, {"id": segment["id"]}, headers=owner.headers)
    assert changed["data"]["updateAudienceSegment"]["segment"]["attributes"] == {
        "industry": "fintech",
        "interests": ["lending"],
    }
    second = await _wait_embedding(app, segment["id"])
    assert second != first, "re-embedded after the change"
    listed = await gql(
        client,
        "query($ws: ID!) { audienceSegments(workspaceId: $ws) { edges { node { name embedded } } } }",
        {"ws": ws},
        headers=owner.headers,
    )
    assert listed["data"]["audienceSegments"]["edges"] == [
        {"node": {"name": "Fintech founders", "embedded": True}}
    ]
    deleted = await gql(
        client,
        "mutation($id: ID!) { deleteAudienceSegment(id: $id) { success } }",
        {"id": segment["id"]},
        headers=owner.headers,
    )
    assert deleted["data"]["deleteAudienceSegment"]["success"] is True


async def test_segment_validation_and_roles(client: httpx.AsyncClient) -> None:
    owner = await register(client)
    ws = await create_workspace(client, owner)
    too_many = {"interests": [f"topic {i}" for i in range(51)]}
    bad = await gql(client, CREATE, {"ws": ws, "a": too_many}, headers=owner.headers)
    assert bad["data"]["createAudienceSegment"]["errors"] == [
        {"field": "attributes.interests", "code": "INVALID"}
    ]
    stranger = await register(client)
    denied = await gql(client, CREATE, {"ws": ws, "a": None}, headers=stranger.headers)
    assert denied["errors"][0]["extensions"]["code"] == "FORBIDDEN"
