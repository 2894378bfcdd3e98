"""The review workflow: the role is checked before the item's status, and archiving."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from strawberry import relay

from app.auth import Principal, RequestMeta, authenticate
from app.errors import Forbidden, ValidationFailed
from app.models.vocabulary import ContentStatus
from app.services.content import items, workflow
from tests.content.test_items import WORKFLOW, _create, _step, _team
from tests.helpers import Account


async def _principal(app: Starlette, who: Account) -> Principal:
    state = app.state.smartcontent
    return await authenticate(
        state.session_factory,
        state.keys.signing_secret,
        who.headers["Authorization"],
        RequestMeta(),
    )


def _raw(global_id: str) -> uuid.UUID:
    return uuid.UUID(relay.GlobalID.from_id(global_id).node_id)


@pytest.mark.parametrize(
    ("role", "op", "submitted"),
    [
        ("member", "approveContent", False),  # a draft: the table refuses it too
        ("member", "requestChanges", False),
        ("viewer", "submitForReview", True),  # already in review
        ("viewer", "approveContent", True),
    ],
)
async def test_a_role_without_the_right_is_forbidden_whatever_the_status(
    client: httpx.AsyncClient, role: str, op: str, submitted: bool
) -> None:
    """Before, a member approving a draft heard INVALID_TRANSITION: the item's status
    leaked to someone who may not make the move in any status."""
    _, ws, people = await _team(client)
    content_id = (await _create(client, people["member"], ws))["content"]["id"]
    if submitted:
        await _step(client, people["member"], "submitForReview", content_id)
    assert op in WORKFLOW
    assert await _step(client, people[role], op, content_id) == {"graphql_error": "FORBIDDEN"}


async def _status(app: Starlette, who: Account, content_id: str) -> str:
    row = await items.get(app.state.smartcontent, await _principal(app, who), _raw(content_id))
    return row.status


async def test_archive_and_unarchive(app: Starlette, client: httpx.AsyncClient) -> None:
    _, ws, people = await _team(client)
    state = app.state.smartcontent
    admin = await _principal(app, people["admin"])
    member = await _principal(app, people["member"])
    content_id = (await _create(client, people["member"], ws))["content"]["id"]
    raw = _raw(content_id)
    with pytest.raises(Forbidden):
        await workflow.archive(state, member, raw)
    archived = await workflow.archive(state, admin, raw)
    assert archived.status == ContentStatus.ARCHIVED.value
    # Requesting changes is no way out of the archive; unarchiving is.
    refused: dict[str, Any] = await _step(client, people["admin"], "requestChanges", content_id)
    assert [e["code"] for e in refused["errors"]] == ["INVALID_TRANSITION"]
    with pytest.raises(Forbidden):
        await workflow.unarchive(state, member, raw)
    restored = await workflow.unarchive(state, admin, raw)
    assert restored.status == ContentStatus.DRAFT.value
    # Unarchive moves archived items only; archive follows the table (not from IN_REVIEW).
    with pytest.raises(ValidationFailed) as not_archived:
        await workflow.unarchive(state, admin, raw)
    assert [e.code for e in not_archived.value.errors] == ["INVALID_TRANSITION"]
    await _step(client, people["member"], "submitForReview", content_id)
    with pytest.raises(ValidationFailed) as in_review:
        await workflow.archive(state, admin, raw)
    assert [e.code for e in in_review.value.errors] == ["INVALID_TRANSITION"]
    assert await _status(app, people["member"], content_id) == "IN_REVIEW"


ARCHIVE = "mutation($id: ID!) { %s(id: $id) { content { status } errors { code } } }"


async def test_archive_mutations_over_graphql(client: httpx.AsyncClient) -> None:
    _, ws, people = await _team(client)
    content_id = (await _create(client, people["member"], ws))["content"]["id"]

    async def call(who: str, op: str) -> dict[str, Any]:
        response = await client.post(
            "/graphql",
            json={"query": ARCHIVE % op, "variables": {"id": content_id}},
            headers=people[who].headers,
        )
        body: dict[str, Any] = response.json()
        return body

    refused = await call("member", "archiveContent")
    assert refused["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    archived = await call("admin", "archiveContent")
    assert archived["data"]["archiveContent"] == {"content": {"status": "ARCHIVED"}, "errors": []}
    again = await call("admin", "archiveContent")
    assert [e["code"] for e in again["data"]["archiveContent"]["errors"]] == ["INVALID_TRANSITION"]
    restored = await call("admin", "unarchiveContent")
    assert restored["data"]["unarchiveContent"] == {"content": {"status": "DRAFT"}, "errors": []}
