"""recommendations: planted data where the answer is known (a topic that outperforms, a
high performer never posted to a connected platform, a draft's nearest high performer
over a nearer low performer, a shared audience), explanations with the numbers computed
by hand, nothing of another workspace, nothing from an empty one, and statements flat in
`first`."""

from __future__ import annotations

import random
import uuid
from datetime import timedelta

import httpx
import numpy as np
from starlette.applications import Starlette

from app.models.vocabulary import Platform
from app.state import AppState
from tests.analytics.recommend_data import (
    NOW,
    QUERY,
    Item,
    ask,
    direction,
    seed,
    shrunk,
    signal,
    workspace,
)
from tests.api.test_query_counts import count_statements
from tests.helpers import gql
from tests.teams import gid, uid


async def test_an_anchor_draft_gets_its_nearest_high_performer_first(
    client: httpx.AsyncClient, state: AppState
) -> None:
    owner, ws = await workspace(client)
    high, low, draft = await seed(
        state,
        uid(ws),
        [
            Item("Tea guide", direction((0, 0.8), (1, 0.6)), posts=[(Platform.X, 1240, 62, 5)]),
            Item("Tea memo", direction((0, 0.95), (2, 0.31)), posts=[(Platform.X, 1000, 5, 5)]),
            Item("Draft on tea", direction((0, 1.0)), status="DRAFT"),
        ],
    )
    found = await ask(
        client, owner, ws, "SIMILAR_HIGH_PERFORMERS", content_id=gid("Content", draft)
    )
    assert [r["contents"][0]["id"] for r in found] == [gid("Content", high), gid("Content", low)]
    top = found[0]
    assert top["contents"][1]["id"] == gid("Content", draft)
    # By hand: the X pooled rate, each shrunk rate, their median, the lift.
    pooled = (62 + 5) / (1240 + 1000)
    rate_high, rate_low = shrunk(62, 1240, pooled), shrunk(5, 1000, pooled)
    median = (rate_high + rate_low) / 2
    similarity = 0.8 / np.linalg.norm([0.8, 0.6])
    assert signal(top, "similarity") == round(similarity, 4)
    assert signal(top, "lift") == round(rate_high / median, 4)
    assert signal(top, "performance") == 0.75  # mid-rank percentile: 2nd of 2
    assert top["explanation"] == (
        f'{similarity:.2f} similar to your draft "Draft on tea"; {rate_high / median:.1f}x the '
        f"workspace's median engagement rate on X ({rate_high:.2%} vs {median:.2%}, "
        "n=1,240 impressions)."
    )
    assert top["platforms"] == ["X"]
    # The nearer item ranks below: 0.95 similar but at the 25th percentile.
    assert signal(found[1], "similarity") > signal(top, "similarity")  # type: ignore[operator]
    assert top["score"] > found[1]["score"]

    # Without an anchor: the workspace's recent drafts anchor, same answer.
    unanchored = await ask(client, owner, ws, "SIMILAR_HIGH_PERFORMERS")
    assert [r["contents"][0]["id"] for r in unanchored] == [r["contents"][0]["id"] for r in found]


async def test_a_shared_audience_lifts_an_item(client: httpx.AsyncClient, state: AppState) -> None:
    owner, ws = await workspace(client)
    posts = [(Platform.X, 1000, 50, 3)]
    lows = [
        Item(f"Low {i}", direction((10 + i, 1.0)), posts=[(Platform.X, 1000, 10, 3)])
        for i in range(3)
    ]
    hit, shared, alone, draft, *_ = await seed(
        state,
        uid(ws),
        [
            Item("Hit", direction((3, 1.0)), posts=posts),
            Item("Shared", direction((0, 0.8), (1, 0.6)), posts=posts),
            Item("Alone", direction((0, 0.8), (2, 0.6)), posts=posts),
            Item("Draft", direction((0, 1.0)), status="DRAFT"),
            *lows,
        ],
    )
    before = await ask(
        client, owner, ws, "SIMILAR_HIGH_PERFORMERS", content_id=gid("Content", draft)
    )
    assert {r["score"] for r in before[:2]} == {before[0]["score"]}  # a tie without audiences
    assert all(signal(r, "audienceAffinity") is None for r in before)

    events = [
        {
            "id": uuid.uuid4().hex,
            "contentId": gid("Content", content),
            "type": "CLICK",
            "occurredAt": (NOW - timedelta(hours=2)).isoformat(),
            "properties": {"visitorId": f"visitor-{v}"},
        }
        for v in range(4)
        for content in (hit, shared)
    ]
    events.append({**events[0], "id": uuid.uuid4().hex, "contentId": gid("Content", alone)})
    events[-1]["properties"] = {"sessionId": "lonely"}
    record = """mutation($ws: ID!, $events: [EngagementEventInput!]!) {
      recordEngagementEvents(workspaceId: $ws, events: $events) { accepted } }"""
    body = await gql(client, record, {"ws": ws, "events": events}, headers=owner.headers)
    assert body["data"]["recordEngagementEvents"]["accepted"] == len(events), body

    after = await ask(
        client, owner, ws, "SIMILAR_HIGH_PERFORMERS", content_id=gid("Content", draft)
    )
    top = after[0]
    assert top["contents"][0]["id"] == gid("Content", shared)
    assert signal(top, "audienceAffinity") == round(4 / (4 + 5), 4)
    assert (
        "100% of its 4 engaged visitors also engaged with your top performers"
        in (top["explanation"])
    )
    assert signal(after[1], "audienceAffinity") is None  # "Alone": its visitor saw nothing else
    assert top["score"] > after[1]["score"]


