"""Every connection validates its cursor: anything but a cursor it issued is BAD_USER_INPUT."""

from __future__ import annotations

import base64
import json
import uuid
from datetime import UTC, datetime

import httpx
import pytest

from app.errors import BadUserInput
from app.models import AuditEntry, Content
from app.pagination import Keyset
from tests.helpers import create_workspace, gql, register


def _cursor(values: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(values).encode()).decode()


# Well-formed (base64 of a JSON list of the right length) but with values of the wrong type,
# and plain garbage.
BAD_CURSORS = [
    _cursor([1, 2]),
    _cursor([None, None]),
    _cursor(["2026-01-01T00:00:00+00:00", 5]),
    _cursor(["not a time", str(uuid.uuid4())]),
    _cursor(["2026-01-01T00:00:00", str(uuid.uuid4())]),  # naive time
    _cursor([{"a": 1}, [1]]),
    _cursor(["x"]),
    _cursor([True]),
    _cursor([1e400]),
    "%%%",
    "bm90IGpzb24=",
    "é",
    "A" * 5000,
]

LISTS = {
    "contents": "query($ws: ID!, $after: String) {"
    " contents(workspaceId: $ws, after: $after) { edges { cursor } } }",
    "auditLog": "query($ws: ID!, $after: String) {"
    " auditLog(workspaceId: $ws, after: $after) { edges { cursor } } }",
    "campaigns": "query($ws: ID!, $after: String) {"
    " campaigns(workspaceId: $ws, after: $after) { edges { cursor } } }",
    "mediaAssets": "query($ws: ID!, $after: String) {"
    " mediaAssets(workspaceId: $ws, after: $after) { edges { cursor } } }",
    "abTests": "query($ws: ID!, $after: String) {"
    " abTests(workspaceId: $ws, after: $after) { edges { cursor } } }",
    "members": "query($ws: ID!, $after: String) {"
    " workspace(id: $ws) { members(after: $after) { edges { cursor } } } }",
}


@pytest.mark.parametrize("operation", sorted(LISTS))
async def test_wrong_cursors_are_bad_user_input(client: httpx.AsyncClient, operation: str) -> None:
    owner = await register(client)
    ws = await create_workspace(client, owner)
    for cursor in BAD_CURSORS:
        body = await gql(
            client, LISTS[operation], {"ws": ws, "after": cursor}, headers=owner.headers
        )
        codes = [e["extensions"]["code"] for e in body.get("errors", [])]
        assert codes == ["BAD_USER_INPUT"], (operation, cursor, body)


async def test_issued_cursors_page_through(client: httpx.AsyncClient) -> None:
    owner = await register(client)
    ws = await create_workspace(client, owner)
    query = (
        "query($ws: ID!, $after: String) { auditLog(workspaceId: $ws, first: 1, after: $after)"
        " { edges { cursor node { action } } pageInfo { hasNextPage endCursor } } }"
    )
    body = await gql(client, query, {"ws": ws}, headers=owner.headers)
    first = body["data"]["auditLog"]
    assert first["edges"], body
    after = first["pageInfo"]["endCursor"]
    body = await gql(client, query, {"ws": ws, "after": after}, headers=owner.headers)
    assert "errors" not in body, body


@pytest.mark.no_db
def test_keyset_round_trips_typed_values() -> None:
    keyset = Keyset((Content.created_at, Content.id))
    row = Content(created_at=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC), id=uuid.uuid4())
    assert keyset.decode(keyset.encode(row)) == (row.created_at, row.id)
    ids = Keyset((AuditEntry.id,))
    assert ids.decode(ids.encode(AuditEntry(id=42))) == (42,)
    with pytest.raises(BadUserInput):
        ids.decode(_cursor(["42"]))
