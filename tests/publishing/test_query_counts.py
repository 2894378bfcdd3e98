"""SQL statements per request must not grow with page size: a page of scheduled posts with
their targets, accounts and content, and the calendar."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
from starlette.applications import Starlette

from tests.api.test_query_counts import count_statements
from tests.publishing.conftest import (
    POST_FIELDS,
    Team,
    approved_content,
    call,
    connect_webhook,
    schedule,
)
from tests.publishing.receiver import Receiver

PAGE = (
    "query($ws: ID!, $n: Int!) { scheduledPosts(workspaceId: $ws, first: $n) {"
    f" edges {{ node {{ {POST_FIELDS} }} }} }} }}"
)
CALENDAR = (
    "query($ws: ID!, $f: DateTime!, $t: DateTime!) { calendar(workspaceId: $ws, from: $f,"
    f" to: $t) {{ date posts {{ {POST_FIELDS} }} }} }}"
)


async def _statements(
    client: httpx.AsyncClient,
    app: Starlette,
    team: Team,
    document: str,
    variables: dict[str, object],
) -> int:
    with count_statements(app) as statements:
        await call(client, team.owner, document, variables)
    return len(statements)


async def test_statements_do_not_grow_with_the_page(
    client: httpx.AsyncClient, pub_app: Starlette, team: Team, receiver: Receiver
) -> None:
    accounts = [
        (await connect_webhook(client, team, receiver.url, f"H{i}"))["account"]["id"]
        for i in range(2)
    ]
    content_id = await approved_content(client, team)
    start = datetime.now(UTC) + timedelta(hours=1)
    for i in range(8):
        payload = await schedule(client, team, content_id, accounts, start + timedelta(minutes=i))
        assert payload["errors"] == []
    window = {"f": start.isoformat(), "t": (start + timedelta(days=1)).isoformat()}
    small = await _statements(client, pub_app, team, PAGE, {"ws": team.workspace_id, "n": 2})
    large = await _statements(client, pub_app, team, PAGE, {"ws": team.workspace_id, "n": 8})
    assert small == large, (small, large)
    days = await _statements(client, pub_app, team, CALENDAR, {"ws": team.workspace_id, **window})
    assert days <= large + 1
