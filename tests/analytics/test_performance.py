"""contentPerformance over the API: per target, per platform and in all, from each
published target's latest snapshot, checked against hand-computed figures; history; only
members of the content's workspace; statements that do not grow with the targets."""

from __future__ import annotations

import base64
import uuid
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import update
from starlette.applications import Starlette

from app.models import MetricSnapshot, PostTarget
from app.models.vocabulary import Platform
from app.state import AppState
from tests.analytics.conftest import T0, seed_content, seed_target
from tests.api.test_query_counts import count_statements
from tests.helpers import Account, create_workspace, gql, register
from tests.teams import uid

H = timedelta(hours=1)
FIGURES = "impressions reach likes comments shares clicks saves engagementRate ctr"
QUERY = f"""
query($id: ID!) {{ contentPerformance(contentId: $id) {{
  {FIGURES} collectedAt content {{ id title }}
  history {{ collectedAt {FIGURES} }}
  platforms {{
    platform collectedAt {FIGURES}
    history {{ collectedAt impressions likes engagementRate }}
    targets {{
      platform publishedAt collectedAt {FIGURES}
      target {{ id status account {{ name }} }}
      history {{ collectedAt impressions }}
    }}
  }}
}} }}
"""


def gid(type_name: str, value: uuid.UUID) -> str:
    return base64.b64encode(f"{type_name}:{value}".encode()).decode()


async def snapshot(
    state: AppState, seeded: Any, platform: Platform, at: datetime, step: int, **counts: int
) -> None:
    async with state.session_factory() as session, session.begin():
        session.add(
            MetricSnapshot(
                workspace_id=seeded.workspace_id,
                content_id=seeded.content_id,
                target_id=seeded.target_id,
                platform=platform.value,
                step=step,
                collected_at=at,
                raw={},
                **counts,
            )
        )


async def owner_and_content(client: httpx.AsyncClient, state: AppState) -> tuple[Account, Any]:
    owner = await register(client)
    workspace_id = uid(await create_workspace(client, owner))
    return owner, (workspace_id, await seed_content(state, workspace_id))


async def query(client: httpx.AsyncClient, account: Account, content_id: uuid.UUID) -> Any:
    body = await gql(client, QUERY, {"id": gid("Content", content_id)}, headers=account.headers)
    assert "errors" not in body, body
    return body["data"]["contentPerformance"]


async def test_figures_per_target_platform_and_in_all_match_hand_computed_values(
    client: httpx.AsyncClient, state: AppState
) -> None:
    owner, (ws, content) = await owner_and_content(client, state)
    a = await seed_target(state, workspace_id=ws, content_id=content)
    b = await seed_target(state, workspace_id=ws, content_id=content, published_at=T0 + H / 12)
    m = await seed_target(state, workspace_id=ws, content_id=content, platform=Platform.MASTODON)
    li = await seed_target(state, workspace_id=ws, content_id=content, platform=Platform.LINKEDIN)
    failed = await seed_target(state, workspace_id=ws, content_id=content)
    async with state.session_factory() as session, session.begin():
        await session.execute(
            update(PostTarget).where(PostTarget.id == failed.target_id).values(status="FAILED")
        )
    x = Platform.X
    await snapshot(
        state, a, x, T0 + H, 0, impressions=200, likes=10, comments=1, shares=3, clicks=4
    )
    await snapshot(state, b, x, T0 + 65 * H / 60, 0, impressions=100, likes=2, comments=0, shares=1)
    await snapshot(
        state, a, x, T0 + 6 * H, 1, impressions=1000, likes=40, comments=5, shares=15, clicks=20
    )
    await snapshot(
        state, b, x, T0 + 6 * H + H / 12, 1, impressions=500, likes=10, comments=0, shares=5
    )
    await snapshot(state, m, Platform.MASTODON, T0 + 2 * H, 0, likes=7, comments=2, shares=1)
    await snapshot(state, failed, x, T0 + H, 0, impressions=9999, likes=9999)  # not PUBLISHED

    result = await query(client, owner, content)
    # In all: X's two targets and Mastodon's; LinkedIn has no snapshot yet.
    assert result["impressions"] == 1500 and result["reach"] is None
    assert (result["likes"], result["comments"], result["shares"]) == (57, 7, 21)
    assert result["clicks"] == 20 and result["saves"] is None
    # Rates only over targets with impressions: (40+5+15 + 10+0+5) / (1000+500).
    assert result["engagementRate"] == pytest.approx(75 / 1500)
    # CTR only over targets reporting clicks: 20 / 1000 (B reports none).
    assert result["ctr"] == pytest.approx(20 / 1000)
    assert result["content"]["title"] == "Launch"
    assert result["collectedAt"] == (T0 + 6 * H + H / 12).isoformat()
    platforms = {p["platform"]: p for p in result["platforms"]}
    assert [p["platform"] for p in result["platforms"]] == ["LINKEDIN", "MASTODON", "X"]
    xp = platforms["X"]
    assert (xp["impressions"], xp["likes"], xp["comments"], xp["shares"]) == (1500, 50, 5, 20)
    assert xp["engagementRate"] == pytest.approx(0.05) and xp["ctr"] == pytest.approx(0.02)
    [ta, tb] = xp["targets"]
    assert ta["target"]["id"] == gid("PostTarget", a.target_id)
    assert ta["engagementRate"] == pytest.approx(60 / 1000) and ta["ctr"] == pytest.approx(0.02)
    assert tb["engagementRate"] == pytest.approx(15 / 500) and tb["ctr"] is None
    assert ta["target"]["status"] == "PUBLISHED" and ta["target"]["account"]["name"]
    md = platforms["MASTODON"]
    assert (md["likes"], md["comments"], md["shares"]) == (7, 2, 1)
    assert md["impressions"] is None and md["engagementRate"] is None and md["ctr"] is None
    lp = platforms["LINKEDIN"]
    assert lp["collectedAt"] is None and lp["likes"] is None and len(lp["targets"]) == 1
    assert lp["targets"][0]["target"]["id"] == gid("PostTarget", li.target_id)
    assert lp["history"] == [] and lp["targets"][0]["history"] == []
    # History per platform: each target's latest snapshot summed at each collection.
    assert [(p["impressions"], p["likes"]) for p in xp["history"]] == [
        (200, 10),
        (300, 12),
        (1100, 42),
        (1500, 50),
    ]
    assert xp["history"][1]["engagementRate"] == pytest.approx((14 + 3) / 300)
    assert [p["impressions"] for p in ta["history"]] == [200, 1000]
    assert [p["collectedAt"] for p in tb["history"]] == [
        (T0 + 65 * H / 60).isoformat(),
        (T0 + 6 * H + H / 12).isoformat(),
    ]
    # In all: the five snapshots of published targets, Mastodon's counted from 2 h on.
    assert [p["likes"] for p in result["history"]] == [10, 12, 19, 49, 57]


