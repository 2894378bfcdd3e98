"""The delivery engine against a real local receiver: the state machine and its guards,
retries with back-off, permanent and auth failures, outcomes in doubt (idempotency key,
look-up, UNKNOWN and its resolution), the sweeper, and a real arq worker end to end."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from app.models import Content, SocialAccount
from app.models.vocabulary import Platform
from app.platforms import registry
from app.services.publishing import delivery as engine
from app.services.publishing.delivery import Delivery
from app.state import AppState
from tests.publishing.conftest import (
    Team,
    approved_content,
    call,
    connect_webhook,
    schedule,
    targets_of,
    wait_for,
)
from tests.publishing.receiver import AcceptThenHang, Receiver, Reply
from tests.publishing.steps import (
    LATER,
    NoKeyWebhook,
    due_target,
    make_due,
    post_gid,
    post_node,
    run_until,
    target_gid,
)
from tests.teams import gid, uid


async def test_publishes_once_and_records_the_platform_id(
    client: httpx.AsyncClient, state: AppState, team: Team, receiver: Receiver, delivery: Delivery
) -> None:
    post_id, [target] = await due_target(client, state, team, receiver.url)
    assert await engine.run(delivery, target.id, 0) == "published"
    assert await engine.run(delivery, target.id, 0) == "skipped"  # a duplicate arq job
    assert await engine.run(delivery, target.id, 1) == "skipped"
    post = await post_node(client, team, post_id)
    assert post["status"] == "PUBLISHED" and post["content"]["status"] == "PUBLISHED"
    assert post["platformPostId"] == "wh-1"
    assert post["platformUrl"] == "https://receiver.example/p/wh-1"
    assert post["publishedAt"] is not None and post["error"] is None
    assert receiver.creations.total() == 1 and receiver.deliveries.total() == 1


async def test_two_workers_racing_one_target_publish_once(
    client: httpx.AsyncClient, state: AppState, team: Team, receiver: Receiver, delivery: Delivery
) -> None:
    receiver.delay = 0.2  # both are well inside their attempts when the answer comes
    _, [target] = await due_target(client, state, team, receiver.url)
    outcomes = await asyncio.gather(*(engine.run(delivery, target.id, 0) for _ in range(8)))
    assert sorted(outcomes) == ["published"] + ["skipped"] * 7
    assert receiver.deliveries.total() == 1


async def test_retryable_failure_backs_off_then_publishes(
    client: httpx.AsyncClient, state: AppState, team: Team, receiver: Receiver, delivery: Delivery
) -> None:
    receiver.script.append(Reply(503, "busy"))
    _, [target] = await due_target(client, state, team, receiver.url)
    assert await engine.run(delivery, target.id, 0) == "retrying"
    [row] = await targets_of(state, post_gid(target))
    assert row.status == "PENDING" and row.attempts == 1 and "503" in (row.error or "")
    # Not before its back-off (0.2 s): the claim refuses until then, then it publishes.
    outcomes: list[str] = []
    await wait_for(lambda: run_until(delivery, target.id, 1, "published", outcomes), 10)
    assert set(outcomes) <= {"skipped", "published"}
    [row] = await targets_of(state, post_gid(target))
    assert (row.status, row.attempts, row.error) == ("PUBLISHED", 2, None)


async def test_retry_after_is_respected_and_attempts_run_out(
    client: httpx.AsyncClient, state: AppState, team: Team, receiver: Receiver, delivery: Delivery
) -> None:
    receiver.script.append(Reply(429, {"error": "slow"}, {"Retry-After": "120"}))
    _, [target] = await due_target(client, state, team, receiver.url)
    before = datetime.now(UTC)
    assert await engine.run(delivery, target.id, 0) == "retrying"
    [row] = await targets_of(state, post_gid(target))
    assert row.next_attempt_at >= before + timedelta(seconds=119)
    # Out of attempts (3): each retryable failure counts; the last one fails for good.
    receiver.script.extend([Reply(500), Reply(500)])
    for attempts in (1, 2):
        await make_due(state, target.id)
        assert await engine.run(delivery, target.id, attempts) in ("retrying", "failed")
    [row] = await targets_of(state, post_gid(target))
    assert row.status == "FAILED" and row.attempts == 3
    assert (row.error or "").startswith("Gave up after 3 attempts")
    assert receiver.creations.total() == 0


async def test_permanent_failure_of_one_target_leaves_the_other(
    client: httpx.AsyncClient, state: AppState, team: Team, receiver: Receiver, delivery: Delivery
) -> None:
    post_id, targets = await due_target(client, state, team, receiver.url, accounts=2)
    receiver.script.append(Reply(422, {"error": "text rejected by policy"}))
    first, second = targets
    assert await engine.run(delivery, first.id, 0) == "failed"
    assert await engine.run(delivery, second.id, 0) == "published"
    rows = {t.id: t for t in await targets_of(state, post_id)}
    assert rows[first.id].status == "FAILED" and rows[first.id].attempts == 1
    assert "text rejected by policy" in (rows[first.id].error or "")
    assert rows[second.id].status == "PUBLISHED" and rows[second.id].error is None
    post = await post_node(client, team, post_id)
    assert post["status"] == "FAILED" and "text rejected" in post["error"]
    assert post["content"]["status"] == "PUBLISHED"  # one of its targets went out
    assert receiver.creations.total() == 1


async def test_auth_failure_marks_the_account_needs_reconnect(
    client: httpx.AsyncClient, state: AppState, team: Team, receiver: Receiver, delivery: Delivery
) -> None:
    receiver.script.append(Reply(401, {"error": "signature no longer accepted"}))
    post_id, [target] = await due_target(client, state, team, receiver.url)
    assert await engine.run(delivery, target.id, 0) == "failed"
    async with state.session_factory() as session:
        account = await session.get(SocialAccount, target.social_account_id)
        content = await session.get(
            Content, uid((await post_node(client, team, post_id))["content"]["id"])
        )
    assert account is not None and account.status == "NEEDS_RECONNECT"
    assert "signature no longer accepted" in (account.status_reason or "")
    assert content is not None and content.status == "APPROVED"  # nothing of it went out
    again = await schedule(
        client,
        team,
        (await post_node(client, team, post_id))["content"]["id"],
        [gid("SocialAccount", target.social_account_id)],
        datetime.now(UTC) + LATER,
    )
    assert [e["code"] for e in again["errors"]] == ["ACCOUNT_NOT_CONNECTED"]


async def test_lost_answer_with_an_idempotency_key_is_retried_oncecreated(
    client: httpx.AsyncClient, state: AppState, team: Team, receiver: Receiver, delivery: Delivery
) -> None:
    receiver.script.append(AcceptThenHang())
    _, [target] = await due_target(client, state, team, receiver.url)
    assert await engine.run(delivery, target.id, 0) == "retrying"
    [row] = await targets_of(state, post_gid(target))
    assert row.in_doubt and row.status == "PENDING"
    await make_due(state, target.id)
    assert await engine.run(delivery, target.id, 1) == "published"
    [row] = await targets_of(state, post_gid(target))
    assert row.platform_post_id == "wh-1" and not row.in_doubt
    assert receiver.deliveries[target.idempotency_key] == 2
    assert receiver.creations[target.idempotency_key] == 1


async def test_lost_answer_without_key_or_look_up_is_unknown_until_resolved(
    client: httpx.AsyncClient,
    state: AppState,
    team: Team,
    receiver: Receiver,
    delivery: Delivery,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(registry.FACTORIES, Platform.WEBHOOK, NoKeyWebhook)
    receiver.script.extend([AcceptThenHang(), AcceptThenHang()])
    post_id, targets = await due_target(client, state, team, receiver.url, accounts=2)
    for target in targets:
        assert await engine.run(delivery, target.id, 0) == "unknown"
    rows = await targets_of(state, post_id)
    assert {r.status for r in rows} == {"UNKNOWN"}
    assert "cannot be asked" in (rows[0].error or "")
    assert receiver.deliveries.total() == 2  # never sent again on its own
    post = await post_node(client, team, post_id)
    assert post["status"] == "UNKNOWN"

    confirmed = await call(
        client,
        team.owner,
        'mutation($id: ID!) { confirmPostPublished(id: $id, platformUrl: "https://x.example/1")'
        " { target { status platformUrl } errors { code } } }",
        {"id": target_gid(rows[0])},
    )
    assert confirmed["confirmPostPublished"]["target"] == {
        "status": "PUBLISHED",
        "platformUrl": "https://x.example/1",
    }
    retried = await call(
        client,
        team.owner,
        "mutation($id: ID!) { retryPost(id: $id) { target { status } errors { code } } }",
        {"id": target_gid(rows[1])},
    )
    assert retried["retryPost"]["target"]["status"] == "PENDING"
    [row] = [r for r in await targets_of(state, post_id) if r.id == rows[1].id]
    assert await engine.run(delivery, row.id, row.attempts) == "published"
    post = await post_node(client, team, post_id)
    assert post["status"] == "PUBLISHED" and post["content"]["status"] == "PUBLISHED"
    again = await call(
        client,
        team.owner,
        "mutation($id: ID!) { confirmPostPublished(id: $id) { errors { code } } }",
        {"id": target_gid(rows[0])},
    )
    assert again["confirmPostPublished"]["errors"] == [{"code": "INVALID_STATE"}]


async def test_the_platform_variation_is_what_goes_out(
    client: httpx.AsyncClient, state: AppState, team: Team, receiver: Receiver, delivery: Delivery
) -> None:
    hook = (await connect_webhook(client, team, receiver.url))["account"]["id"]
    content_id = await approved_content(client, team, body="The long original text.")
    made = await call(
        client,
        team.owner,
        "mutation($id: ID!) { createVariation(contentId: $id, platform: WEBHOOK,"
        ' input: {body: "Short, for the hook."}) { variation { id } errors { code } } }',
        {"id": content_id},
    )
    assert made["createVariation"]["errors"] == []
    post = (await schedule(client, team, content_id, [hook], datetime.now(UTC) + LATER))["post"]
    [target] = await targets_of(state, post["id"])
    await make_due(state, target.id)
    assert await engine.run(delivery, target.id, 0) == "published"
    [created] = receiver.created.values()
    assert created.body["text"] == "Short, for the hook."
    assert created.body["title"] == "Launch" and created.body["parts"] == ["Short, for the hook."]
