"""POST /ingest/events as partners call it: API-key auth, JSON and NDJSON bodies, per-event
refusals with reasons, idempotency by event id, tenant isolation, body bounds."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import httpx
import orjson
from sqlalchemy import text
from starlette.applications import Starlette

from tests.conftest import Servers, make_settings, running_app
from tests.engagement.conftest import Tenant, count_raw, event, make_tenant, post_events, state_of
from tests.teams import gid


async def test_accepts_json_and_ndjson_and_stores_nothing_twice(
    app: Starlette, client: httpx.AsyncClient, tenant: Tenant
) -> None:
    content = tenant.content_ids[0]
    batch = [event(content, value=1.5) for _ in range(5)]
    batch.append(dict(batch[0]))  # a duplicate inside the batch
    response = await post_events(client, tenant, batch)
    assert response.status_code == 200, response.text
    assert response.json() == {"accepted": 5, "duplicate": 1, "refused": 0, "errors": []}
    # The same batch again, as NDJSON: every event is a duplicate.
    again = await post_events(client, tenant, batch, as_ndjson=True)
    assert again.json() == {"accepted": 0, "duplicate": 6, "refused": 0, "errors": []}
    # A re-sent id with another time is still the same event.
    moved = dict(batch[1], occurredAt=(datetime.now(UTC) - timedelta(days=40)).isoformat())
    fresh = event(content)
    third = await post_events(client, tenant, [moved, fresh], as_ndjson=True)
    assert third.json() == {"accepted": 1, "duplicate": 1, "refused": 0, "errors": []}
    assert await count_raw(app) == 6
    async with state_of(app).session_factory() as session:
        ids = (await session.execute(text("SELECT count(*) FROM engagement_event_ids"))).scalar()
    assert ids == 6


async def test_global_ids_targets_and_values_are_stored(
    app: Starlette, client: httpx.AsyncClient, tenant: Tenant
) -> None:
    batch = [
        event(None, contentId=gid("Content", tenant.content_ids[1]), type="CLICK"),
        event(None, targetId=gid("PostTarget", tenant.target_id), type="LIKE"),
        event(
            tenant.content_ids[0],
            targetId=str(tenant.target_id),
            type="CONVERSION",
            value=19.99,
            properties={"utm": {"source": "newsletter"}, "tags": ["a", "b"]},
            variant="B",
        ),
    ]
    response = await post_events(client, tenant, batch)
    assert response.json()["accepted"] == 3, response.text
    async with state_of(app).session_factory() as session:
        rows = (
            await session.execute(
                text(
                    "SELECT event_type, content_id, target_id, platform, value, properties, "
                    "variant FROM engagement_events ORDER BY event_type"
                )
            )
        ).all()
    by_type = {r[0]: r for r in rows}
    assert by_type["CLICK"][1:4] == (tenant.content_ids[1], None, None)
    # A target's events belong to its post's content, on its platform.
    assert by_type["LIKE"][1:4] == (tenant.content_ids[0], tenant.target_id, "X")
    assert str(by_type["CONVERSION"][4]) == "19.990000"
    assert by_type["CONVERSION"][5] == {"utm": {"source": "newsletter"}, "tags": ["a", "b"]}
    # The A/B arm is kept; events that name none have none.
    assert (by_type["CONVERSION"][6], by_type["CLICK"][6]) == ("B", None)


async def test_malformed_events_are_refused_with_reasons_and_the_good_ones_kept(
    app: Starlette, client: httpx.AsyncClient, tenant: Tenant, other: Tenant
) -> None:
    content = tenant.content_ids[0]
    now = datetime.now(UTC)
    bad = {
        "no id": event(content, id=None),
        "empty id": event(content, id=""),
        "NUL in id": event(content, id="a\x00b"),
        "long id": event(content, id="x" * 129),
        "no target": event(None),
        "bad content id": event(None, contentId="not-an-id"),
        "wrong type of global id": event(None, contentId=gid("Workspace", tenant.workspace_id)),
        "other workspace": event(other.content_ids[0]),
        "unknown content": event(uuid.uuid4()),
        "unknown target": event(None, targetId=str(uuid.uuid4())),
        "target of other content": event(tenant.content_ids[1], targetId=str(tenant.target_id)),
        "bad type": event(content, type="PURCHASE"),
        "naive time": event(content, occurredAt="2026-11-01T10:00:00"),
        "not a time": event(content, occurredAt="yesterday"),
        "future": event(content, occurredAt=(now + timedelta(hours=2)).isoformat()),
        "ancient": event(content, occurredAt="1970-01-01T00:00:00Z"),
        "value text": event(content, value="12"),
        "value bool": event(content, value=True),
        "value huge": event(content, value=1e20),
        "properties list": event(content, properties=[1, 2]),
        "properties deep": event(content, properties={"a": {"b": {"c": {"d": {"e": 1}}}}}),
        "properties big": event(content, properties={"k": "v" * 5000}),
        "properties NUL": event(content, properties={"k": "a\x00"}),
        "unknown field": event(content, contentID="x"),
        "variant lower case": event(content, variant="b"),
        "variant too long": event(content, variant="ABCD"),
        "variant not text": event(content, variant=2),
    }
    good = [event(content), event(content, type="SHARE")]
    batch = [good[0], *bad.values(), good[1], "not an object"]
    response = await post_events(client, tenant, batch)
    assert response.status_code == 200, response.text
    report = response.json()
    assert report["accepted"] == 2 and report["duplicate"] == 0
    assert report["refused"] == len(bad) + 1
    errors = {e["index"]: e for e in report["errors"]}
    for index, name in enumerate(bad, start=1):
        assert index in errors, name
        assert errors[index]["reason"], name
    assert errors[1]["id"] is None and errors[3]["id"] is not None
    assert errors[len(batch) - 1]["reason"] == "an event must be a JSON object"
    assert "timezone" in errors[list(bad).index("naive time") + 1]["reason"]
    assert "no such content" in errors[list(bad).index("other workspace") + 1]["reason"]
    assert "variant" in errors[list(bad).index("variant too long") + 1]["reason"]
    assert [e["index"] for e in report["errors"]] == sorted(errors)
    assert await count_raw(app) == 2


async def test_ndjson_line_that_is_not_json_is_refused_alone(
    app: Starlette, client: httpx.AsyncClient, tenant: Tenant
) -> None:
    first, last = event(tenant.content_ids[0]), event(tenant.content_ids[0])
    body = orjson.dumps(first) + b"\n{broken\n" + b'{"id": "\\ud800"}\n' + orjson.dumps(last)
    response = await post_events(client, tenant, body, as_ndjson=True)
    report = response.json()
    assert (report["accepted"], report["refused"]) == (2, 2), report
    assert [e["index"] for e in report["errors"]] == [1, 2]
    assert all("JSON" in e["reason"] for e in report["errors"])


async def test_authentication_scope_and_body_refusals(
    app: Starlette, client: httpx.AsyncClient, tenant: Tenant
) -> None:
    body = orjson.dumps([event(tenant.content_ids[0])])
    json_type = {"Content-Type": "application/json"}
    missing = await client.post("/ingest/events", content=body, headers=json_type)
    assert missing.status_code == 401
    assert missing.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    wrong = await client.post(
        "/ingest/events",
        content=body,
        headers={**json_type, "Authorization": "Bearer sk_nope_nothing"},
    )
    assert wrong.status_code == 401
    forged = tenant.keys["MEMBER"][:-4] + "0000"
    forged_response = await client.post(
        "/ingest/events", content=body, headers={**json_type, "Authorization": f"Bearer {forged}"}
    )
    assert forged_response.status_code == 401
    viewer = await post_events(client, tenant, body, role="VIEWER")
    assert viewer.status_code == 403
    assert viewer.json()["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert (await post_events(client, tenant, body, role="ADMIN")).status_code == 200
    text_body = await client.post(
        "/ingest/events",
        content=body,
        headers={**tenant.headers(), "Content-Type": "text/plain"},
    )
    assert text_body.status_code == 415
    not_array = await post_events(client, tenant, b'{"id": "x"}')
    assert not_array.status_code == 400
    broken = await post_events(client, tenant, b"[{")
    assert broken.status_code == 400
    empty = await post_events(client, tenant, b"[]")
    assert empty.status_code == 400
    assert await count_raw(app) == 1


async def test_oversize_body_and_too_many_events_are_413(
    app: Starlette, client: httpx.AsyncClient, tenant: Tenant
) -> None:
    limit = state_of(app).settings.ingest_max_body_bytes
    padding = b" " * (limit + 1)
    declared = await post_events(client, tenant, b"[" + padding + b"]")
    assert declared.status_code == 413
    assert declared.json()["errors"][0]["extensions"]["code"] == "PAYLOAD_TOO_LARGE"

    async def chunks():  # no Content-Length: refused while streaming
        for _ in range(limit // 65536 + 2):
            yield b" " * 65536

    streamed = await client.post("/ingest/events", content=chunks(), headers=tenant.headers())
    assert streamed.status_code == 413
    max_events = state_of(app).settings.ingest_max_events
    many = b"\n".join(b'{"id": "%d"}' % i for i in range(max_events + 1))
    too_many = await post_events(client, tenant, many, as_ndjson=True)
    assert too_many.status_code == 413
    assert "at most" in too_many.json()["errors"][0]["message"]
    assert await count_raw(app) == 0


async def test_a_deleted_workspace_takes_its_events_along(
    app: Starlette, client: httpx.AsyncClient, tenant: Tenant, other: Tenant
) -> None:
    await post_events(client, tenant, [event(tenant.content_ids[0])])
    await post_events(client, other, [event(other.content_ids[0])])
    async with state_of(app).session_factory() as session, session.begin():
        await session.execute(
            text("DELETE FROM workspaces WHERE id = :w"), {"w": tenant.workspace_id}
        )
    async with state_of(app).session_factory() as session:
        left = (
            await session.execute(
                text(
                    "SELECT (SELECT count(*) FROM engagement_events WHERE workspace_id = :w), "
                    "(SELECT count(*) FROM engagement_event_ids WHERE workspace_id = :w), "
                    "(SELECT count(*) FROM engagement_rollup_deltas WHERE workspace_id = :w), "
                    "(SELECT count(*) FROM engagement_batches WHERE workspace_id = :w), "
                    "(SELECT count(*) FROM engagement_batches)"
                ),
                {"w": tenant.workspace_id},
            )
        ).one()
    assert tuple(left) == (0, 0, 0, 0, 1)  # the other workspace's batch stays
    assert await count_raw(app) == 1  # and its event


async def test_ingest_is_rate_limited_per_key(servers: Servers) -> None:
    async with running_app(make_settings(servers, rate_limit_pro=2)) as limited:
        tenant = await make_tenant(limited, contents=1)
        transport = httpx.ASGITransport(app=limited)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            statuses = [
                (await post_events(client, tenant, [event(tenant.content_ids[0])])).status_code
                for _ in range(4)
            ]
        assert statuses[:2] == [200, 200] and statuses[-1] == 429, statuses
