"""A/B tests through the API: createAbTest refuses bad input with codes and stores
nothing, stopAbTest freezes the window, abTest counts each arm from events ingested
through POST /ingest/events with their `variant` (equal to hand counts; other content,
other labels, unnamed events and events outside the window's hours are not counted), its
p-value and probability equal significance.py's and a reference computation, a winner
only when significant, and another workspace sees nothing."""

from __future__ import annotations

import asyncio
import math
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from scipy import special, stats
from sqlalchemy import func, select, text
from starlette.applications import Starlette

from app.models import AbTest, AuditEntry, Content
from app.services.analytics import rollups, significance
from tests.analytics.ab_testing import ASSIGN, CREATE, LIST, STOP, TEST, add_variants, auth, create
from tests.engagement.conftest import Tenant, event, make_tenant, post_events, state_of
from tests.helpers import gql
from tests.teams import gid, uid


@pytest.fixture
async def tenant(analytics_app: Starlette) -> Tenant:
    return await make_tenant(analytics_app, contents=3)


@pytest.fixture
async def other(analytics_app: Starlette) -> Tenant:
    return await make_tenant(analytics_app, contents=1)


async def count_tests(app: Starlette) -> int:
    async with state_of(app).session_factory() as session:
        return int(await session.scalar(select(func.count()).select_from(AbTest)) or 0)


