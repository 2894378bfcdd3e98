"""`recordEngagementEvents`: the batch endpoint's checks and report over GraphQL."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from starlette.applications import Starlette

from tests.conftest import Servers, make_settings, running_app
from tests.engagement.conftest import Tenant, count_raw, make_tenant
from tests.helpers import gql
from tests.teams import gid

RECORD = """
mutation($ws: ID!, $events: [EngagementEventInput!]!) {
  recordEngagementEvents(workspaceId: $ws, events: $events) {
    accepted duplicate refused refusals { index id reason } errors { field code message }
  }
}
"""


def _event(content_id: str | None, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": uuid.uuid4().hex,
        "contentId": content_id,
        "type": "CLICK",
        "occurredAt": (datetime.now(UTC) - timedelta(hours=3)).isoformat(),
    }
    body.update(overrides)
    return body


async def _record(
    client: httpx.AsyncClient, tenant: Tenant, events: list[dict[str, Any]], role: str = "MEMBER"
) -> dict[str, Any]:
    body = await gql(
        client,
        RECORD,
        {"ws": gid("Workspace", tenant.workspace_id), "events": events},
        headers={"Authorization": f"Bearer {tenant.keys[role]}"},
    )
    assert "errors" not in body, body
    payload: dict[str, Any] = body["data"]["recordEngagementEvents"]
    return payload


async def test_records_once_and_refuses_with_reasons(
    app: Starlette, client: httpx.AsyncClient, tenant: Tenant, other: Tenant
) -> None:
    content = gid("Content", tenant.content_ids[0])
    good = [
        _event(content, value=2.5, properties={"source": "app"}),
        _event(None, targetId=gid("PostTarget", tenant.target_id), type="SHARE", variant="B"),
    ]
    bad = [
        _event(gid("Content", other.content_ids[0])),  # another workspace's content
        _event(gid("Workspace", tenant.workspace_id)),  # not a content id
        _event(content, id=""),
        _event(content, occurredAt=(datetime.now(UTC) + timedelta(days=1)).isoformat()),
        _event(content, properties=["not", "an", "object"]),
        _event(content, variant="control"),
    ]
    first = await _record(client, tenant, [*good, good[0], *bad])
    assert (first["accepted"], first["duplicate"], first["refused"]) == (2, 1, 6), first
    assert [r["index"] for r in first["refusals"]] == [3, 4, 5, 6, 7, 8]
    assert "no such content" in first["refusals"][0]["reason"]
    assert first["errors"] == []
    again = await _record(client, tenant, good)
    assert (again["accepted"], again["duplicate"]) == (0, 2)
    assert await count_raw(app) == 2


async def test_too_many_events_is_a_payload_error(servers: Servers) -> None:
    async with running_app(make_settings(servers, ingest_max_events=3)) as small:
        tenant = await make_tenant(small, contents=1)
        transport = httpx.ASGITransport(app=small)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            content = gid("Content", tenant.content_ids[0])
            payload = await _record(client, tenant, [_event(content) for _ in range(4)])
        assert payload["errors"][0]["code"] == "TOO_MANY"
        assert payload["accepted"] == 0
        assert await count_raw(small) == 0
