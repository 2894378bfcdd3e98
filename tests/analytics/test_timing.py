"""optimalPostingTimes over the API: a weekday x hour peak planted in published history is
found within an hour, in the requested zone's wall-clock time; thin history falls back to
the platform prior and says so."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx

from app.state import AppState
from tests.analytics.history import Published, seed_published
from tests.helpers import Account, create_workspace, gql, register
from tests.teams import uid

QUERY = """
query($ws: ID!, $tz: String!) { optimalPostingTimes(workspaceId: $ws, platform: X, timezone: $tz) {
  source sampleSize confidence explanation
  slots { weekday weekdayName hour localTime expectedEngagementRate lift support }
} }
"""
BERLIN = ZoneInfo("Europe/Berlin")


def planted(n: int, seed: int) -> list[Published]:
    """Posts over the last 20 weeks (across a DST change); those going out within an
    hour of Thursday 15:00 Berlin time engage 3x, with noise."""
    rng = random.Random(seed)
    now = datetime.now(UTC)
    posts = []
    for _ in range(n):
        at = (now - timedelta(hours=rng.randrange(24 * 140))).replace(minute=0)
        local = at.astimezone(BERLIN)
        near = local.weekday() == 3 and abs(local.hour - 15) <= 1
        rate = (0.06 if near else 0.02) + rng.gauss(0, 0.008)
        posts.append(Published(at=at, engaged=max(0, round(rate * 1000))))
    return posts


async def owner_workspace(client: httpx.AsyncClient) -> tuple[Account, Any, str]:
    owner = await register(client)
    gid = await create_workspace(client, owner)
    return owner, uid(gid), gid


async def query(client: httpx.AsyncClient, owner: Account, ws: str, tz: str) -> Any:
    body = await gql(client, QUERY, {"ws": ws, "tz": tz}, headers=owner.headers)
    assert "errors" not in body, body
    return body["data"]["optimalPostingTimes"]


async def test_a_planted_peak_is_found_in_local_time(
    client: httpx.AsyncClient, state: AppState
) -> None:
    owner, workspace_id, ws = await owner_workspace(client)
    await seed_published(state, workspace_id, planted(1500, 1))
    found = await query(client, owner, ws, "Europe/Berlin")
    assert found["source"] == "HISTORY" and found["sampleSize"] == 1500
    best = found["slots"][0]
    assert best["weekdayName"] == "THURSDAY" and abs(best["hour"] - 15) <= 1, found["slots"]
    assert best["localTime"] == f"{best['hour']:02d}:00"
    assert best["lift"] > 1.5 and best["support"] > 0
    # Whether DST applied to a post or not, the same data read in New York time peaks six
    # hours earlier on the clock.
    ny = await query(client, owner, ws, "America/New_York")
    assert ny["slots"][0]["weekday"] == 3 and abs(ny["slots"][0]["hour"] - 9) <= 1


async def test_thin_history_falls_back_to_the_prior(
    client: httpx.AsyncClient, state: AppState
) -> None:
    owner, workspace_id, ws = await owner_workspace(client)
    await seed_published(state, workspace_id, planted(5, 2))
    found = await query(client, owner, ws, "Europe/Berlin")
    assert found["source"] == "PLATFORM_PRIOR" and found["sampleSize"] == 5
    assert found["confidence"] == 0 and "Only 5 past posts" in found["explanation"]
    bad = await gql(client, QUERY, {"ws": ws, "tz": "Mars/Olympus"}, headers=owner.headers)
    assert bad["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