async def test_a_high_performer_never_on_a_connected_platform_is_to_repurpose(
    client: httpx.AsyncClient, state: AppState
) -> None:
    owner, ws = await workspace(client)
    both = [(Platform.X, 1000, 20, 10), (Platform.LINKEDIN, 1000, 30, 10)]
    star, *_ = await seed(
        state,
        uid(ws),
        [
            Item("Star", posts=[(Platform.X, 2000, 160, 10)]),
            Item(
                "Old LinkedIn hit",
                posts=[(Platform.X, 1000, 20, 10), (Platform.LINKEDIN, 1500, 90, 200)],
            ),
            *[Item(f"Both {i}", posts=both) for i in range(3)],
        ],
    )
    found = await ask(client, owner, ws, "CONTENT_TO_REPURPOSE")
    first = found[0]
    assert first["contents"] == [{"id": gid("Content", star), "title": "Star"}]
    assert first["platforms"] == ["LINKEDIN"]
    pooled = (160 + 20 * 4) / (2000 + 4000)
    rates = [shrunk(160, 2000, pooled)] + [shrunk(20, 1000, pooled)] * 4
    median = sorted(rates)[2]
    lift = rates[0] / median
    assert first["explanation"] == (
        f"{lift:.1f}x the workspace's median engagement rate on X ({rates[0]:.2%} vs "
        f"{median:.2%}, n=2,000 impressions); never published to LinkedIn, which is connected."
    )
    assert signal(first, "lift") == round(lift, 4)
    assert signal(first, "daysSinceLastPublished") == 10
    # Published to LinkedIn 200 days ago, and a LinkedIn hit there: not recently, so again.
    (old,) = [r for r in found if r["contents"][0]["title"] == "Old LinkedIn hit"]
    assert old["platforms"] == ["LINKEDIN"]
    assert "last published to LinkedIn 200 days ago, which is connected" in old["explanation"]
    # Items already on every connected platform lately are not suggested.
    assert {r["contents"][0]["title"] for r in found} == {"Star", "Old LinkedIn hit"}


async def test_the_topic_that_outperforms_comes_first(
    client: httpx.AsyncClient, state: AppState
) -> None:
    owner, ws = await workspace(client)
    guides = [
        Item(
            f"How to brew tea {i}",
            direction((0, 1.0), noise=0.02, seed=i),
            tags=("how-to",),
            body="Brewing steeping kettle guide",
            posts=[(Platform.X, 1000, 60, 3 + i)],
        )
        for i in range(6)
    ]
    news = [
        Item(
            f"We opened a shop {i}",
            direction((5, 1.0), noise=0.02, seed=100 + i),
            tags=("announcement",),
            body="Opening store launch news",
            posts=[(Platform.X, 1000, 10, 3 + i)],
        )
        for i in range(6)
    ]
    ids = await seed(state, uid(ws), guides + news)
    found = await ask(client, owner, ws, "TOPICS")
    assert [r["topic"]["label"] for r in found] == ["how-to", "announcement"]
    top = found[0]
    assert top["topic"]["size"] == 6 and top["topic"]["tags"] == ["how-to"]
    assert {"brew", "tea"} & set(top["topic"]["terms"])
    assert {c["id"] for c in top["contents"]} <= {gid("Content", i) for i in ids[:6]}
    assert len(top["contents"]) == 3 and all(t.startswith("How to") for t in top["topic"]["titles"])
    pooled = (6 * 60 + 6 * 10) / 12_000
    median = (shrunk(60, 1000, pooled) + shrunk(10, 1000, pooled)) / 2
    lift = shrunk(60, 1000, pooled) / median
    # All 12 were created just now: each topic has half the recent items and half the
    # published ones, so under-coverage is 1/2.
    assert top["explanation"] == (
        f'Topic "how-to": its 6 published items average {lift:.1f}x the workspace\'s median '
        "engagement rate on their platforms (mean percentile 75%); 6 of the 12 items created "
        "in the last 30 days (50%) are on it, against 50% of published items."
    )
    assert signal(top, "underCoverage") == 0.5 and signal(top, "performance") == 0.75
    assert top["score"] == 0.375

    # A new draft on the announcement topic: guides are now further under-covered.
    await seed(state, uid(ws), [Item("Draft news", direction((5, 1.0)), status="DRAFT")])
    again = await ask(client, owner, ws, "TOPICS", first=1)
    assert len(again) == 1 and again[0]["topic"]["label"] == "how-to"
    assert signal(again[0], "underCoverage") == round(0.5 / (0.5 + 6 / 13), 4)


