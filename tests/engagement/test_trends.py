"""engagementTrends: per hour, day and week from the rollups, equal to counts made by hand
from the events sent; empty buckets are zeros; a platform filter; bounds refused."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from starlette.applications import Starlette

from app.models.vocabulary import TrendInterval
from app.services.analytics import rollups
from app.services.analytics.trends import bucket_floor
from tests.engagement.conftest import Tenant, event, post_events, state_of
from tests.helpers import gql
from tests.teams import gid

QUERY = """
query($ws: ID!, $interval: TrendInterval!, $from: DateTime!, $to: DateTime!, $platform: Platform) {
  engagementTrends(workspaceId: $ws, interval: $interval, from: $from, to: $to, platform: $platform) {
    bucketStart views clicks likes impressions conversions conversionValue engagementRate ctr
  }
}
"""
# A Wednesday noon, well in the past: the events are the only ones in their buckets.
T = datetime(2026, 11, 4, 12, 0, tzinfo=UTC)


async def trends(
    client: httpx.AsyncClient,
    tenant: Tenant,
    interval: str,
    start: datetime,
    end: datetime,
    platform: str | None = None,
) -> Any:
    body = await gql(
        client,
        QUERY,
        {
            "ws": gid("Workspace", tenant.workspace_id),
            "interval": interval,
            "from": start.isoformat(),
            "to": end.isoformat(),
            "platform": platform,
        },
        headers={"Authorization": f"Bearer {tenant.keys['VIEWER']}"},
    )
    return body


async def test_trends_per_hour_day_and_week_match_the_events_sent(
    client: httpx.AsyncClient, app: Starlette, tenant: Tenant
) -> None:
    content = tenant.content_ids[1]
    sent = [
        # Hour 12: 3 impressions, 1 like, 1 click, on the content itself.
        *(
            event(content, type="IMPRESSION", occurredAt=(T + timedelta(minutes=m)).isoformat())
            for m in (1, 2, 3)
        ),
        event(content, type="LIKE", occurredAt=(T + timedelta(minutes=5)).isoformat()),
        event(content, type="CLICK", occurredAt=(T + timedelta(minutes=6)).isoformat()),
        # Hour 14: a conversion worth 12.5 and a view, on the X target.
        event(
            None,
            targetId=str(tenant.target_id),
            type="CONVERSION",
            value=12.5,
            occurredAt=(T + timedelta(hours=2, minutes=1)).isoformat(),
        ),
        event(
            None,
            targetId=str(tenant.target_id),
            type="VIEW",
            occurredAt=(T + timedelta(hours=2, minutes=2)).isoformat(),
        ),
        # Two days later (same week): one impression.
        event(content, type="IMPRESSION", occurredAt=(T + timedelta(days=2)).isoformat()),
    ]
    response = await post_events(client, tenant, sent)
    assert response.status_code == 200, response.text
    assert response.json()["accepted"] == len(sent)
    await rollups.apply_pending(state_of(app).session_factory)

    body = await trends(client, tenant, "HOUR", T, T + timedelta(hours=3))
    assert "errors" not in body, body
    hours = body["data"]["engagementTrends"]
    assert [h["bucketStart"] for h in hours] == [
        (T + timedelta(hours=i)).isoformat() for i in range(3)
    ]
    assert (hours[0]["impressions"], hours[0]["likes"], hours[0]["clicks"]) == (3, 1, 1)
    assert hours[0]["engagementRate"] == 1 / 3 and hours[0]["ctr"] == 1 / 3
    assert hours[1] == {
        "bucketStart": (T + timedelta(hours=1)).isoformat(),
        "views": 0,
        "clicks": 0,
        "likes": 0,
        "impressions": 0,
        "conversions": 0,
        "conversionValue": 0.0,
        "engagementRate": None,
        "ctr": None,
    }
    assert (hours[2]["conversions"], hours[2]["conversionValue"], hours[2]["views"]) == (1, 12.5, 1)

    days = (await trends(client, tenant, "DAY", T, T + timedelta(days=3)))["data"][
        "engagementTrends"
    ]
    # From the bucket holding `from` (that day) to the one holding `to`: four days.
    assert [d["impressions"] for d in days] == [3, 0, 1, 0]
    assert days[0]["bucketStart"] == bucket_floor(T, TrendInterval.DAY).isoformat()

    weeks = (await trends(client, tenant, "WEEK", T, T + timedelta(days=3)))["data"][
        "engagementTrends"
    ]
    (week,) = weeks
    assert week["bucketStart"] == datetime(2026, 11, 2, tzinfo=UTC).isoformat()  # Monday
    assert (week["impressions"], week["conversions"], week["views"]) == (4, 1, 1)

    # Only the X target's events: the conversion and the view.
    x_only = (await trends(client, tenant, "DAY", T, T + timedelta(days=1), "X"))["data"]
    assert [
        (d["conversions"], d["views"], d["impressions"]) for d in x_only["engagementTrends"]
    ] == [(1, 1, 0), (0, 0, 0)]


async def test_bounds_are_refused(client: httpx.AsyncClient, tenant: Tenant) -> None:
    for start, end in ((T, T), (T, T + timedelta(hours=1001))):
        body = await trends(client, tenant, "HOUR", start, end)
        assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT", body
