"""analyticsDashboard against counts made by hand (tests/analytics/dashboard_data.py): both
sources, partial days at both edges, a late event, unknown platform counters, the previous
period, an empty workspace, another workspace's data, bounds, and a statement count that
does not grow with the number of contents."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import httpx
from starlette.applications import Starlette

from app.models.vocabulary import Platform
from app.services.analytics import dashboard_rows as dashboard
from app.services.analytics import rollups
from tests.analytics.conftest import seed_content, seed_target
from tests.analytics.dashboard_data import SINCE, UNTIL, at, build, build_other, query, snapshot
from tests.api.test_query_counts import count_statements
from tests.engagement.conftest import event, make_tenant, post_events
from tests.teams import gid


async def test_figures_match_the_hand_counts(
    analytics_app: Starlette, client: httpx.AsyncClient
) -> None:
    world = await build(analytics_app, client)
    await build_other(analytics_app, client)
    body = await query(client, world.tenant)
    assert "errors" not in body, body
    d = body["data"]["analyticsDashboard"]
    c0, c1, c2 = (gid("Content", c) for c in world.contents)

    # Platform: t1 (X, latest snapshot), t2 (Mastodon, no impressions), t5 (nothing yet).
    assert d["platform"] == {
        "posts": 3,
        "contentItems": 3,
        "impressions": 1000,
        "views": None,
        "likes": 37,
        "comments": 6,
        "shares": 7,
        "clicks": 20,
        "conversions": None,
        "conversionValue": None,
        "engagements": 50,
        "engagementRate": 40 / 1000,  # only t1 reports impressions
        "ctr": 20 / 1000,
    }
    # First-party: hours starting in [from, to), the late comment included.
    assert d["firstParty"] == {
        "posts": None,
        "contentItems": None,
        "impressions": 5,
        "views": 0,
        "likes": 1,
        "comments": 1,
        "shares": 1,
        "clicks": 1,
        "conversions": 1,
        "conversionValue": 12.5,
        "engagements": 3,
        "engagementRate": 3 / 5,
        "ctr": 1 / 5,
    }
    combined = d["combined"]
    assert (combined["posts"], combined["impressions"], combined["engagements"]) == (3, 1005, 53)
    assert combined["clicks"] == 21 and combined["engagementRate"] == 43 / 1005
    assert combined["ctr"] == 21 / 1005
    assert (d["posts"], d["impressions"], d["engagementRate"]) == (3, 1005, 43 / 1005)
    assert d["previousFrom"] == datetime(2026, 11, 7, 18, tzinfo=UTC).isoformat()

    assert d["platforms"] == [
        {"platform": "MASTODON", "impressions": 2, "engagements": 11, "engagementRate": 0.5},
        {"platform": "X", "impressions": 1003, "engagements": 40, "engagementRate": 40 / 1003},
    ]
    assert d["topPlatform"]["platform"] == "X"  # Mastodon's 50% is on 2 impressions
    assert [
        (p["contentId"], p["title"], p["platforms"], p["impressions"], p["engagements"])
        for p in d["topPerformers"]
    ] == [
        (c0, "Alpha", ["X"], 1003, 41),
        (c1, "=HYPERLINK('http://evil.example','x')", ["MASTODON"], 2, 11),
        (c2, "Gamma", ["X"], 0, 1),
    ]
    assert d["topPerformers"][0]["content"] == {"id": c0, "title": "Alpha"}

    # Previous period: t4 (400 impressions, 8 likes, 4 clicks); 4 + 1 (05:30 on the 10th)
    # first-party impressions and a like.
    previous = d["previous"]
    assert (previous["posts"], previous["impressions"], previous["engagements"]) == (1, 405, 9)
    change = d["change"]
    assert change["posts"] == {"current": 3, "previous": 1, "relative": 2.0}
    assert change["impressions"]["relative"] == (1005 - 405) / 405
    assert change["clicks"] == {"current": 21, "previous": 4, "relative": 17 / 4}
    assert change["engagementRate"]["previous"] == 9 / 405


async def test_unknown_counters_stay_unknown(
    analytics_app: Starlette, client: httpx.AsyncClient
) -> None:
    world = await build(analytics_app, client)
    # One hour: the Mastodon post (no impressions, no clicks) and 2 impressions, a click.
    hour = SINCE + timedelta(days=1, hours=6)
    d = (await query(client, world.tenant, hour, hour + timedelta(hours=1)))["data"][
        "analyticsDashboard"
    ]
    assert d["platform"]["impressions"] is None and d["platform"]["clicks"] is None
    assert d["platform"]["likes"] == 7 and d["platform"]["engagementRate"] is None
    assert d["firstParty"]["impressions"] == 2 and d["combined"]["impressions"] == 2
    # A like-only platform does not inflate the rate: only first-party supports it (0/2).
    assert d["combined"]["engagementRate"] == 0.0
    assert d["change"]["posts"]["relative"] is None  # nothing in the hour before


async def test_empty_workspace(analytics_app: Starlette, client: httpx.AsyncClient) -> None:
    await build_other(analytics_app, client)  # data elsewhere, none here
    tenant = await make_tenant(analytics_app, contents=1)
    d = (await query(client, tenant))["data"]["analyticsDashboard"]
    assert (d["posts"], d["impressions"], d["engagementRate"]) == (0, 0, None)
    assert d["platform"]["impressions"] is None and d["platform"]["posts"] == 0
    assert d["firstParty"]["impressions"] == 0 and d["firstParty"]["engagementRate"] is None
    assert d["topPlatform"] is None and d["topPerformers"] == [] and d["platforms"] == []
    assert d["change"]["impressions"] == {"current": 0, "previous": 0, "relative": None}


async def test_bounds_are_refused(analytics_app: Starlette, client: httpx.AsyncClient) -> None:
    tenant = await make_tenant(analytics_app, contents=1)
    for since, until in (
        (UNTIL, SINCE),
        (SINCE, SINCE),
        (SINCE, SINCE + timedelta(days=367)),
    ):
        body = await query(client, tenant, since, until)
        assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT", body
    body = await query(client, tenant, SINCE.replace(tzinfo=None), UNTIL.replace(tzinfo=None))
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT", body


async def test_another_workspace_is_refused(
    analytics_app: Starlette, client: httpx.AsyncClient
) -> None:
    tenant = await make_tenant(analytics_app, contents=1)
    other = await build_other(analytics_app, client)
    tenant.workspace_id = other.workspace_id  # asks for it with its own key
    body = await query(client, tenant)
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN", body


def test_rollup_parts_cover_the_period_once() -> None:
    hourly, daily = dashboard.EngagementHourly, dashboard.EngagementDashboardDaily
    parts = dashboard.rollup_parts(dashboard.Period(SINCE, UNTIL))
    assert parts == [
        (hourly, SINCE, datetime(2026, 11, 11, tzinfo=UTC)),
        (daily, datetime(2026, 11, 11, tzinfo=UTC), datetime(2026, 11, 12, tzinfo=UTC)),
        (hourly, datetime(2026, 11, 12, tzinfo=UTC), UNTIL),
    ]
    day = datetime(2026, 11, 11, tzinfo=UTC)
    assert dashboard.rollup_parts(dashboard.Period(day, day + timedelta(days=2))) == [
        (daily, day, day + timedelta(days=2))
    ]
    inside = dashboard.Period(day + timedelta(hours=1), day + timedelta(hours=5))
    assert dashboard.rollup_parts(inside) == [(hourly, inside.since, inside.until)]


async def test_statements_do_not_grow_with_contents(
    analytics_app: Starlette, client: httpx.AsyncClient
) -> None:
    state = analytics_app.state.smartcontent
    tenant = await make_tenant(analytics_app, contents=1)
    ws = tenant.workspace_id

    async def add_items(count: int) -> None:
        events = []
        for i in range(count):
            content = await seed_content(state, ws, f"Item {i}")
            seeded = await seed_target(
                state, workspace_id=ws, content_id=content, published_at=SINCE + timedelta(hours=1)
            )
            await snapshot(
                state, ws, content, seeded.target_id, Platform.X,
                SINCE + timedelta(hours=2), impressions=100 + i, likes=i,
            )  # fmt: skip
            events.append(event(content, type="LIKE", occurredAt=at(11, 9)))
        assert (await post_events(client, tenant, events)).status_code == 200
        await rollups.apply_pending(state.session_factory)

    counts = []
    await query(client, tenant)  # the API key's first use writes last_used_at
    for count, performers in ((1, 1), (6, 5)):
        await add_items(count)
        with count_statements(analytics_app) as statements:
            body = await query(client, tenant)
        assert "errors" not in body, body
        assert len(body["data"]["analyticsDashboard"]["topPerformers"]) == performers
        counts.append(len(statements))
    assert counts[0] == counts[1], counts
    assert counts[0] <= 4, counts  # the key, the dashboard, the performers' items


def test_the_statement_is_built_once_per_shape() -> None:
    ws = uuid.uuid4()
    period = dashboard.Period(SINCE, UNTIL)
    later = dashboard.Period(SINCE + timedelta(hours=1), UNTIL + timedelta(hours=1))
    statement, params = dashboard.dashboard_query(ws, [period, period.previous])
    again, shifted = dashboard.dashboard_query(uuid.uuid4(), [later, later.previous])
    assert again is statement  # same parts per period: the same statement
    assert params["ws"] == ws and params["since_0"] == SINCE and params["until_1"] == SINCE
    assert shifted["lo_0_0"] == SINCE + timedelta(hours=1)
    day = datetime(2026, 11, 11, tzinfo=UTC)
    whole, _ = dashboard.dashboard_query(ws, [dashboard.Period(day, day + timedelta(days=1))])
    assert whole is not statement
