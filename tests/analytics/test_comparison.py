"""compareContent over the API: figures (contentPerformance's, and first-party events from
the rollups) with ranks, ratios and winners checked against hand-computed values, in all and
per platform; bad id lists refused with clear codes; another workspace's item is NOT_FOUND
without a trace of its data; statements do not grow with the number of items."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from app.models.vocabulary import Platform
from app.services.analytics import comparison, rollups
from app.state import AppState
from tests.analytics.conftest import T0, Seeded, seed_content, seed_target
from tests.analytics.test_performance import gid, snapshot
from tests.api.test_query_counts import count_statements
from tests.helpers import Account, create_workspace, gql, register
from tests.teams import uid

H = timedelta(hours=1)
QUERY = """
query($ids: [ID!]!) { compareContent(ids: $ids) {
  items {
    contentId content { title }
    performance { impressions likes engagementRate platforms { platform likes } }
    events { source views conversions conversionValue }
    standings { contentId value rank }
  }
  metrics {
    metric source best mean winnerId winner { title }
    standings { contentId value rank ratioToBest ratioToMean }
  }
  platforms { platform metrics { metric best winnerId standings { value rank } } }
} }
"""
RECORD = """
mutation($ws: ID!, $events: [EngagementEventInput!]!) {
  recordEngagementEvents(workspaceId: $ws, events: $events) { accepted errors { code } }
}
"""


async def owner_workspace(client: httpx.AsyncClient) -> tuple[Account, uuid.UUID]:
    owner = await register(client)
    return owner, uid(await create_workspace(client, owner))


async def published(
    state: AppState,
    workspace_id: uuid.UUID,
    content_id: uuid.UUID,
    platform: Platform,
    **counts: int,
) -> Seeded:
    """A published target of the item with one snapshot of `counts`."""
    seeded = await seed_target(
        state, workspace_id=workspace_id, content_id=content_id, platform=platform
    )
    await snapshot(state, seeded, platform, T0 + H, 0, **counts)
    return seeded


async def record(
    client: httpx.AsyncClient,
    state: AppState,
    owner: Account,
    workspace_id: uuid.UUID,
    events: list[dict[str, Any]],
) -> None:
    """First-party events through recordEngagementEvents, then the rollup applied."""
    at = (datetime.now(UTC) - H).isoformat()
    body = await gql(
        client,
        RECORD,
        {
            "ws": gid("Workspace", workspace_id),
            "events": [{"id": uuid.uuid4().hex, "occurredAt": at, **e} for e in events],
        },
        headers=owner.headers,
    )
    assert body["data"]["recordEngagementEvents"]["accepted"] == len(events), body
    await rollups.apply_pending(state.session_factory)


async def compare(client: httpx.AsyncClient, account: Account, ids: list[str]) -> dict[str, Any]:
    return await gql(client, QUERY, {"ids": ids}, headers=account.headers)


def by_metric(metrics: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {m["metric"]: m for m in metrics}


async def test_figures_ranks_ratios_and_winners_match_hand_computed_values(
    client: httpx.AsyncClient, state: AppState
) -> None:
    owner, ws = await owner_workspace(client)
    a, b, c = [await seed_content(state, ws, title) for title in ("A", "B", "C")]
    a_x = await published(
        state, ws, a, Platform.X, impressions=1000, likes=50, comments=5, shares=5, clicks=10
    )
    await published(state, ws, b, Platform.X, impressions=500, likes=40, comments=2, shares=3)
    await published(state, ws, b, Platform.MASTODON, likes=10)
    await published(state, ws, c, Platform.X, impressions=200, likes=2)
    content = {"A": gid("Content", a), "B": gid("Content", b), "C": gid("Content", c)}
    await record(
        client,
        state,
        owner,
        ws,
        [
            *({"contentId": content["A"], "type": "VIEW"} for _ in range(3)),
            {"targetId": gid("PostTarget", a_x.target_id), "type": "CONVERSION", "value": 20},
            *({"contentId": content["C"], "type": "VIEW"} for _ in range(3)),
        ],
    )

    body = await compare(client, owner, [content["A"], content["B"], content["C"]])
    assert "errors" not in body, body
    result = body["data"]["compareContent"]
    items = result["items"]
    assert [i["content"]["title"] for i in items] == ["A", "B", "C"]
    # Each item's own figures: contentPerformance's, and its first-party events.
    assert items[1]["performance"]["likes"] == 50
    assert items[1]["performance"]["engagementRate"] == pytest.approx(45 / 500)
    assert [p["platform"] for p in items[1]["performance"]["platforms"]] == ["MASTODON", "X"]
    assert items[0]["events"] == {
        "source": "FIRST_PARTY_EVENTS",
        "views": 3,
        "conversions": 1,
        "conversionValue": 20.0,
    }

    metrics = by_metric(result["metrics"])
    assert list(metrics) == [m.value for m in comparison.M]
    impressions = metrics["IMPRESSIONS"]
    assert impressions["source"] == "PLATFORM_SNAPSHOTS"
    assert [s["value"] for s in impressions["standings"]] == [1000, 500, 200]
    assert [s["rank"] for s in impressions["standings"]] == [1, 2, 3]
    assert impressions["best"] == 1000 and impressions["mean"] == pytest.approx(1700 / 3)
    assert [s["ratioToBest"] for s in impressions["standings"]] == [1.0, 0.5, 0.2]
    assert impressions["standings"][0]["ratioToMean"] == pytest.approx(1000 / (1700 / 3))
    assert impressions["winnerId"] == content["A"] and impressions["winner"]["title"] == "A"
    # Likes in all: A 50, B 40 + 10 (Mastodon) = 50: tied, no winner, ranks 1, 1, 3.
    likes = metrics["LIKES"]
    assert [s["rank"] for s in likes["standings"]] == [1, 1, 3]
    assert likes["winnerId"] is None and likes["winner"] is None
    # Engagement rate over impression-reporting targets: 60/1000, 45/500, 2/200.
    rate = metrics["ENGAGEMENT_RATE"]
    assert [s["value"] for s in rate["standings"]] == pytest.approx([0.06, 0.09, 0.01])
    assert rate["winnerId"] == content["B"]
    # Nobody reports reach: unknown everywhere, no ranks, no winner.
    reach = metrics["REACH"]
    assert reach["best"] is None and reach["mean"] is None and reach["winnerId"] is None
    assert {(s["value"], s["rank"], s["ratioToBest"]) for s in reach["standings"]} == {
        (None, None, None)
    }
    # First-party: views tie (3, 0, 3); the conversion value is A's alone.
    views = metrics["EVENT_VIEWS"]
    assert views["source"] == "FIRST_PARTY_EVENTS"
    assert [s["rank"] for s in views["standings"]] == [1, 3, 1] and views["winnerId"] is None
    value = metrics["EVENT_CONVERSION_VALUE"]
    assert value["winnerId"] == content["A"]
    assert value["standings"][0]["ratioToMean"] == pytest.approx(3.0)
    assert value["standings"][1]["ratioToBest"] == 0.0
    # An item's standings repeat the metrics' column for it.
    assert [s["rank"] for s in items[2]["standings"]][:1] == [3]

    platforms = {p["platform"]: by_metric(p["metrics"]) for p in result["platforms"]}
    assert list(platforms) == ["MASTODON", "X"]
    x = platforms["X"]
    assert [s["value"] for s in x["LIKES"]["standings"]] == [50, 40, 2]
    assert x["LIKES"]["winnerId"] == content["A"]
    assert x["EVENT_CONVERSIONS"]["winnerId"] == content["A"]
    assert [s["value"] for s in x["EVENT_VIEWS"]["standings"]] == [0, 0, 0]  # on the items
    mastodon = platforms["MASTODON"]
    # Only B is on Mastodon: A's and C's figures there are unknown, so no winner.
    assert [s["value"] for s in mastodon["LIKES"]["standings"]] == [None, 10, None]
    assert [s["rank"] for s in mastodon["LIKES"]["standings"]] == [None, 1, None]
    assert mastodon["LIKES"]["best"] == 10 and mastodon["LIKES"]["winnerId"] is None


def test_ranking_rules_without_a_database() -> None:
    a, b, c = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    result = comparison.rank(comparison.M.LIKES, [(a, 4.0), (b, 0.0), (c, 2.0)])
    assert [s.rank for s in result.standings] == [1, 3, 2] and result.winner == a
    assert result.mean == 2.0 and [s.ratio_to_mean for s in result.standings] == [2.0, 0.0, 1.0]
    zeros = comparison.rank(comparison.M.LIKES, [(a, 0.0), (b, 0.0)])
    assert zeros.winner is None and [s.ratio_to_best for s in zeros.standings] == [None, None]
    assert [s.rank for s in zeros.standings] == [1, 1]


async def test_bad_id_lists_are_refused_with_clear_codes(
    client: httpx.AsyncClient, state: AppState
) -> None:
    owner, ws = await owner_workspace(client)
    ids = [gid("Content", await seed_content(state, ws, f"I{i}")) for i in range(11)]
    cases = {
        "TOO_SHORT": ids[:1],
        "TOO_MANY": ids,
        "DUPLICATE": [ids[0], ids[1], ids[0]],
    }
    for reason, given in cases.items():
        body = await compare(client, owner, given)
        assert body["data"] is None, body
        [error] = body["errors"]
        assert error["extensions"]["code"] == "BAD_USER_INPUT"
        assert (error["extensions"]["reason"], error["extensions"]["field"]) == (reason, "ids")
    wrong_type = await compare(client, owner, [ids[0], gid("Workspace", ws)])
    assert wrong_type["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    unknown = await compare(client, owner, [ids[0], gid("Content", uuid.uuid4())])
    assert unknown["errors"][0]["extensions"]["code"] == "NOT_FOUND"


async def test_another_workspaces_item_is_not_found_and_reveals_nothing(
    client: httpx.AsyncClient, state: AppState
) -> None:
    owner, ws = await owner_workspace(client)
    mine = await seed_content(state, ws, "Mine")
    outsider, other_ws = await owner_workspace(client)
    theirs = await seed_content(state, other_ws, "Secret title")
    await published(state, other_ws, theirs, Platform.X, impressions=987654, likes=4321)
    body = await compare(client, owner, [gid("Content", mine), gid("Content", theirs)])
    assert body["data"] is None
    assert body["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    assert body["errors"][0]["message"] == "No such content."
    assert "987654" not in str(body) and "Secret" not in str(body)
    # The outsider sees their own item beside another of theirs.
    second = await seed_content(state, other_ws, "Second")
    own = await compare(client, outsider, [gid("Content", theirs), gid("Content", second)])
    assert "errors" not in own, own
    impressions = by_metric(own["data"]["compareContent"]["metrics"])["IMPRESSIONS"]
    assert impressions["best"] == 987654
    anonymous = await gql(client, QUERY, {"ids": [gid("Content", mine), gid("Content", theirs)]})
    assert anonymous["errors"][0]["extensions"]["code"] in ("UNAUTHENTICATED", "NOT_FOUND")


async def test_statements_do_not_grow_with_the_number_of_items(
    client: httpx.AsyncClient, state: AppState, analytics_app: Starlette
) -> None:
    counts = {}
    for n in (2, 10):
        owner, ws = await owner_workspace(client)
        ids = []
        for i in range(n):
            item = await seed_content(state, ws, f"Item {i}")
            platform = (Platform.X, Platform.MASTODON)[i % 2]
            await published(state, ws, item, platform, impressions=100 * (i + 1), likes=i)
            ids.append(gid("Content", item))
        document = QUERY.replace(
            "performance {", "performance { history { likes } content { title } "
        )
        with count_statements(analytics_app) as statements:
            body = await compare(client, owner, ids)
        assert "errors" not in body, body
        assert len(body["data"]["compareContent"]["items"]) == n
        with count_statements(analytics_app) as with_history:
            body = await gql(client, document, {"ids": ids}, headers=owner.headers)
        assert "errors" not in body, body
        counts[n] = (len(statements), len(with_history))
    assert counts[2] == counts[10], counts
