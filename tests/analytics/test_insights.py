"""Insights find planted differences with the right numbers, never invent one from noise,
and are served over the API for the period asked."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from app.models.vocabulary import Platform
from app.services.analytics.history import PublishedPost
from app.services.analytics.insights import insights
from app.state import AppState
from tests.analytics.history import Published, seed_published
from tests.helpers import create_workspace, gql, register
from tests.teams import uid

QUERY = """
query($ws: ID!, $from: DateTime!, $to: DateTime!) { insights(workspaceId: $ws, from: $from, to: $to) {
  statement kind platform ratio betterRate otherRate betterCount otherCount pValue
} }
"""


def post(
    rate: float, *, platform: str = "LINKEDIN", tags: tuple[str, ...] = (), media: bool = False
) -> PublishedPost:
    return PublishedPost(
        target_id=uuid.uuid4(),
        content_id=uuid.uuid4(),
        platform=platform,
        content_type="SOCIAL_POST",
        tags=tags,
        at=datetime(2026, 11, 4, 10, tzinfo=UTC),
        metrics={"words": 80, "has_call_to_action": False, "questions": 0},
        has_media=media,
        impressions=10_000,
        engaged=round(rate * 10_000),
    )


def test_a_planted_tag_effect_is_found_with_its_numbers() -> None:
    rng = random.Random(3)
    how_to = [post(0.03 + rng.gauss(0, 0.003), tags=("how-to",)) for _ in range(42)]
    other = [post(0.01 + rng.gauss(0, 0.002), tags=("announcement",)) for _ in range(50)]
    found = insights(how_to + other)
    top = found[0]
    assert top.kind == "tag" and top.platform in (None, "LINKEDIN")
    mean_how_to = sum(p.rate for p in how_to) / 42
    mean_other = sum(p.rate for p in other) / 50
    assert top.better_n == 42 and top.other_n == 50
    assert top.better_rate == pytest.approx(mean_how_to)
    assert top.ratio == pytest.approx(mean_how_to / mean_other)
    assert top.p_value < 1e-6
    assert f"{top.ratio:.1f}x" in top.statement and "n=42 vs 50" in top.statement
    assert '"how-to" posts' in top.statement or '"announcement"' in top.statement
    # One statement per kind of comparison.
    assert len({i.kind for i in found}) == len(found) <= 5


def test_noise_gives_no_insight() -> None:
    rng = random.Random(4)
    posts = [
        post(0.02 + rng.gauss(0, 0.004), tags=(rng.choice(["a", "b"]),), media=rng.random() < 0.5)
        for _ in range(300)
    ]
    assert [i.statement for i in insights(posts)] == []


def test_too_little_data_gives_nothing() -> None:
    assert insights([post(0.5, tags=("x",)), post(0.01)]) == []


async def test_insights_over_the_api(client: httpx.AsyncClient, state: AppState) -> None:
    owner = await register(client)
    ws = await create_workspace(client, owner)
    rng = random.Random(5)
    now = datetime.now(UTC)
    rows = [
        Published(
            at=now - timedelta(days=rng.randrange(1, 60), hours=rng.randrange(24)),
            engaged=round((0.045 if media else 0.015) * 1000 + rng.gauss(0, 3)),
            platform=Platform.X,
            metrics={"words": 40},
        )
        for media in [False] * 40
    ]
    await seed_published(state, uid(ws), rows)
    variables: dict[str, Any] = {
        "ws": ws,
        "from": (now - timedelta(days=90)).isoformat(),
        "to": now.isoformat(),
    }
    body = await gql(client, QUERY, variables, headers=owner.headers)
    assert body["data"]["insights"] == []  # no contrast in the data: nothing to say

    early = [
        Published(
            at=now - timedelta(days=rng.randrange(1, 60)),
            engaged=round(0.06 * 1000 + rng.gauss(0, 3)),
            platform=Platform.LINKEDIN,
            metrics={"words": 40},
        )
        for _ in range(30)
    ]
    await seed_published(state, uid(ws), early)
    body = await gql(client, QUERY, variables, headers=owner.headers)
    (found,) = [i for i in body["data"]["insights"] if i["kind"] == "platform"]
    assert found["betterCount"] == 30 and found["otherCount"] == 40
    assert found["statement"].startswith("LinkedIn posts get 4.0x the engagement rate of X posts")

    # Outside the period: nothing.
    old = {**variables, "from": "2020-01-01T00:00:00Z", "to": "2020-06-01T00:00:00Z"}
    assert (await gql(client, QUERY, old, headers=owner.headers))["data"]["insights"] == []
    bad = {**variables, "from": variables["to"], "to": variables["from"]}
    refused = await gql(client, QUERY, bad, headers=owner.headers)
    assert refused["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
