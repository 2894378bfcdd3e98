"""A page of recurring posts with their series, next occurrence and first-comment fields:
SQL statements per request do not grow with the page size (the series and next-occurrence
loaders batch)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
from starlette.applications import Starlette

from tests.publishing.conftest import Team, approved_content, call, connect_webhook
from tests.publishing.receiver import Receiver
from tests.publishing.test_query_counts import _statements

FIELDS = """
id occurrenceIndex nextOccurrenceAt recurrence { everyDays count until timezone endedAt }
targets { commentStatus firstComment commentPlatformId commentError commentAttempts }
"""
PAGE = (
    "query($ws: ID!, $n: Int!) { scheduledPosts(workspaceId: $ws, first: $n) {"
    f" edges {{ node {{ {FIELDS} }} }} }} }}"
)
SCHEDULE = (
    "mutation($i: SchedulePostInput!) { schedulePost(input: $i) {"
    " post { id } errors { code message } } }"
)


async def test_series_fields_do_not_grow_statements_with_the_page(
    client: httpx.AsyncClient, pub_app: Starlette, team: Team, receiver: Receiver
) -> None:
    hook = (await connect_webhook(client, team, receiver.url))["account"]["id"]
    content_id = await approved_content(client, team)
    start = datetime.now(UTC) + timedelta(hours=1)
    for i in range(8):
        variables = {
            "contentId": content_id,
            "socialAccountIds": [hook],
            "scheduledAt": (start + timedelta(minutes=i)).isoformat(),
            "recurrence": {"everyDays": 1 + i, "count": 3},
        }
        data = await call(client, team.owner, SCHEDULE, {"i": variables})
        assert data["schedulePost"]["errors"] == []
    small = await _statements(client, pub_app, team, PAGE, {"ws": team.workspace_id, "n": 2})
    large = await _statements(client, pub_app, team, PAGE, {"ws": team.workspace_id, "n": 8})
    assert small == large, (small, large)
    page = await call(client, team.owner, PAGE, {"ws": team.workspace_id, "n": 8})
    nodes = [e["node"] for e in page["scheduledPosts"]["edges"]]
    assert sorted(n["recurrence"]["everyDays"] for n in nodes) == list(range(1, 9))
    assert all(n["occurrenceIndex"] == 0 and n["nextOccurrenceAt"] for n in nodes)