async def test_zero_impressions_give_null_rates(client: httpx.AsyncClient, state: AppState) -> None:
    owner, (ws, content) = await owner_and_content(client, state)
    a = await seed_target(state, workspace_id=ws, content_id=content)
    await snapshot(state, a, Platform.X, T0 + H, 0, impressions=0, likes=0, clicks=0)
    result = await query(client, owner, content)
    assert result["impressions"] == 0 and result["engagementRate"] is None
    assert result["ctr"] is None


async def test_nothing_published_yet_is_empty_not_an_error(
    client: httpx.AsyncClient, state: AppState
) -> None:
    owner, (_, content) = await owner_and_content(client, state)
    result = await query(client, owner, content)
    assert result["platforms"] == [] and result["history"] == []
    assert result["impressions"] is None and result["collectedAt"] is None


async def test_only_members_of_the_contents_workspace(
    client: httpx.AsyncClient, state: AppState
) -> None:
    owner, (ws, content) = await owner_and_content(client, state)
    a = await seed_target(state, workspace_id=ws, content_id=content)
    await snapshot(state, a, Platform.X, T0 + H, 0, impressions=10, likes=1)
    assert (await query(client, owner, content))["impressions"] == 10
    outsider = await register(client)
    await create_workspace(client, outsider, "Other")
    body = await gql(client, QUERY, {"id": gid("Content", content)}, headers=outsider.headers)
    assert body["data"] is None
    assert body["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    # Nothing of the item's figures leaks into the refusal.
    assert "impressions" not in str(body["errors"])
    anonymous = await gql(client, QUERY, {"id": gid("Content", content)})
    assert anonymous["errors"][0]["extensions"]["code"] in ("UNAUTHENTICATED", "NOT_FOUND")


async def test_statements_do_not_grow_with_the_targets(
    client: httpx.AsyncClient, state: AppState, analytics_app: Starlette
) -> None:
    counts = {}
    for n in (1, 6):
        owner, (ws, content) = await owner_and_content(client, state)
        for i in range(n):
            platform = (Platform.X, Platform.MASTODON, Platform.THREADS)[i % 3]
            seeded = await seed_target(
                state, workspace_id=ws, content_id=content, platform=platform
            )
            for step in range(2):
                await snapshot(state, seeded, platform, T0 + (step + 1) * H, step, likes=i + step)
        with count_statements(analytics_app) as statements:
            result = await query(client, owner, content)
        assert sum(len(p["targets"]) for p in result["platforms"]) == n
        counts[n] = len(statements)
    assert counts[1] == counts[6], counts
