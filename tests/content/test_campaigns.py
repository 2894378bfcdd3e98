"""Campaign validation and status lifecycle."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.helpers import Account, create_workspace, gql, register

CREATE = """
mutation($ws: ID!, $n: String!, $s: Date, $e: Date, $b: Decimal) {
  createCampaign(workspaceId: $ws, name: $n, startDate: $s, endDate: $e, budget: $b) {
    campaign { id status } errors { field code message }
  }
}"""
UPDATE = """
mutation($id: ID!, $i: CampaignInput!) {
  updateCampaign(id: $id, input: $i) { campaign { status endDate } errors { field code message } }
}"""


async def _create(
    client: httpx.AsyncClient, owner: Account, ws: str, **extra: Any
) -> dict[str, Any]:
    body = await gql(client, CREATE, {"ws": ws, "n": "Spring", **extra}, headers=owner.headers)
    payload: dict[str, Any] = body["data"]["createCampaign"]
    return payload


async def _update(
    client: httpx.AsyncClient, owner: Account, campaign_id: str, **fields: Any
) -> dict[str, Any]:
    body = await gql(client, UPDATE, {"id": campaign_id, "i": fields}, headers=owner.headers)
    assert "errors" not in body, body
    payload: dict[str, Any] = body["data"]["updateCampaign"]
    return payload


async def test_every_problem_is_reported_at_once(client: httpx.AsyncClient) -> None:
    owner = await register(client)
    ws = await create_workspace(client, owner)
    made = await _create(client, owner, ws, n="", b="-5", s="2026-05-10", e="2026-05-01")
    assert [(e["field"], e["code"]) for e in made["errors"]] == [
        ("name", "INVALID"),
        ("budget", "NEGATIVE"),
        ("endDate", "BEFORE_START"),
    ]
    assert made["campaign"] is None
    ok = await _create(client, owner, ws, s="2026-05-01", e="2026-05-31")
    both = await _update(client, owner, ok["campaign"]["id"], budget="-1", endDate="2026-04-01")
    assert [(e["field"], e["code"]) for e in both["errors"]] == [
        ("budget", "NEGATIVE"),
        ("endDate", "BEFORE_START"),
    ]


@pytest.mark.parametrize(
    ("path", "refused"),
    [
        (["ACTIVE", "PAUSED", "ACTIVE", "COMPLETED"], ["DRAFT", "ACTIVE", "PAUSED"]),
        (["ACTIVE", "PAUSED", "COMPLETED"], ["DRAFT"]),
    ],
)
async def test_status_follows_the_lifecycle(
    client: httpx.AsyncClient, path: list[str], refused: list[str]
) -> None:
    owner = await register(client)
    ws = await create_workspace(client, owner)
    campaign_id = (await _create(client, owner, ws))["campaign"]["id"]
    assert (await _update(client, owner, campaign_id, status="COMPLETED"))["errors"] == [
        {
            "field": "status",
            "code": "INVALID_TRANSITION",
            "message": "A DRAFT campaign cannot become COMPLETED (allowed: ACTIVE).",
        }
    ]
    for status in path:
        moved = await _update(client, owner, campaign_id, status=status)
        assert moved["errors"] == [] and moved["campaign"]["status"] == status
    # Completed is final; setting the status it has is no change.
    for status in refused:
        back = await _update(client, owner, campaign_id, status=status)
        assert [e["code"] for e in back["errors"]] == ["INVALID_TRANSITION"], status
    same = await _update(client, owner, campaign_id, status="COMPLETED")
    assert same["errors"] == [] and same["campaign"]["status"] == "COMPLETED"
