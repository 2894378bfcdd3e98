"""exportAnalytics: the CSV's columns sum to the dashboard's figures for the same period
(both sources, a late event, several platforms), cells are safe from formula injection,
the headers, and refused links: tampered, expired, someone else's, a revoked signer."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

import httpx
from sqlalchemy import update
from starlette.applications import Starlette

from app.models import ApiKey
from app.models.vocabulary import ExportFormat
from app.services.analytics import dashboard_rows as dashboard
from app.services.analytics import export
from tests.analytics.dashboard_data import FORMULA_TITLE, SINCE, UNTIL, build, build_other, query
from tests.engagement.conftest import Tenant
from tests.helpers import gql
from tests.teams import gid

EXPORT = """
query($ws: ID!, $from: DateTime!, $to: DateTime!) {
  exportAnalytics(workspaceId: $ws, from: $from, to: $to, format: CSV) { url expiresAt filename }
}
"""


async def link(client: httpx.AsyncClient, tenant: Tenant, role: str = "VIEWER") -> Any:
    body = await gql(
        client,
        EXPORT,
        {
            "ws": gid("Workspace", tenant.workspace_id),
            "from": SINCE.isoformat(),
            "to": UNTIL.isoformat(),
        },
        headers={"Authorization": f"Bearer {tenant.keys[role]}"},
    )
    assert "errors" not in body, body
    return body["data"]["exportAnalytics"]


def local(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"


def total(rows: list[dict[str, str]], column: str, source: str | None = None) -> Decimal:
    return sum(
        (Decimal(r[column]) for r in rows if r[column] and source in (None, r["source"])),
        Decimal(0),
    )


async def test_the_csv_matches_the_dashboard(
    analytics_app: Starlette, client: httpx.AsyncClient
) -> None:
    world = await build(analytics_app, client)
    await build_other(analytics_app, client)
    made = await link(client, world.tenant)
    assert made["filename"] == "analytics-20261110T0600-20261112T1800.csv"
    response = await client.get(local(made["url"]))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert response.headers["content-disposition"] == f'attachment; filename="{made["filename"]}"'
    assert response.headers["cache-control"] == "no-store"
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert list(rows[0]) == list(export.COLUMNS)

    d = (await query(client, world.tenant))["data"]["analyticsDashboard"]
    combined, platform, first_party = d["combined"], d["platform"], d["firstParty"]
    assert total(rows, "posts") == combined["posts"] == 3
    assert total(rows, "impressions") == combined["impressions"] == 1005
    assert total(rows, "engagements") == combined["engagements"] == 53
    assert total(rows, "clicks") == combined["clicks"] == 21
    assert total(rows, "conversions") == combined["conversions"] == 1
    assert (
        total(rows, "conversion_value")
        == Decimal("12.5")
        == Decimal(str(combined["conversionValue"]))
    )
    for column in ("impressions", "likes", "comments", "shares", "clicks"):
        assert total(rows, column, "PLATFORM") == platform[column], column
        assert total(rows, column, "FIRST_PARTY") == first_party[column], column
    # One row per (item, platform, source); another workspace's item never shows.
    keys = [(r["content_id"], r["platform"], r["source"]) for r in rows]
    assert len(keys) == len(set(keys))
    assert {r["content_id"] for r in rows} == {str(c) for c in world.contents}
    # An unknown counter is an empty cell, not 0 (Mastodon reports no impressions).
    (mastodon,) = [r for r in rows if r["platform"] == "MASTODON" and r["source"] == "PLATFORM"]
    assert (mastodon["impressions"], mastodon["likes"], mastodon["clicks"]) == ("", "7", "")
    # The formula title is shown as text.
    assert {r["title"] for r in rows if r["content_id"] == str(world.contents[1])} == {
        "'" + FORMULA_TITLE
    }


def test_cells_are_escaped() -> None:
    for raw in ("=1+1", "+SUM(A1)", "-2+3", "@cmd", "\tx", "\rx"):
        assert export.safe_cell(raw) == "'" + raw
    assert export.safe_cell("Plain") == "Plain" and export.safe_cell(5) == 5


async def test_refused_links(analytics_app: Starlette, client: httpx.AsyncClient) -> None:
    state = analytics_app.state.smartcontent
    world = await build_other(analytics_app, client)
    made = await link(client, world)
    path = local(made["url"])
    token = path.split("token=", 1)[1]

    # Tampered: another workspace or period in the body, or a wrong signature.
    body, _, mac = token.partition(".")
    for forged in (f"{body[:-2]}AA.{mac}", f"{body}.{mac[:-2]}AA", "garbage", ""):
        response = await client.get(f"/analytics/export?token={forged}")
        assert response.status_code == 403, response.text
        assert "invalid" in response.json()["errors"][0]["message"]
        assert token not in response.text

    # Expired.
    grant = export.verify(state.keys.signing_secret, token, datetime.now(UTC))
    old = export.Grant(
        grant.workspace_id,
        grant.subject_kind,
        grant.subject_id,
        dashboard.Period(SINCE, UNTIL),
        ExportFormat.CSV,
        datetime.now(UTC) - timedelta(seconds=1),
    )
    response = await client.get(
        f"/analytics/export?token={export.sign(state.keys.signing_secret, old)}"
    )
    assert response.status_code == 410 and "expired" in response.text

    # Someone else presenting it (their own credentials): refused.
    response = await client.get(path, headers={"Authorization": f"Bearer {world.keys['ADMIN']}"})
    assert response.status_code == 403 and "someone else" in response.text

    # The signer's own credentials are fine; then the signer loses access.
    viewer = {"Authorization": f"Bearer {world.keys['VIEWER']}"}
    assert (await client.get(path, headers=viewer)).status_code == 200
    async with state.session_factory() as session, session.begin():
        await session.execute(
            update(ApiKey).where(ApiKey.id == grant.subject_id).values(revoked_at=datetime.now(UTC))
        )
    response = await client.get(path)
    assert response.status_code == 403 and "no longer" in response.text
