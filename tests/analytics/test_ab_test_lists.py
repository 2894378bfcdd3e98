"""A/B tests through the API: visitor assignment is stable and the one the documented
rule gives; lists are newest first, per item, in constant statements."""

from __future__ import annotations

import httpx
import pytest
from starlette.applications import Starlette

from app.services.analytics import ab_tests
from tests.analytics.ab_testing import ASSIGN, LIST, add_variants, auth, create
from tests.api.test_query_counts import count_statements
from tests.engagement.conftest import Tenant, make_tenant
from tests.helpers import gql
from tests.teams import gid, uid


@pytest.fixture
async def tenant(analytics_app: Starlette) -> Tenant:
    return await make_tenant(analytics_app, contents=3)


async def test_assignment_is_stable_and_the_one_the_rule_gives(
    client: httpx.AsyncClient, analytics_app: Starlette, tenant: Tenant
) -> None:
    item = tenant.content_ids[0]
    (b,) = await add_variants(analytics_app, tenant, item, "B")
    made = await create(client, tenant, item, [b], split=[0.25, 0.75])
    test_id = made["data"]["createAbTest"]["abTest"]["id"]
    # The test's id is random: pick keys the rule puts in each arm, three of each.
    by_arm: dict[int, list[str]] = {0: [], 1: []}
    for i in range(1000):
        key = f"cookie-{i}"
        arm = by_arm[ab_tests.assign(uid(test_id), key, [0.25, 0.75])]
        if len(arm) < 3:
            arm.append(key)
    labels = []
    for key in by_arm[0] + by_arm[1]:
        body = await gql(client, ASSIGN, {"id": test_id, "key": key}, **auth(tenant, "VIEWER"))
        assert "errors" not in body, body
        got = body["data"]["abTestAssignment"]
        expected = "AB"[ab_tests.assign(uid(test_id), key, [0.25, 0.75])]
        assert got["label"] == expected and got["counted"] is True
        assert got["share"] == (0.25 if expected == "A" else 0.75)
        assert got["variant"] == (None if expected == "A" else {"label": "B"})
        again = await gql(client, ASSIGN, {"id": test_id, "key": key}, **auth(tenant, "VIEWER"))
        assert again["data"]["abTestAssignment"]["label"] == expected
        labels.append(expected)
    assert labels == ["A"] * 3 + ["B"] * 3
    for key in ("", "k" * 257):
        bad = await gql(client, ASSIGN, {"id": test_id, "key": key}, **auth(tenant, "VIEWER"))
        assert bad["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


async def test_listing_is_newest_first_with_constant_statements(
    client: httpx.AsyncClient, analytics_app: Starlette, tenant: Tenant
) -> None:
    made = []
    for item in tenant.content_ids:
        variants = await add_variants(analytics_app, tenant, item, "BC")
        body = await create(client, tenant, item, variants)
        made.append(body["data"]["createAbTest"]["abTest"]["id"])
    ws = gid("Workspace", tenant.workspace_id)
    # A first call warms what is per key, not per request (the key's last-used stamp).
    await gql(client, LIST, {"ws": ws, "n": 1}, **auth(tenant, "VIEWER"))
    counts = []
    for n in (1, 3):
        with count_statements(analytics_app) as statements:
            body = await gql(client, LIST, {"ws": ws, "n": n}, **auth(tenant, "VIEWER"))
        assert "errors" not in body, body
        edges = body["data"]["abTests"]["edges"]
        assert [e["node"]["id"] for e in edges] == made[::-1][:n]
        assert all(
            [a["variant"] and a["variant"]["label"] for a in e["node"]["arms"]] == [None, "B", "C"]
            for e in edges
        )
        counts.append(statements)
    # The page, its arms, their counts, their variants (and the key): whatever the size.
    assert len(counts[0]) == len(counts[1]) <= 5, counts
    one = await gql(
        client,
        LIST,
        {"ws": ws, "c": gid("Content", tenant.content_ids[1]), "n": 10},
        **auth(tenant, "VIEWER"),
    )
    assert [e["node"]["id"] for e in one["data"]["abTests"]["edges"]] == [made[1]]
    # Page by page with the cursors it gives, the same order.
    seen, after = [], None
    for _ in range(4):
        page = await gql(
            client,
            "query($ws: ID!, $after: String) { abTests(workspaceId: $ws, first: 1, after: $after)"
            " { edges { cursor node { id } } pageInfo { hasNextPage } } }",
            {"ws": ws, "after": after},
            **auth(tenant, "VIEWER"),
        )
        edges = page["data"]["abTests"]["edges"]
        seen += [e["node"]["id"] for e in edges]
        if not page["data"]["abTests"]["pageInfo"]["hasNextPage"]:
            break
        after = edges[-1]["cursor"]
    assert seen == made[::-1]
