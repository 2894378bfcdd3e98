"""How recommendations score performance: percentiles within each platform, shrinkage of
items with few impressions, lift against the platform's median, popularity's decay, and
first-party events on the site as a channel of their own."""

from __future__ import annotations

import uuid
from datetime import timedelta

import httpx

from app.models import EngagementDaily
from app.models.engagement import NO_TARGET
from app.models.vocabulary import Platform
from app.services.analytics.recommend.scores import (
    Observation,
    score_items,
    workspace_scores,
)
from app.state import AppState
from tests.analytics.recommend_data import (
    NOW,
    Item,
    seed,
    shrunk,
    workspace,
)
from tests.teams import uid


def test_platforms_compare_by_percentile_and_few_impressions_are_shrunk() -> None:
    ids = [uuid.uuid4() for _ in range(10)]
    at = NOW - timedelta(days=60)
    x_engaged = (5, 10, 15, 20, 30)  # around 1.6%
    x = [Observation(i, "X", 1000, e, at) for i, e in zip(ids[:5], x_engaged, strict=True)]
    linkedin = [
        Observation(i, "LINKEDIN", 1000, e, at)
        for i, e in zip(ids[5:9], (50, 100, 150, 60), strict=True)  # around 9%
    ]
    lucky = Observation(ids[9], "LINKEDIN", 10, 3, at)  # 30% on 10 impressions
    scores = score_items([*x, *linkedin, lucky], NOW)
    # The best of each platform ranks the same, whatever the platform's typical rate.
    assert scores[ids[4]].performance == scores[ids[7]].performance == 0.9
    assert scores[ids[0]].performance == 0.1
    # 3 of 10 is shrunk toward LinkedIn's pooled rate: not the top LinkedIn item.
    pooled = (50 + 100 + 150 + 60 + 3) / 4010
    assert scores[ids[9]].main.rate == shrunk(3, 10, pooled)
    assert scores[ids[9]].performance == 0.7
    # Lift is against the platform's own median; popularity halves in 60 days.
    x_pooled = sum(x_engaged) / 5000
    assert scores[ids[4]].main.lift == shrunk(30, 1000, x_pooled) / shrunk(15, 1000, x_pooled)
    assert abs(scores[ids[4]].popularity - 0.45) < 1e-6


async def test_first_party_rollups_are_a_channel_of_their_own(
    client: httpx.AsyncClient, state: AppState
) -> None:
    _, ws = await workspace(client)
    hit, miss, on_x = await seed(
        state,
        uid(ws),
        [Item("Site hit"), Item("Site miss"), Item("On X", posts=[(Platform.X, 1000, 10, 2)])],
    )
    day = (NOW - timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    rows = [(hit, "VIEW", 900), (hit, "IMPRESSION", 100), (hit, "CLICK", 80), (hit, "LIKE", 20)]
    rows += [(miss, "VIEW", 1000), (miss, "CLICK", 5)]
    rows += [(on_x, "CLICK", 50)]  # no views: no rate on the site
    async with state.session_factory() as session, session.begin():
        for content_id, kind, events in rows:
            session.add(
                EngagementDaily(
                    workspace_id=uid(ws),
                    bucket_start=day,
                    content_id=content_id,
                    target_id=NO_TARGET,
                    event_type=kind,
                    platform=None,
                    events=events,
                    value_sum=0,
                )
            )
    async with state.read_session_factory() as session:
        scores = await workspace_scores(session, uid(ws), NOW)
    assert set(scores) == {hit, miss, on_x}
    pooled = 105 / 2000
    site = scores[hit].main
    assert (site.channel, site.impressions, site.engaged) == ("SITE", 1000, 100)
    assert site.rate == shrunk(100, 1000, pooled)
    assert scores[hit].performance == 0.75 and scores[miss].performance == 0.25
    assert list(scores[on_x].channels) == ["X"]
    assert "on your site" in scores[hit].describe()
