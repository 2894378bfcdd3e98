"""Webhook endpoints through the API: redelivery, secret rotation, updates and deletion,
the URL rules at registration, rotate-keys, and `node(id:)` for admins only."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from cryptography.fernet import Fernet

from app.models import WebhookEndpoint
from app.models.vocabulary import WebhookEvent
from app.security.crypto import SecretBox, derived_key
from app.services.outgoing import endpoints, outbox
from app.state import AppState
from tests.api.test_query_counts import count_statements
from tests.helpers import register
from tests.outgoing.event_receiver import EventReceiver
from tests.outgoing.steps import (
    approved_and_job,
    create_endpoint,
    deliveries_of,
    run_job,
    webhook_jobs,
)
from tests.publishing.conftest import Team, call
from tests.teams import uid

REDELIVER = (
    "mutation($id: ID!) { redeliverWebhook(deliveryId: $id) {"
    " delivery { id status attempts } errors { code } } }"
)
ROTATE = "mutation($id: ID!) { rotateWebhookSecret(id: $id) { secret errors { code } } }"


async def test_redelivery_rotation_update_and_delete(
    client: httpx.AsyncClient, state: AppState, team: Team, events: EventReceiver
) -> None:
    created, _, job = await approved_and_job(client, state, team, events)
    endpoint_id = created["endpoint"]["id"]
    assert await run_job(state, job.id) == "succeeded"
    rotated = (await call(client, team.owner, ROTATE, {"id": endpoint_id}))["rotateWebhookSecret"]
    assert rotated["errors"] == [] and rotated["secret"] != created["secret"]

    [listed] = await deliveries_of(client, team, endpoint_id)
    again = (await call(client, team.owner, REDELIVER, {"id": listed["id"]}))["redeliverWebhook"]
    assert again["errors"] == [] and again["delivery"]["status"] == "PENDING"
    [_, second_job] = await webhook_jobs(state)
    assert await run_job(state, second_job.id) == "succeeded"
    first, second = events.arrived
    assert first.json["id"] == second.json["id"]  # the same event
    assert first.headers["x-smartcontent-delivery"] != second.headers["x-smartcontent-delivery"]
    assert second.signed_with(rotated["secret"]) and not second.signed_with(created["secret"])

    update = (
        "mutation($i: UpdateWebhookEndpointInput!) { updateWebhookEndpoint(input: $i) {"
        " endpoint { events active description } errors { field code } } }"
    )
    changed = await call(
        client,
        team.owner,
        update,
        {"i": {"id": endpoint_id, "events": ["POST_FAILED"], "active": False, "description": "x"}},
    )
    assert changed["updateWebhookEndpoint"]["endpoint"] == {
        "events": ["POST_FAILED"],
        "active": False,
        "description": "x",
    }
    refused = await call(
        client, team.owner, update, {"i": {"id": endpoint_id, "url": "ftp://example.com/"}}
    )
    assert refused["updateWebhookEndpoint"]["errors"] == [{"field": "url", "code": "INVALID"}]

    delete = "mutation($id: ID!) { deleteWebhookEndpoint(id: $id) { deletedId errors { code } } }"
    gone = await call(client, team.owner, delete, {"id": endpoint_id})
    assert gone["deleteWebhookEndpoint"]["deletedId"] == endpoint_id
    listing = await call(
        client,
        team.owner,
        "query($ws: ID!) { webhookEndpoints(workspaceId: $ws) { edges { node { id } } } }",
        {"ws": team.workspace_id},
    )
    assert listing["webhookEndpoints"]["edges"] == []


async def test_registration_checks_the_url_and_events(
    client: httpx.AsyncClient, team: Team
) -> None:
    data = await call(
        client,
        team.owner,
        "mutation($i: CreateWebhookEndpointInput!) { createWebhookEndpoint(input: $i) {"
        " endpoint { id } secret errors { field code } } }",
        {"i": {"workspaceId": team.workspace_id, "url": "https://" + "a" * 2000, "events": []}},
    )
    payload = data["createWebhookEndpoint"]
    assert payload["endpoint"] is None and payload["secret"] is None
    assert payload["errors"] == [
        {"field": "url", "code": "TOO_LONG"},
        {"field": "events", "code": "REQUIRED"},
    ]


@pytest.mark.no_db
@pytest.mark.parametrize(
    ("url", "allow_private", "problem"),
    [
        ("https://93.184.215.14/in", False, None),
        ("http://93.184.215.14/in", False, "https"),
        ("http://127.0.0.1:9/in", True, None),
        ("https://127.0.0.1/in", False, "private, loopback"),
        ("https://169.254.169.254/latest", False, "private, loopback"),
        ("https://user:pw@93.184.215.14/in", False, "user name or password"),
        ("https://93.184.215.14/" + "a" * 2000, False, "At most 2000"),
    ],
)
async def test_url_rules(url: str, allow_private: bool, problem: str | None) -> None:
    found = await endpoints.url_problem(url, allow_private=allow_private)
    if problem is None:
        assert found is None
    else:
        assert found is not None and problem in found


async def test_rotate_keys_re_encrypts_endpoint_secrets(
    client: httpx.AsyncClient, state: AppState, team: Team, events: EventReceiver
) -> None:
    created = await create_endpoint(client, team, events.url, ["POST_FAILED"])
    newest = Fernet.generate_key().decode()
    old_box = state.keys.box
    both = SecretBox([newest])
    count, unreadable = await endpoints.rotate_secrets(state.session_factory, both)
    assert (count, unreadable) == (0, [uid(created["endpoint"]["id"])])  # old key not given
    rotating = SecretBox([newest, *_keys_of(state)])
    count, unreadable = await endpoints.rotate_secrets(state.session_factory, rotating)
    assert (count, unreadable) == (1, [])
    async with state.session_factory() as session:
        row = await session.get(WebhookEndpoint, uid(created["endpoint"]["id"]))
    assert row is not None
    assert SecretBox([newest]).decrypt(row.secret) == created["secret"]
    with pytest.raises(ValueError):
        old_box.decrypt(row.secret)


def _keys_of(state: AppState) -> list[str]:
    """The test settings' one key (no ENCRYPTION_KEYS: derived from SECRET_KEY)."""
    return [derived_key(state.keys.signing_secret, "encryption-at-rest")]