async def test_another_workspace_never_appears_and_empty_gives_nothing(
    client: httpx.AsyncClient, state: AppState
) -> None:
    owner, ws = await workspace(client)
    for kind in ("TOPICS", "CONTENT_TO_REPURPOSE", "SIMILAR_HIGH_PERFORMERS"):
        assert await ask(client, owner, ws, kind) == []
    other_owner, other = await workspace(client)
    rng = random.Random(7)
    theirs = await seed(
        state,
        uid(other),
        [
            Item(
                f"Theirs {i}",
                direction((0, 1.0), noise=0.02, seed=i),
                tags=("tea",),
                posts=[(Platform.X, 1000, rng.randrange(5, 90), 2)],
            )
            for i in range(8)
        ]
        + [Item("Their LinkedIn", posts=[(Platform.LINKEDIN, 1000, 10, 2)])],
    )
    mine = await seed(
        state,
        uid(ws),
        [
            Item("Mine", direction((0, 0.5), (7, 0.5)), posts=[(Platform.X, 1000, 40, 2)]),
            Item("Mine too", direction((0, 0.4), (8, 0.5)), posts=[(Platform.X, 1000, 20, 2)]),
            Item("My draft", direction((0, 1.0)), status="DRAFT"),
        ],
    )
    seen: set[str] = set()
    for kind in ("TOPICS", "CONTENT_TO_REPURPOSE", "SIMILAR_HIGH_PERFORMERS"):
        for rec in await ask(client, owner, ws, kind, first=50):
            seen |= {c["id"] for c in rec["contents"]}
    assert seen == {gid("Content", i) for i in mine}
    assert not seen & {gid("Content", i) for i in theirs}
    # Their item as an anchor: not found (it is not ours to see).
    body = await gql(
        client,
        QUERY,
        {"ws": ws, "kind": "SIMILAR_HIGH_PERFORMERS", "first": 5, "c": gid("Content", theirs[0])},
        headers=owner.headers,
    )
    assert body["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    # Their owner sees their own.
    found = await ask(client, other_owner, other, "TOPICS")
    assert found and all(
        c["id"] in {gid("Content", i) for i in theirs} for r in found for c in r["contents"]
    )


async def test_bad_arguments_are_refused(client: httpx.AsyncClient, state: AppState) -> None:
    owner, ws = await workspace(client)
    (draft,) = await seed(state, uid(ws), [Item("Draft", direction((0, 1.0)), status="DRAFT")])
    for variables in (
        {"kind": "TOPICS", "first": 0},
        {"kind": "TOPICS", "first": 51},
        {"kind": "TOPICS", "first": 5, "c": gid("Content", draft)},
    ):
        body = await gql(client, QUERY, {"ws": ws, "c": None, **variables}, headers=owner.headers)
        assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT", body


async def test_statements_do_not_grow_with_first(
    analytics_app: Starlette, client: httpx.AsyncClient, state: AppState
) -> None:
    owner, ws = await workspace(client)
    items = [
        Item(
            f"Post {i}",
            direction((i % 3, 1.0), noise=0.02, seed=i),
            tags=(f"t{i % 3}",),
            posts=[(Platform.X, 1000, 10 + 7 * i, 2)],
        )
        for i in range(15)
    ]
    items.append(Item("Linked", posts=[(Platform.LINKEDIN, 1000, 10, 2)]))
    items.append(Item("Draft", direction((0, 1.0)), status="DRAFT"))
    await seed(state, uid(ws), items)
    await gql(client, "{ __typename }", headers=owner.headers)  # its principal, cached
    for kind in ("TOPICS", "CONTENT_TO_REPURPOSE", "SIMILAR_HIGH_PERFORMERS"):
        counts = []
        sizes = []
        for first in (1, 10):
            with count_statements(analytics_app) as statements:
                found = await ask(client, owner, ws, kind, first=first)
            counts.append(len(statements))
            sizes.append(len(found))
        assert sizes[0] == 1 and sizes[1] > 1, (kind, sizes)
        assert counts[0] == counts[1], (kind, counts)
