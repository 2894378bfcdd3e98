"""campaignPerformance over the API: totals from platform snapshots and from first-party
events kept apart, per platform, items ranked (top and bottom), published counts, the
daily series and the campaign's dates, all against hand-computed values; items outside the
campaign or deleted do not count; members of the campaign's workspace only; statements do
not grow with the campaign."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import update
from starlette.applications import Starlette

from app.models import Campaign, Content
from app.models.vocabulary import Platform
from app.services.analytics import rollups
from app.state import AppState
from tests.analytics.conftest import T0, seed_content, seed_target
from tests.analytics.test_comparison import RECORD, owner_workspace
from tests.analytics.test_performance import gid, snapshot
from tests.api.test_query_counts import count_statements
from tests.helpers import Account, gql, register

D = timedelta(days=1)
QUERY = """
query($id: ID!, $by: PerformanceMetric!) { campaignPerformance(campaignId: $id, rankBy: $by) {
  campaign { name status } startDate endDate objectives rankedBy
  figures { source impressions likes comments engagementRate }
  events { source views likes conversions conversionValue }
  platforms { platform publishedPosts figures { impressions likes } events { likes } }
  contents { contentId rank value publishedPosts firstPublishedAt content { title }
             performance { likes } events { views } }
  top(first: 1) { content { title } }
  bottom { content { title } }
  publishedPosts publishedContents firstPublishedAt lastPublishedAt
  daily { day postsPublished figures { impressions likes } events { views likes conversions } }
} }
"""


async def make_campaign(state: AppState, workspace_id: uuid.UUID, **fields: Any) -> uuid.UUID:
    campaign_id = uuid.uuid4()
    async with state.session_factory() as session, session.begin():
        session.add(Campaign(id=campaign_id, workspace_id=workspace_id, name="Spring", **fields))
    return campaign_id


async def in_campaign(
    state: AppState, workspace_id: uuid.UUID, campaign_id: uuid.UUID, title: str
) -> uuid.UUID:
    content_id = await seed_content(state, workspace_id, title)
    async with state.session_factory() as session, session.begin():
        await session.execute(
            update(Content).where(Content.id == content_id).values(campaign_id=campaign_id)
        )
    return content_id


async def published(
    state: AppState,
    workspace_id: uuid.UUID,
    content_id: uuid.UUID,
    platform: Platform,
    at: datetime,
    **counts: int,
) -> uuid.UUID:
    seeded = await seed_target(
        state, workspace_id=workspace_id, content_id=content_id, platform=platform, published_at=at
    )
    await snapshot(state, seeded, platform, at + timedelta(hours=6), 1, **counts)
    return seeded.target_id


async def record(
    client: httpx.AsyncClient,
    state: AppState,
    owner: Account,
    workspace_id: uuid.UUID,
    events: list[dict[str, Any]],
) -> None:
    body = await gql(
        client,
        RECORD,
        {
            "ws": gid("Workspace", workspace_id),
            "events": [{"id": uuid.uuid4().hex, **e} for e in events],
        },
        headers=owner.headers,
    )
    assert body["data"]["recordEngagementEvents"]["accepted"] == len(events), body
    await rollups.apply_pending(state.session_factory)


async def performance_of(
    client: httpx.AsyncClient, account: Account, campaign_id: uuid.UUID, by: str
) -> dict[str, Any]:
    body = await gql(
        client, QUERY, {"id": gid("Campaign", campaign_id), "by": by}, headers=account.headers
    )
    return body


async def test_totals_platforms_ranking_and_days_match_hand_computed_values(
    client: httpx.AsyncClient, state: AppState
) -> None:
    owner, ws = await owner_workspace(client)
    campaign = await make_campaign(
        state,
        ws,
        start_date=date(2026, 11, 1),
        end_date=date(2026, 11, 5),
        objectives=["awareness"],
        status="ACTIVE",
    )
    a, b, c = [await in_campaign(state, ws, campaign, t) for t in ("A", "B", "C")]
    deleted = await in_campaign(state, ws, campaign, "Deleted")
    outside = await seed_content(state, ws, "Outside")
    await published(state, ws, a, Platform.X, T0, impressions=1000, likes=30)
    await published(state, ws, a, Platform.MASTODON, T0 + D, likes=5)
    b_x = await published(state, ws, b, Platform.X, T0 + D, impressions=400, likes=20, comments=4)
    await published(state, ws, deleted, Platform.X, T0, impressions=5000, likes=500)
    await published(state, ws, outside, Platform.X, T0, impressions=7000, likes=700)
    async with state.session_factory() as session, session.begin():
        await session.execute(
            update(Content).where(Content.id == deleted).values(deleted_at=datetime.now(UTC))
        )
    day3, day4 = (T0 + D).isoformat(), (T0 + 2 * D).isoformat()
    await record(
        client,
        state,
        owner,
        ws,
        [
            *({"contentId": gid("Content", a), "type": "VIEW", "occurredAt": day4} for _ in "ab"),
            {"targetId": gid("PostTarget", b_x), "type": "LIKE", "occurredAt": day4},
            *({"contentId": gid("Content", c), "type": "VIEW", "occurredAt": day3} for _ in "abcd"),
            {
                "contentId": gid("Content", c),
                "type": "CONVERSION",
                "value": 7.5,
                "occurredAt": day3,
            },
            {"contentId": gid("Content", outside), "type": "VIEW", "occurredAt": day3},
        ],
    )

    body = await performance_of(client, owner, campaign, "ENGAGEMENT_RATE")
    assert "errors" not in body, body
    result = body["data"]["campaignPerformance"]
    assert result["campaign"] == {"name": "Spring", "status": "ACTIVE"}
    assert (result["startDate"], result["endDate"]) == ("2026-11-01", "2026-11-05")
    assert result["objectives"] == ["awareness"] and result["rankedBy"] == "ENGAGEMENT_RATE"
    figures = result["figures"]
    assert figures["source"] == "PLATFORM_SNAPSHOTS"
    assert (figures["impressions"], figures["likes"], figures["comments"]) == (1400, 55, 4)
    assert figures["engagementRate"] == pytest.approx((30 + 24) / 1400)
    assert result["events"] == {
        "source": "FIRST_PARTY_EVENTS",
        "views": 6,
        "likes": 1,
        "conversions": 1,
        "conversionValue": 7.5,
    }
    assert result["platforms"] == [
        {
            "platform": "MASTODON",
            "publishedPosts": 1,
            "figures": {"impressions": None, "likes": 5},
            "events": {"likes": 0},
        },
        {
            "platform": "X",
            "publishedPosts": 2,
            "figures": {"impressions": 1400, "likes": 50},
            "events": {"likes": 1},
        },
    ]
    # By engagement rate: B 24/400, A 30/1000 (Mastodon reports no impressions), C unknown.
    contents = result["contents"]
    assert [i["content"]["title"] for i in contents] == ["B", "A", "C"]
    assert [i["rank"] for i in contents] == [1, 2, None]
    assert [i["value"] for i in contents] == pytest.approx([0.06, 0.03, None])
    assert [i["publishedPosts"] for i in contents] == [1, 2, 0]
    assert contents[1]["firstPublishedAt"] == T0.isoformat()
    assert contents[1]["performance"]["likes"] == 35 and contents[1]["events"]["views"] == 2
    assert [i["content"]["title"] for i in result["top"]] == ["B"]
    assert [i["content"]["title"] for i in result["bottom"]] == ["A", "B"]
    assert (result["publishedPosts"], result["publishedContents"]) == (3, 2)
    assert result["firstPublishedAt"] == T0.isoformat()
    assert result["lastPublishedAt"] == (T0 + D).isoformat()
    days = {d["day"]: d for d in result["daily"]}
    assert list(days) == [f"2026-11-0{i}" for i in range(1, 6)]
    for empty in ("2026-11-01", "2026-11-05"):
        assert days[empty] == {
            "day": empty,
            "postsPublished": 0,
            "figures": {"impressions": None, "likes": None},
            "events": {"views": 0, "likes": 0, "conversions": 0},
        }
    assert days["2026-11-02"]["postsPublished"] == 1
    assert days["2026-11-02"]["figures"] == {"impressions": 1000, "likes": 30}
    assert days["2026-11-03"]["postsPublished"] == 2
    assert days["2026-11-03"]["figures"] == {"impressions": 400, "likes": 25}
    assert days["2026-11-03"]["events"] == {"views": 4, "likes": 0, "conversions": 1}
    assert days["2026-11-04"]["events"] == {"views": 2, "likes": 1, "conversions": 0}

    by_views = await performance_of(client, owner, campaign, "EVENT_VIEWS")
    ranked = by_views["data"]["campaignPerformance"]["contents"]
    assert [(i["content"]["title"], i["rank"], i["value"]) for i in ranked] == [
        ("C", 1, 4),
        ("A", 2, 2),
        ("B", 3, 0),
    ]


async def test_an_empty_campaign_answers_zeros_and_no_days(
    client: httpx.AsyncClient, state: AppState
) -> None:
    owner, ws = await owner_workspace(client)
    campaign = await make_campaign(state, ws)
    body = await performance_of(client, owner, campaign, "LIKES")
    assert "errors" not in body, body
    result = body["data"]["campaignPerformance"]
    assert result["contents"] == [] and result["daily"] == [] and result["platforms"] == []
    assert result["publishedPosts"] == 0 and result["firstPublishedAt"] is None
    assert result["figures"]["likes"] is None and result["events"]["views"] == 0


async def test_only_members_of_the_campaigns_workspace(
    client: httpx.AsyncClient, state: AppState
) -> None:
    owner, ws = await owner_workspace(client)
    campaign = await make_campaign(state, ws)
    item = await in_campaign(state, ws, campaign, "Secret launch")
    await published(state, ws, item, Platform.X, T0, impressions=987654, likes=3)
    assert (await performance_of(client, owner, campaign, "LIKES"))["data"] is not None
    outsider = await register(client)
    await owner_workspace(client)
    body = await performance_of(client, outsider, campaign, "LIKES")
    assert body["data"] is None
    assert body["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    assert "987654" not in str(body) and "Secret" not in str(body)
    unknown = await performance_of(client, owner, uuid.uuid4(), "LIKES")
    assert unknown["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    anonymous = await gql(client, QUERY, {"id": gid("Campaign", campaign), "by": "LIKES"})
    assert anonymous["errors"][0]["extensions"]["code"] in ("UNAUTHENTICATED", "NOT_FOUND")


async def test_statements_do_not_grow_with_the_campaign(
    client: httpx.AsyncClient, state: AppState, analytics_app: Starlette
) -> None:
    counts = {}
    for n in (2, 8):
        owner, ws = await owner_workspace(client)
        campaign = await make_campaign(state, ws)
        for i in range(n):
            item = await in_campaign(state, ws, campaign, f"Item {i}")
            platform = (Platform.X, Platform.MASTODON)[i % 2]
            await published(state, ws, item, platform, T0 + i * D, impressions=10 * i, likes=i)
        with count_statements(analytics_app) as statements:
            body = await performance_of(client, owner, campaign, "LIKES")
        assert "errors" not in body, body
        assert len(body["data"]["campaignPerformance"]["contents"]) == n
        counts[n] = len(statements)
    assert counts[2] == counts[8], counts
