"""An export link signed by a user (not an API key) stops working once the user is no
longer a member: the download re-checks the signer's access."""

from __future__ import annotations

from typing import Any

import httpx

from tests.analytics.dashboard_data import SINCE, UNTIL
from tests.analytics.test_export import EXPORT, local
from tests.helpers import create_workspace, gql, register
from tests.teams import REMOVE, join


async def test_a_removed_member_cannot_download_what_they_signed(
    client: httpx.AsyncClient, analytics_app: Any
) -> None:
    owner = await register(client, name="Owner")
    ws = await create_workspace(client, owner, "Exports")
    viewer = await join(client, owner, ws, "VIEWER", name="Viewer")
    body = await gql(
        client,
        EXPORT,
        {"ws": ws, "from": SINCE.isoformat(), "to": UNTIL.isoformat()},
        headers=viewer.headers,
    )
    assert "errors" not in body, body
    path = local(body["data"]["exportAnalytics"]["url"])
    first = await client.get(path)
    assert first.status_code == 200, first.text
    assert first.headers["content-type"].startswith("text/csv")

    removed = await gql(client, REMOVE, {"ws": ws, "u": viewer.user_id}, headers=owner.headers)
    assert removed["data"]["removeMember"]["success"] is True, removed
    response = await client.get(path)
    assert response.status_code == 403 and "no longer" in response.text
    # The owner's own link still works.
    own = await gql(
        client,
        EXPORT,
        {"ws": ws, "from": SINCE.isoformat(), "to": UNTIL.isoformat()},
        headers=owner.headers,
    )
    assert (await client.get(local(own["data"]["exportAnalytics"]["url"]))).status_code == 200
