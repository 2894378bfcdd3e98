"""Outgoing webhooks against a real local receiver (uvicorn): signed POSTs with the
delivery id, a retry after a 500, a final 4xx, the outbound guard refusing loopback when
private networks are not allowed, the outbox following its transaction, the events hooked
where the state changes happen, redelivery, rotation, and the URL rules."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import func, select, update

from app.models import Content, Job, WebhookEndpoint, WebhookEventRow
from app.models.vocabulary import ContentStatus, WebhookEvent
from app.services.outgoing import outbox
from app.services.publishing import delivery as engine
from app.services.publishing.accounts import DISCONNECTED_ERROR
from app.services.publishing.delivery import Delivery
from app.settings import Settings
from app.state import AppState
from tests.outgoing.event_receiver import EventReceiver
from tests.outgoing.steps import (
    approved_and_job,
    create_endpoint,
    deliveries_of,
    delivery_row,
    run_job,
    webhook_jobs,
)
from tests.publishing.conftest import (
    Team,
    approved_content,
    arq_worker,
    call,
    connect_webhook,
    schedule,
)
from tests.publishing.receiver import Receiver, Reply
from tests.publishing.steps import due_target
from tests.teams import gid, uid


async def test_an_approval_is_posted_signed_with_the_delivery_id(
    client: httpx.AsyncClient, state: AppState, team: Team, events: EventReceiver
) -> None:
    created, content_id, job = await approved_and_job(client, state, team, events)
    secret = created["secret"]
    assert secret.startswith("whsec_")
    assert await run_job(state, job.id) == "succeeded"
    [arrival] = events.arrived
    assert arrival.signed_with(secret)
    assert not arrival.signed_with(secret + "x")
    delivery_id = arrival.headers["x-smartcontent-delivery"]
    assert job.payload == {"delivery_id": delivery_id}
    assert arrival.headers["x-smartcontent-event"] == "CONTENT_APPROVED"
    assert arrival.headers["content-type"] == "application/json"
    body = arrival.json
    assert body["type"] == "CONTENT_APPROVED"
    assert body["workspace_id"] == str(uid(team.workspace_id))
    assert body["data"]["content_id"] == str(uid(content_id))
    assert body["data"]["title"] == "Launch"

    [listed] = await deliveries_of(client, team, created["endpoint"]["id"])
    assert listed["event"] == "CONTENT_APPROVED" and listed["status"] == "SUCCEEDED"
    assert listed["attempts"] == 1 and listed["responseStatus"] == 200
    assert listed["durationMs"] is not None and listed["deliveredAt"] is not None
    assert uid(listed["id"]) == uuid.UUID(delivery_id)
    assert listed["eventId"] == body["id"]
    # A duplicate arq job of a finished delivery sends nothing.
    assert await run_job(state, job.id) == "skipped"
    assert len(events.arrived) == 1


async def test_a_500_is_retried_with_the_same_delivery_id(
    client: httpx.AsyncClient, state: AppState, team: Team, events: EventReceiver
) -> None:
    created, _, job = await approved_and_job(client, state, team, events)
    events.script = [500]
    assert await run_job(state, job.id) == "retrying"
    row = await delivery_row(state, uuid.UUID(job.payload["delivery_id"]))
    assert row.status == "PENDING" and row.attempts == 1 and row.response_status == 500
    assert row.error is not None and row.error.startswith("HTTP 500")
    async with state.session_factory() as session:
        queued = await session.get(Job, job.id)
    assert queued is not None and queued.status == "QUEUED"
    assert queued.run_after > queued.updated_at  # backed off

    assert await run_job(state, job.id) == "succeeded"
    first, second = events.arrived
    assert first.headers["x-smartcontent-delivery"] == second.headers["x-smartcontent-delivery"]
    assert first.body == second.body and second.signed_with(created["secret"])
    row = await delivery_row(state, row.id)
    assert row.status == "SUCCEEDED" and row.attempts == 2 and row.response_status == 200


async def test_a_4xx_is_final_and_429_retried(
    client: httpx.AsyncClient, state: AppState, team: Team, events: EventReceiver
) -> None:
    _, _, job = await approved_and_job(client, state, team, events)
    events.script = [429, 410]
    assert await run_job(state, job.id) == "retrying"
    assert await run_job(state, job.id) == "failed"
    row = await delivery_row(state, uuid.UUID(job.payload["delivery_id"]))
    assert row.status == "FAILED" and row.attempts == 2 and row.response_status == 410
    assert await run_job(state, job.id) == "skipped"
    assert len(events.arrived) == 2


async def test_the_guard_refuses_loopback_unless_private_networks_are_allowed(
    client: httpx.AsyncClient,
    state: AppState,
    pub_settings: Settings,
    team: Team,
    events: EventReceiver,
) -> None:
    _, _, job = await approved_and_job(client, state, team, events)
    closed = pub_settings.model_copy(update={"outbound_allow_private_networks": False})
    assert await run_job(state, job.id, closed) == "failed"
    assert events.arrived == []
    row = await delivery_row(state, uuid.UUID(job.payload["delivery_id"]))
    assert row.status == "FAILED" and row.response_status is None
    assert row.error is not None and "127.0.0.1 is a private, loopback" in row.error


async def test_the_outbox_follows_its_transaction(state: AppState, team: Team) -> None:
    workspace_id = uid(team.workspace_id)
    async with state.session_factory() as session, session.begin():
        # No endpoint listens: nothing is written.
        assert await outbox.record(session, workspace_id, WebhookEvent.POST_FAILED, {}) == 0
        session.add(
            WebhookEndpoint(
                id=uuid.uuid4(),
                workspace_id=workspace_id,
                url="https://93.184.215.14/in",
                events=["POST_FAILED"],
                secret=state.keys.box.encrypt("whsec_x"),
            )
        )
    with pytest.raises(RuntimeError):
        async with state.session_factory() as session, session.begin():
            assert await outbox.record(session, workspace_id, WebhookEvent.POST_FAILED, {}) == 1
            raise RuntimeError("the state change is rolled back")

    async def counts() -> tuple[int, int]:
        async with state.session_factory() as session:
            events = await session.scalar(select(func.count()).select_from(WebhookEventRow))
            jobs = await session.scalar(select(func.count()).select_from(Job))
        return int(events or 0), int(jobs or 0)

    assert await counts() == (0, 0)  # rolled back: no event, no job
    async with state.session_factory() as session, session.begin():
        await outbox.record(session, workspace_id, WebhookEvent.POST_FAILED, {"n": 1})
    assert await counts() == (1, 1)


async def test_a_refused_token_reports_the_failure_and_the_account_once(
    client: httpx.AsyncClient,
    state: AppState,
    delivery: Delivery,
    team: Team,
    receiver: Receiver,
    events: EventReceiver,
) -> None:
    await create_endpoint(
        client, team, events.url, ["POST_FAILED", "ACCOUNT_NEEDS_RECONNECT", "POST_PUBLISHED"]
    )
    _, [first, second] = await due_target(client, state, team, receiver.url, accounts=2)
    receiver.script = [Reply(401, {"error": "bad signature"})]
    assert await engine.run(delivery, first.id, 0) == "failed"
    assert await engine.run(delivery, second.id, 0) == "published"
    async with state.session_factory() as session:
        rows = (await session.scalars(select(WebhookEventRow))).all()
    by_event = {row.event: row.payload for row in rows}
    assert sorted(r.event for r in rows) == [
        "ACCOUNT_NEEDS_RECONNECT",
        "POST_FAILED",
        "POST_PUBLISHED",
    ]
    assert by_event["POST_FAILED"]["target_id"] == str(first.id)
    assert "refused our signature" in by_event["POST_FAILED"]["error"]
    assert by_event["ACCOUNT_NEEDS_RECONNECT"]["social_account_id"] == str(first.social_account_id)
    assert by_event["POST_PUBLISHED"]["target_id"] == str(second.id)
    assert by_event["POST_PUBLISHED"]["platform_post_id"] == "wh-1"


async def test_a_worker_delivers_the_published_event(
    client: httpx.AsyncClient,
    pub_settings: Settings,
    team: Team,
    receiver: Receiver,
    events: EventReceiver,
) -> None:
    """End to end: the publish commits the event; the jobs sweeper hands its job to the
    real arq worker, which posts it."""
    created = await create_endpoint(client, team, events.url, ["POST_PUBLISHED"])
    hook = (await connect_webhook(client, team, receiver.url))["account"]["id"]
    content_id = await approved_content(client, team)
    post = (
        await schedule(client, team, content_id, [hook], datetime.now(UTC) + timedelta(seconds=1))
    )["post"]
    async with arq_worker(pub_settings):
        [arrival] = await events.wait_for(1, timeout=30)
    assert arrival.signed_with(created["secret"])
    body = arrival.json
    assert body["type"] == "POST_PUBLISHED"
    assert body["data"]["post_id"] == str(uid(post["id"]))
    assert body["data"]["content_id"] == str(uid(content_id))
    assert body["data"]["platform_post_id"] == "wh-1"


async def test_approval_through_a_review_link_is_an_event_and_unscheduling_is_not(
    client: httpx.AsyncClient, state: AppState, team: Team, events: EventReceiver
) -> None:
    await create_endpoint(client, team, events.url, ["CONTENT_APPROVED"])
    made = await call(
        client,
        team.owner,
        "mutation($i: CreateContentInput!) { createContent(input: $i) { content { id } } }",
        {"i": {"workspaceId": team.workspace_id, "title": "Guest", "body": "For the client."}},
    )
    content_id = made["createContent"]["content"]["id"]
    step = "mutation($id: ID!) { submitForReview(id: $id) { errors { code } } }"
    await call(client, team.owner, step, {"id": content_id})
    link = await call(
        client,
        team.owner,
        "mutation($id: ID!) { createReviewLink(contentId: $id) { token errors { code } } }",
        {"id": content_id},
    )
    respond = (
        "mutation($t: String!) { respondToReviewLink(token: $t, decision: APPROVE,"
        ' reviewerName: "Casey") { content { status } errors { code } } }'
    )
    answer = await client.post(
        "/graphql", json={"query": respond, "variables": {"t": link["createReviewLink"]["token"]}}
    )
    assert answer.json()["data"]["respondToReviewLink"]["content"]["status"] == "APPROVED"
    [job] = await webhook_jobs(state)
    assert await run_job(state, job.id) == "succeeded"
    assert events.arrived[0].json["data"]["content_id"] == str(uid(content_id))

    # SCHEDULED -> APPROVED (everything of it cancelled) is no approval.
    async with state.session_factory() as session, session.begin():
        await session.execute(
            update(Content).where(Content.id == uid(content_id)).values(status="SCHEDULED")
        )
        content = await session.get(Content, uid(content_id))
        assert content is not None
        content.status = "APPROVED"
        await outbox.content_moved(session, content, ContentStatus.SCHEDULED)
    assert len(await webhook_jobs(state)) == 1


async def test_disconnecting_an_account_reports_its_waiting_posts_failed(
    client: httpx.AsyncClient,
    state: AppState,
    team: Team,
    receiver: Receiver,
    events: EventReceiver,
) -> None:
    await create_endpoint(client, team, events.url, ["POST_FAILED"])
    _, [target] = await due_target(client, state, team, receiver.url)
    disconnect = "mutation($id: ID!) { disconnectSocialAccount(id: $id) { account { status } } }"
    account = gid("SocialAccount", target.social_account_id)
    await call(client, team.owner, disconnect, {"id": account})
    async with state.session_factory() as session:
        [row] = (await session.scalars(select(WebhookEventRow))).all()
    assert row.event == "POST_FAILED" and row.payload["target_id"] == str(target.id)
    assert row.payload["error"] == DISCONNECTED_ERROR