async def test_endpoints_and_deliveries_are_nodes_for_their_admins_only(
    client: httpx.AsyncClient, state: AppState, team: Team, events: EventReceiver
) -> None:
    created, _, _ = await approved_and_job(client, state, team, events)
    endpoint_id = created["endpoint"]["id"]
    [listed] = await deliveries_of(client, team, endpoint_id)
    query = (
        "query($a: ID!, $b: ID!) { a: node(id: $a) { ... on WebhookEndpoint { url } }"
        " b: node(id: $b) { ... on WebhookDelivery { status event } } }"
    )
    ids = {"a": endpoint_id, "b": listed["id"]}
    seen = await call(client, team.owner, query, ids)
    assert seen == {
        "a": {"url": events.url},
        "b": {"status": "PENDING", "event": "CONTENT_APPROVED"},
    }
    stranger = await register(client)
    assert await call(client, stranger, query, ids) == {"a": None, "b": None}


async def test_statements_do_not_grow_with_the_page(
    client: httpx.AsyncClient, pub_app: Any, state: AppState, team: Team, events: EventReceiver
) -> None:
    created = await create_endpoint(client, team, events.url, ["POST_FAILED"])
    workspace_id = uid(team.workspace_id)

    async def add_events(count: int) -> None:
        async with state.session_factory() as session, session.begin():
            for _ in range(count):
                await outbox.record(session, workspace_id, WebhookEvent.POST_FAILED, {})

    query = (
        "query($ws: ID!, $id: ID!) { webhookEndpoints(workspaceId: $ws) { edges { node {"
        " id url events } } } webhookDeliveries(endpointId: $id) { edges { node {"
        " id status event attempts } } } }"
    )
    variables = {"ws": team.workspace_id, "id": created["endpoint"]["id"]}
    counts = []
    for more in (1, 9):
        await add_events(more)
        with count_statements(pub_app) as statements:
            data = await call(client, team.owner, query, variables)
        counts.append(len(statements))
    assert len(data["webhookDeliveries"]["edges"]) == 10
    assert counts[0] == counts[1]
