"""A workspace with both sources over a period with partial days at both edges, counted
by hand (tests/analytics/test_dashboard.py and test_export.py share it).

Period P = [2026-11-10 06:00, 2026-11-12 18:00) UTC; the previous one is
[2026-11-07 18:00, 2026-11-10 06:00).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from starlette.applications import Starlette

from app.models import MetricSnapshot
from app.models.vocabulary import Platform
from app.services.analytics import rollups
from app.state import AppState
from tests.analytics.conftest import seed_content, seed_target
from tests.engagement.conftest import Tenant, event, make_tenant, post_events
from tests.helpers import gql
from tests.teams import gid

SINCE = datetime(2026, 11, 10, 6, 0, tzinfo=UTC)
UNTIL = datetime(2026, 11, 12, 18, 0, tzinfo=UTC)
FORMULA_TITLE = "=HYPERLINK('http://evil.example','x')"

DASHBOARD = """
query($ws: ID!, $from: DateTime!, $to: DateTime!) {
  analyticsDashboard(workspaceId: $ws, from: $from, to: $to) {
    from to previousFrom posts impressions engagementRate
    platform { ...F } firstParty { ...F } combined { ...F } previous { ...F }
    platforms { platform impressions engagements engagementRate }
    topPlatform { platform impressions engagements engagementRate }
    topPerformers { contentId title platforms impressions engagements engagementRate
                    content { id title } }
    change {
      posts { ...C } impressions { ...C } engagements { ...C } clicks { ...C }
      engagementRate { ...C } ctr { ...C }
    }
  }
}
fragment F on DashboardFigures {
  posts contentItems impressions views likes comments shares clicks conversions
  conversionValue engagements engagementRate ctr
}
fragment C on DashboardChange { current previous relative }
"""


@dataclass
class World:
    tenant: Tenant
    contents: list[uuid.UUID]  # c0 "Alpha", c1 (a formula title), c2 "Gamma"
    targets: dict[str, uuid.UUID]


async def snapshot(
    state: AppState,
    workspace_id: uuid.UUID,
    content_id: uuid.UUID,
    target_id: uuid.UUID,
    platform: Platform,
    at: datetime,
    **counters: int | None,
) -> None:
    async with state.session_factory() as session, session.begin():
        session.add(
            MetricSnapshot(
                id=uuid.uuid4(),
                workspace_id=workspace_id,
                content_id=content_id,
                target_id=target_id,
                platform=platform.value,
                step=0,
                collected_at=at,
                **counters,
            )
        )


def at(day: int, hour: int, minute: int = 0) -> str:
    return datetime(2026, 11, day, hour, minute, tzinfo=UTC).isoformat()


async def build(app: Starlette, client: httpx.AsyncClient) -> World:
    state: AppState = app.state.smartcontent
    tenant = await make_tenant(app, contents=1)
    ws = tenant.workspace_id
    c0 = await seed_content(state, ws, "Alpha")
    c1 = await seed_content(state, ws, FORMULA_TITLE)
    c2 = await seed_content(state, ws, "Gamma")

    async def target(content: uuid.UUID, platform: Platform, published: datetime) -> uuid.UUID:
        seeded = await seed_target(
            state, workspace_id=ws, content_id=content, platform=platform, published_at=published
        )
        return seeded.target_id

    t1 = await target(c0, Platform.X, SINCE + timedelta(hours=2))
    await snapshot(
        state, ws, c0, t1, Platform.X, SINCE + timedelta(hours=3), impressions=500, likes=5
    )
    await snapshot(
        state, ws, c0, t1, Platform.X, SINCE + timedelta(days=1),
        impressions=1000, likes=30, comments=5, shares=5, clicks=20,
    )  # fmt: skip
    # Mastodon reports no impressions nor clicks: unknown, not 0.
    t2 = await target(c1, Platform.MASTODON, SINCE + timedelta(days=1, hours=6))
    await snapshot(
        state, ws, c1, t2, Platform.MASTODON, SINCE + timedelta(days=1, hours=7),
        likes=7, comments=1, shares=2,
    )  # fmt: skip
    # Published after `to`: not in the period (nor its events' platform figures).
    t3 = await target(c0, Platform.LINKEDIN, UNTIL + timedelta(hours=2))
    await snapshot(
        state, ws, c0, t3, Platform.LINKEDIN, UNTIL + timedelta(hours=3), impressions=9999
    )
    # The previous period.
    t4 = await target(c2, Platform.X, datetime(2026, 11, 9, 10, tzinfo=UTC))
    await snapshot(
        state, ws, c2, t4, Platform.X, datetime(2026, 11, 9, 12, tzinfo=UTC),
        impressions=400, likes=8, comments=0, shares=0, clicks=4,
    )  # fmt: skip
    # Published in the period, nothing collected yet: a post without figures.
    t5 = await target(c2, Platform.X, SINCE + timedelta(days=1, hours=1))

    def on_target(t: uuid.UUID, kind: str, when: str, **extra: Any) -> dict[str, Any]:
        return event(None, targetId=str(t), type=kind, occurredAt=when, **extra)

    first = [
        event(c0, type="IMPRESSION", occurredAt=at(10, 5, 30)),  # its hour is before `from`
        *(on_target(t1, "IMPRESSION", at(10, 6, m)) for m in (10, 20, 30)),  # partial day
        event(c0, type="LIKE", occurredAt=at(10, 23, 59)),
        event(c0, type="CONVERSION", value=12.5, occurredAt=at(11, 3)),  # a whole day
        on_target(t2, "IMPRESSION", at(11, 12)),
        on_target(t2, "IMPRESSION", at(11, 12, 1)),
        on_target(t2, "CLICK", at(11, 12, 2)),
        event(c2, type="SHARE", occurredAt=at(12, 17, 59)),  # partial last day
        event(c2, type="VIEW", occurredAt=at(12, 18)),  # at `to`: not in the period
        # The previous period (its first hour starts at its `from`).
        event(c2, type="LIKE", occurredAt=at(7, 18, 30)),
        *(event(c2, type="IMPRESSION", occurredAt=at(9, 12, m)) for m in range(4)),
    ]
    response = await post_events(client, tenant, first)
    assert response.status_code == 200 and response.json()["accepted"] == len(first), response.text
    await rollups.apply_pending(state.session_factory)
    # A late event, ingested after the rollups ran, lands in its own old hour.
    late = [on_target(t2, "COMMENT", at(10, 7))]
    response = await post_events(client, tenant, late)
    assert response.json()["accepted"] == 1, response.text
    await rollups.apply_pending(state.session_factory)
    return World(tenant, [c0, c1, c2], {"t1": t1, "t2": t2, "t3": t3, "t4": t4, "t5": t5})


async def build_other(app: Starlette, client: httpx.AsyncClient) -> Tenant:
    """Another workspace with posts and events in the same period: never counted."""
    state: AppState = app.state.smartcontent
    other = await make_tenant(app, contents=1)
    seeded = await seed_target(
        state, workspace_id=other.workspace_id, content_id=other.content_ids[0],
        published_at=SINCE + timedelta(hours=1),
    )  # fmt: skip
    await snapshot(
        state, other.workspace_id, other.content_ids[0], seeded.target_id, Platform.X,
        SINCE + timedelta(hours=2), impressions=777, likes=77,
    )  # fmt: skip
    sent = [event(other.content_ids[0], type="IMPRESSION", occurredAt=at(11, 9))] * 1
    response = await post_events(client, other, sent)
    assert response.json()["accepted"] == 1, response.text
    await rollups.apply_pending(state.session_factory)
    return other


async def query(
    client: httpx.AsyncClient,
    tenant: Tenant,
    since: datetime = SINCE,
    until: datetime = UNTIL,
    role: str = "VIEWER",
) -> dict[str, Any]:
    return await gql(
        client,
        DASHBOARD,
        {
            "ws": gid("Workspace", tenant.workspace_id),
            "from": since.isoformat(),
            "to": until.isoformat(),
        },
        headers={"Authorization": f"Bearer {tenant.keys[role]}"},
    )