async def test_bad_input_is_refused_with_codes_and_stores_nothing(
    client: httpx.AsyncClient, analytics_app: Starlette, tenant: Tenant, other: Tenant
) -> None:
    item, second = tenant.content_ids[0], tenant.content_ids[1]
    b, c, d, e, f = await add_variants(analytics_app, tenant, item, "BCDEF")
    (second_b,) = await add_variants(analytics_app, tenant, second, "B")
    (foreign,) = await add_variants(analytics_app, other, other.content_ids[0], "B")

    async def codes(*args: Any, **kwargs: Any) -> list[tuple[str, str]]:
        body = await create(client, tenant, *args, **kwargs)
        assert "errors" not in body, body
        payload = body["data"]["createAbTest"]
        assert payload["abTest"] is None
        return [(err["field"], err["code"]) for err in payload["errors"]]

    assert await codes(item, []) == [("variantIds", "REQUIRED")]
    assert await codes(item, [b, c, d, e, f]) == [("variantIds", "TOO_MANY")]
    assert await codes(item, [b, b]) == [("variantIds", "DUPLICATE")]
    assert await codes(item, [b, second_b]) == [("variantIds.1", "OTHER_CONTENT")]
    # Another workspace's variant looks like none at all.
    assert await codes(item, [foreign]) == [("variantIds.0", "NOT_FOUND")]
    assert await codes(item, [b, c], split=[0.5, 0.5]) == [("trafficSplit", "WRONG_LENGTH")]
    assert await codes(item, [b], split=[1.0, 0.0]) == [("trafficSplit", "OUT_OF_RANGE")]
    assert await codes(item, [b], split=[-0.5, 1.5]) == [("trafficSplit", "OUT_OF_RANGE")]
    assert await codes(item, [b], split=[0.6, 0.5]) == [("trafficSplit", "SUM_NOT_ONE")]
    # Every problem at once.
    assert sorted(await codes(item, [b, b, second_b], split=[1.0])) == [
        ("trafficSplit", "WRONG_LENGTH"),
        ("variantIds", "DUPLICATE"),
        ("variantIds.2", "OTHER_CONTENT"),
    ]
    async with state_of(analytics_app).session_factory() as session, session.begin():
        row = await session.get(Content, tenant.content_ids[2])
        assert row is not None
        row.deleted_at = datetime.now(UTC)
    (deleted_b,) = await add_variants(analytics_app, tenant, tenant.content_ids[2], "B")
    assert await codes(tenant.content_ids[2], [deleted_b]) == [("contentId", "DELETED")]
    assert await count_tests(analytics_app) == 0

    # Viewers read tests but cannot start one; another workspace's item does not exist.
    viewer = await create(client, tenant, item, [b], role="VIEWER")
    assert viewer["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    outsider = await create(client, other, item, [b])
    assert outsider["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    wrong_type = await gql(
        client,
        CREATE,
        {"i": {"contentId": gid("Content", item), "variantIds": [gid("Content", item)]}},
        **auth(tenant),
    )
    assert wrong_type["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    assert await count_tests(analytics_app) == 0

    # Within 1e-6 of 1 is 1.
    made = await create(client, tenant, item, [b, c], split=[0.5, 0.25, 0.2500004])
    assert made["data"]["createAbTest"]["errors"] == []


async def test_one_running_test_per_item_stopping_freezes_its_end(
    client: httpx.AsyncClient, analytics_app: Starlette, tenant: Tenant
) -> None:
    item = tenant.content_ids[0]
    b, c = await add_variants(analytics_app, tenant, item, "BC")
    payload = (await create(client, tenant, item, [c, b]))["data"]["createAbTest"]
    assert payload["errors"] == []
    made = payload["abTest"]
    assert (made["status"], made["metric"], made["labels"], made["stoppedAt"]) == (
        "RUNNING",
        "CTR",
        ["A", "C", "B"],  # the control first, then the variants as named
        None,
    )
    assert made["trafficSplit"] == pytest.approx([1 / 3] * 3)

    again = (await create(client, tenant, item, [b]))["data"]["createAbTest"]
    assert [(e["field"], e["code"]) for e in again["errors"]] == [("contentId", "EXISTS")]

    stopped = (await gql(client, STOP, {"id": made["id"]}, **auth(tenant)))["data"]["stopAbTest"]
    assert stopped["errors"] == [] and stopped["abTest"]["status"] == "STOPPED"
    assert stopped["abTest"]["stoppedAt"] >= made["startedAt"]
    twice = (await gql(client, STOP, {"id": made["id"]}, **auth(tenant)))["data"]["stopAbTest"]
    assert twice["errors"] == [{"field": "id", "code": "INVALID_STATE"}]
    read = (await gql(client, TEST, {"id": made["id"]}, **auth(tenant, "VIEWER")))["data"]
    assert read["abTest"]["countedUntil"] == stopped["abTest"]["stoppedAt"]  # frozen
    # No events yet: no winner, and the reason says so.
    assert read["abTest"]["verdict"]["winner"] is None
    assert read["abTest"]["verdict"]["reason"] == "TOO_FEW_TRIALS"
    assert [a["trials"] for a in read["abTest"]["arms"]] == [0, 0, 0]

    # Stopped, the item can be tested again.
    assert (await create(client, tenant, item, [b]))["data"]["createAbTest"]["errors"] == []
    async with state_of(analytics_app).session_factory() as session:
        actions = (
            await session.scalars(
                select(AuditEntry.action)
                .where(AuditEntry.workspace_id == tenant.workspace_id)
                .order_by(AuditEntry.created_at)
            )
        ).all()
    assert list(actions) == ["createAbTest", "stopAbTest", "createAbTest"]


def _clicks_and_impressions(
    content: uuid.UUID, variant: str | None, impressions: int, clicks: int, at: datetime
) -> list[dict[str, Any]]:
    when = at.isoformat()
    return [
        *(
            event(content, type="IMPRESSION", variant=variant, occurredAt=when)
            for _ in range(impressions)
        ),
        *(event(content, type="CLICK", variant=variant, occurredAt=when) for _ in range(clicks)),
    ]


def _reference_probability(control: tuple[int, int], variant: tuple[int, int]) -> float:
    """P(B > A) for Beta(1 + s, 1 + n - s) posteriors in closed form (Evan Miller's sum)."""
    a_a, b_a = 1 + control[0], 1 + control[1] - control[0]
    a_b, b_b = 1 + variant[0], 1 + variant[1] - variant[0]
    return sum(
        math.exp(
            special.betaln(a_a + i, b_a + b_b)
            - math.log(b_b + i)
            - special.betaln(1 + i, b_b)
            - special.betaln(a_a, b_a)
        )
        for i in range(a_b)
    )


# The test's window: 10:30 to 13:30 UTC on a past day (its rows are moved there by hand).
START = datetime(2026, 11, 9, 10, 30, tzinfo=UTC)
STOP_AT = START + timedelta(hours=3)


async def test_arms_count_the_events_naming_them_and_match_the_statistics(
    client: httpx.AsyncClient, analytics_app: Starlette, tenant: Tenant, other: Tenant
) -> None:
    state = state_of(analytics_app)
    item, second = tenant.content_ids[0], tenant.content_ids[1]
    b, c = await add_variants(analytics_app, tenant, item, "BC")
    await add_variants(analytics_app, tenant, second, "B")
    made = (await create(client, tenant, item, [b, c]))["data"]["createAbTest"]["abTest"]
    await gql(client, STOP, {"id": made["id"]}, **auth(tenant))
    async with state.session_factory() as session, session.begin():
        await session.execute(
            text("UPDATE ab_tests SET started_at = :s, stopped_at = :e WHERE id = :id"),
            {"s": START, "e": STOP_AT, "id": uid(made["id"])},
        )

    inside = START + timedelta(minutes=40)
    # (impressions, clicks) per arm within the window, by hand.
    expected = {"A": (300, 15), "B": (300, 45), "C": (300, 18)}
    sent = [
        *_clicks_and_impressions(item, "A", 200, 10, inside),
        *_clicks_and_impressions(item, "A", 100, 5, START + timedelta(hours=2, minutes=59)),
        *_clicks_and_impressions(item, "B", 280, 40, inside),
        # The window is read by whole hours: the start's hour and the stop's count whole.
        *_clicks_and_impressions(item, "B", 10, 3, START - timedelta(minutes=25)),  # 10:05
        *_clicks_and_impressions(item, "B", 10, 2, STOP_AT + timedelta(minutes=15)),  # 13:45
        *_clicks_and_impressions(item, "C", 300, 18, inside),
        # Not counted: outside the window's hours, ...
        *_clicks_and_impressions(item, "B", 50, 50, START - timedelta(minutes=31)),  # 09:59
        *_clicks_and_impressions(item, "B", 50, 50, STOP_AT + timedelta(minutes=30)),  # 14:00
        # ... no variant named, a label that is no arm, another item's "B", ...
        *_clicks_and_impressions(item, None, 40, 40, inside),
        *_clicks_and_impressions(item, "D", 40, 40, inside),
        *_clicks_and_impressions(second, "B", 90, 90, inside),
        # ... and events of other types (CTR counts clicks over impressions).
        *(event(item, type="LIKE", variant="B", occurredAt=inside.isoformat()) for _ in range(30)),
        *(event(item, type="VIEW", variant="A", occurredAt=inside.isoformat()) for _ in range(30)),
    ]
    response = await post_events(client, tenant, sent)
    assert response.status_code == 200 and response.json()["accepted"] == len(sent)
    # The other workspace's own "B" of its own item, same hours.
    (foreign,) = await add_variants(analytics_app, other, other.content_ids[0], "B")
    foreign_events = _clicks_and_impressions(other.content_ids[0], "B", 60, 60, inside)
    assert (await post_events(client, other, foreign_events)).status_code == 200
    await rollups.apply_pending(state.session_factory)

    body = await gql(client, TEST, {"id": made["id"]}, **auth(tenant, "VIEWER"))
    assert "errors" not in body, body
    test = body["data"]["abTest"]
    assert test["countedFrom"] == datetime(2026, 11, 9, 10, tzinfo=UTC).isoformat()
    assert test["countedUntil"] == STOP_AT.isoformat()
    assert test["content"] == {"id": gid("Content", item)}
    arms = {arm["label"]: arm for arm in test["arms"]}
    assert list(arms) == ["A", "B", "C"]
    assert {label: (a["trials"], a["successes"]) for label, a in arms.items()} == expected
    assert arms["A"]["variant"] is None and arms["B"]["variant"] == {
        "id": gid("ContentVariant", b),
        "label": "B",
    }
    assert (arms["A"]["pValue"], arms["A"]["lift"], arms["A"]["probabilityToBeatControl"]) == (
        None,
        None,
        None,
    )

    n_a, s_a = expected["A"]
    for label in ("B", "C"):
        n, s = expected[label]
        arm = arms[label]
        assert arm["rate"] == s / n and arm["lift"] == pytest.approx((s / n) / (s_a / n_a) - 1)
        ours = significance.z_test(significance.Arm(s_a, n_a), significance.Arm(s, n))
        assert ours is not None
        assert arm["pValue"] == ours.p_value and arm["zScore"] == ours.z
        assert arm["probabilityToBeatControl"] == significance.probability_to_beat(
            significance.Arm(s_a, n_a), significance.Arm(s, n)
        )
        # References: the chi-square test of the 2x2 table without continuity correction is
        # the pooled two-proportion z-test; the Beta posteriors' comparison in closed form.
        table = [[s_a, n_a - s_a], [s, n - s]]
        chi2 = stats.chi2_contingency(table, correction=False)
        assert arm["pValue"] == pytest.approx(chi2.pvalue, rel=1e-9)
        assert arm["probabilityToBeatControl"] == pytest.approx(
            _reference_probability((s_a, n_a), (s, n)), abs=1e-8
        )

    # B (15 % against 5 %) is significant at 0.05 / 2; C (6 %) is not: B wins.
    assert arms["B"]["pValue"] < 0.025 < arms["C"]["pValue"]
    assert test["verdict"] == {
        "winner": "B",
        "reason": "SIGNIFICANT",
        "explanation": "B beats the control at p < 0.025.",
        "alpha": 0.025,
        "minTrialsPerArm": 100,
    }

    # Another workspace sees none of it, by id, as a node, in its lists or to assign.
    for document, variables in (
        (TEST, {"id": made["id"]}),
        (ASSIGN, {"id": made["id"], "key": "v1"}),
        (STOP, {"id": made["id"]}),
    ):
        denied = await gql(client, document, variables, **auth(other, "ADMIN"))
        assert denied["errors"][0]["extensions"]["code"] == "NOT_FOUND", denied
    node = await gql(
        client, "query($id: ID!) { node(id: $id) { id } }", {"id": made["id"]}, **auth(other)
    )
    assert node["data"]["node"] is None
    listed = await gql(
        client, LIST, {"ws": gid("Workspace", tenant.workspace_id), "n": 10}, **auth(other)
    )
    assert listed["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    own = await gql(
        client, LIST, {"ws": gid("Workspace", other.workspace_id), "n": 10}, **auth(other)
    )
    assert own["data"]["abTests"]["edges"] == []
    # Its own test of its own "B" counts its own events only.
    mine = await create(client, other, other.content_ids[0], [foreign])
    mine_id = mine["data"]["createAbTest"]["abTest"]["id"]
    async with state.session_factory() as session, session.begin():
        await session.execute(
            text("UPDATE ab_tests SET started_at = :s WHERE id = :id"),
            {"s": START, "id": uid(mine_id)},
        )
    theirs = (await gql(client, TEST, {"id": mine_id}, **auth(other)))["data"]["abTest"]
    assert [(a["label"], a["trials"], a["successes"]) for a in theirs["arms"]] == [
        ("A", 0, 0),
        ("B", 60, 60),
    ]


async def _lock_waiters(app: Starlette, at_least: int) -> None:
    """Wait until `at_least` sessions wait on a lock (a condition, polled; bounded)."""
    deadline = asyncio.get_running_loop().time() + 20
    while True:
        async with state_of(app).session_factory() as session:
            waiting = await session.scalar(
                text(
                    "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                    "AND datname = current_database()"
                )
            )
        if (waiting or 0) >= at_least:
            return
        assert asyncio.get_running_loop().time() < deadline, f"{waiting} waiting"
        await asyncio.sleep(0.02)


async def test_concurrent_starts_and_stops_take_effect_once(
    client: httpx.AsyncClient, analytics_app: Starlette, tenant: Tenant
) -> None:
    item = tenant.content_ids[0]
    b, c = await add_variants(analytics_app, tenant, item, "BC")
    # Both creations queue behind a lock on the item, then go one after the other: the
    # second sees the first's running test (without the lock both would pass the check).
    async with state_of(analytics_app).session_factory() as blocker, blocker.begin():
        await blocker.execute(select(Content.id).where(Content.id == item).with_for_update())
        racing = [
            asyncio.create_task(create(client, tenant, item, [variant])) for variant in (b, c)
        ]
        await _lock_waiters(analytics_app, 2)
    payloads = [(await task)["data"]["createAbTest"] for task in racing]
    assert sorted(len(p["errors"]) for p in payloads) == [0, 1], payloads
    assert [e["code"] for p in payloads for e in p["errors"]] == ["EXISTS"]
    assert await count_tests(analytics_app) == 1
    (made,) = [p["abTest"] for p in payloads if p["abTest"]]
    stops = await asyncio.gather(
        *(gql(client, STOP, {"id": made["id"]}, **auth(tenant)) for _ in range(3))
    )
    outcomes = sorted(tuple(e["code"] for e in s["data"]["stopAbTest"]["errors"]) for s in stops)
    assert outcomes == [(), ("INVALID_STATE",), ("INVALID_STATE",)]
