"""First comments end to end against the platform fakes: refused at schedule time where a
platform takes none or the text breaks its rules; posted after the post as their own step
(retry with back-off, permanent failure that leaves the post PUBLISHED, an answer lost:
sent again only where the platform de-duplicates, else UNKNOWN); recovered by the
sweepers when Redis loses the job or the job was never written."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from arq import create_pool
from arq.connections import RedisSettings
from sqlalchemy import select, update

from app.infra import outbound
from app.jobs import runner as job_runner
from app.models import Job, PostTarget
from app.models.vocabulary import Platform
from app.platforms.publishing import Credentials
from app.services.publishing import accounts, comments
from app.services.publishing import delivery as engine
from app.services.publishing.delivery import Delivery
from app.settings import Settings
from app.state import AppState
from tests.conftest import Servers
from tests.platforms.fakes import TOKEN, FakePlatforms, Fault
from tests.publishing.conftest import (
    Team,
    approved_content,
    arq_worker,
    call,
    connect_webhook,
    targets_of,
    wait_for,
)
from tests.publishing.steps import make_due
from tests.teams import gid, uid
from workers.tasks import HANDLERS

SCHEDULE = """
mutation($i: SchedulePostInput!) { schedulePost(input: $i) {
  post { id targets { id status firstComment commentStatus commentPlatformId commentError } }
  errors { field code message }
} }
"""
TARGETS = """
query($id: ID!) { node(id: $id) { ... on ScheduledPost {
  status targets { status platformPostId firstComment commentStatus commentAttempts
                   commentPlatformId commentError } } } }
"""


class Silent:
    async def publish(self, channel: str, message: dict[str, Any]) -> None:
        return None


@pytest.fixture
async def platforms(fake_api: FakePlatforms) -> FakePlatforms:
    fake_api.reset()
    return fake_api


@pytest.fixture
async def delivery(app_state: AppState) -> AsyncIterator[Delivery]:
    async with outbound.client(app_state.settings) as http:
        yield Delivery(
            factory=app_state.session_factory,
            settings=app_state.settings,
            http=http,
            box=app_state.keys.box,
            storage=app_state.storage,
            events=None,
            enqueuer=None,  # the arq job is "lost": tests run attempts themselves
        )


async def account(state: AppState, team: Team, fake: FakePlatforms, platform: Platform) -> str:
    credentials = {
        Platform.MASTODON: Credentials(
            access_token=TOKEN, extra={"instance_url": fake.url, "username": "dev"}
        ),
        Platform.X: Credentials(access_token=TOKEN, external_id="42", extra={"username": "dev"}),
    }[platform]
    async with state.session_factory() as session, session.begin():
        row = await accounts.store_account(
            session,
            state.keys.box,
            workspace_id=uid(team.workspace_id),
            platform=platform,
            name=f"Brand {platform.value}",
            credentials=credentials,
            created_by_id=None,
        )
    return gid("SocialAccount", row.id)


async def schedule(
    web: httpx.AsyncClient, team: Team, account_ids: list[str], comment: str | None
) -> dict[str, Any]:
    content_id = await approved_content(web, team, body="Our spring sale starts today.")
    data = await call(
        web,
        team.owner,
        SCHEDULE,
        {
            "i": {
                "contentId": content_id,
                "socialAccountIds": account_ids,
                "scheduledAt": (datetime.now(UTC) + timedelta(hours=1)).isoformat(),
                "firstComment": comment,
            }
        },
    )
    payload: dict[str, Any] = data["schedulePost"]
    return payload


async def published(
    web: httpx.AsyncClient,
    state: AppState,
    admin: Team,
    fake: FakePlatforms,
    delivery: Delivery,
    platform: Platform = Platform.MASTODON,
) -> tuple[str, PostTarget]:
    """A post with a first comment, published through one delivery attempt."""
    payload = await schedule(web, admin, [await account(state, admin, fake, platform)], "First!")
    assert payload["errors"] == []
    [target] = await targets_of(state, payload["post"]["id"])
    await make_due(state, target.id)
    assert await engine.run(delivery, target.id, 0) == "published"
    [row] = await targets_of(state, payload["post"]["id"])
    return payload["post"]["id"], row


async def run_comment(state: AppState, target_id: uuid.UUID) -> str:
    return await job_runner.run(
        comments.job_id_for(target_id),
        factory=state.session_factory,
        publisher=Silent(),
        enqueuer=None,
        lease_seconds=30,
        handlers=HANDLERS,
        settings=state.settings,
    )


async def test_schedule_refuses_comments_where_the_platform_takes_none(
    web: httpx.AsyncClient, app_state: AppState, admin: Team, platforms: FakePlatforms
) -> None:
    url = platforms.url + "/hook"
    hook = (await connect_webhook(web, admin, url))["account"]["id"]
    refused = await schedule(web, admin, [hook], "First!")
    [error] = refused["errors"]
    assert (error["field"], error["code"]) == ("firstComment", "FIRST_COMMENT_UNSUPPORTED")
    assert "WEBHOOK takes no comments" in error["message"] and refused["post"] is None

    mastodon = await account(app_state, admin, platforms, Platform.MASTODON)
    too_long = await schedule(web, admin, [mastodon], "x" * 501)
    [error] = too_long["errors"]
    assert (error["field"], error["code"]) == ("firstComment", "BREAKS_PLATFORM_RULES")
    assert "501 characters; MASTODON allows 500" in error["message"]

    fine = await schedule(web, admin, [mastodon], "See the thread below.")
    assert fine["errors"] == []
    [target] = fine["post"]["targets"]
    assert (target["firstComment"], target["commentStatus"]) == ("See the thread below.", "PENDING")
    without = await schedule(web, admin, [mastodon], None)
    assert without["post"]["targets"][0]["commentStatus"] == "NONE"


async def test_comment_fails_retryably_then_posts_under_the_post(
    web: httpx.AsyncClient,
    app_state: AppState,
    admin: Team,
    platforms: FakePlatforms,
    delivery: Delivery,
) -> None:
    post_id, target = await published(web, app_state, admin, platforms, delivery)
    assert target.status == "PUBLISHED" and target.comment_status == "PENDING"
    # The job was written with the PUBLISHED transition.
    async with app_state.session_factory() as session:
        job = await session.get(Job, comments.job_id_for(target.id))
        assert job is not None and job.kind == comments.COMMENT_JOB
    platforms.fail("POST", "/api/v1/statuses", Fault(503, {"error": "Service Unavailable"}))
    assert await run_comment(app_state, target.id) == "retrying"
    [row] = await targets_of(app_state, post_id)
    assert (row.status, row.comment_status, row.comment_attempts) == ("PUBLISHED", "PENDING", 1)
    assert "503" in (row.comment_error or "") or "navailable" in (row.comment_error or "")

    assert await run_comment(app_state, target.id) == "succeeded"
    data = await call(web, admin.owner, TARGETS, {"id": post_id})
    [shown] = data["node"]["targets"]
    assert shown["status"] == "PUBLISHED" and shown["commentStatus"] == "PUBLISHED"
    assert (shown["commentAttempts"], shown["commentError"]) == (2, None)
    reply = platforms.statuses[shown["commentPlatformId"]]
    assert reply["in_reply_to_id"] == shown["platformPostId"]
    assert reply["content"] == "<p>First!</p>"
    # Mastodon de-duplicates by the key: the same one on both attempts.
    tries = [s for s in platforms.requests("POST", "/api/v1/statuses") if b"First!" in s.body]
    assert len(tries) == 2 and len({s.headers["idempotency-key"] for s in tries}) == 1
    assert len(platforms.statuses) == 2  # the post and its comment, each once
    assert await run_comment(app_state, target.id) == "skipped"  # the job is done


async def test_a_permanent_comment_failure_leaves_the_post_published(
    web: httpx.AsyncClient,
    app_state: AppState,
    admin: Team,
    platforms: FakePlatforms,
    delivery: Delivery,
) -> None:
    post_id, target = await published(web, app_state, admin, platforms, delivery)
    refusal = {"error": "Validation failed: Text contains a forbidden word"}
    platforms.fail("POST", "/api/v1/statuses", Fault(422, refusal))
    assert await run_comment(app_state, target.id) == "succeeded"
    [row] = await targets_of(app_state, post_id)
    assert (row.status, row.comment_status) == ("PUBLISHED", "FAILED")
    assert "forbidden word" in (row.comment_error or "")
    assert row.platform_post_id in platforms.statuses and len(platforms.statuses) == 1
    assert await engine.run(delivery, target.id, 1) == "skipped"  # the post is not re-sent
    data = await call(web, admin.owner, TARGETS, {"id": post_id})
    assert data["node"]["status"] == "PUBLISHED"


async def test_a_lost_answer_is_resent_under_the_key_or_parked_as_unknown(
    web: httpx.AsyncClient,
    app_state: AppState,
    admin: Team,
    platforms: FakePlatforms,
    delivery: Delivery,
) -> None:
    # Mastodon: the comment was created but its answer was cut off; the retry sends the
    # same Idempotency-Key and Mastodon answers with the comment it has.
    post_id, target = await published(web, app_state, admin, platforms, delivery)
    platforms.fail("POST", "/api/v1/statuses", Fault(drop=True))
    assert await run_comment(app_state, target.id) == "retrying"
    assert await run_comment(app_state, target.id) == "succeeded"
    [row] = await targets_of(app_state, post_id)
    assert row.comment_status == "PUBLISHED" and len(platforms.statuses) == 2

    # X has no key and cannot be asked: an attempt lost mid-request (the step still
    # PUBLISHING when the next attempt starts) is parked as UNKNOWN, never sent again.
    post_id, target = await published(web, app_state, admin, platforms, delivery, Platform.X)
    async with app_state.session_factory() as session, session.begin():
        await session.execute(
            update(PostTarget)
            .where(PostTarget.id == target.id)
            .values(comment_status="PUBLISHING", comment_attempts=1)
        )
    assert await run_comment(app_state, target.id) == "succeeded"
    [row] = await targets_of(app_state, post_id)
    assert (row.status, row.comment_status) == ("PUBLISHED", "UNKNOWN")
    assert "may be on the platform" in (row.comment_error or "")
    assert [t["text"] for t in platforms.tweets.values()] == ["Our spring sale starts today."]


async def test_sweepers_recover_comment_steps_after_redis_is_flushed(
    web: httpx.AsyncClient,
    app_state: AppState,
    admin: Team,
    platforms: FakePlatforms,
    delivery: Delivery,
    connect_settings: Settings,
    servers: Servers,
) -> None:
    # One published with its job written but never handed to arq (as if Redis lost it)...
    lost_id, lost = await published(web, app_state, admin, platforms, delivery)
    # ...and one published another way (confirmed by hand): no job at all.
    payload = await schedule(
        web, admin, [await account(app_state, admin, platforms, Platform.MASTODON)], "Hi!"
    )
    [bare] = await targets_of(app_state, payload["post"]["id"])
    async with app_state.session_factory() as session, session.begin():
        await session.execute(
            update(PostTarget)
            .where(PostTarget.id == bare.id)
            .values(status="PUBLISHED", platform_post_id=None, published_at=datetime.now(UTC))
        )
    pool = await create_pool(RedisSettings.from_dsn(servers.redis_url))
    try:
        await pool.flushall()
    finally:
        await pool.aclose()
    async with arq_worker(connect_settings):

        async def both_posted() -> bool:
            async with app_state.session_factory() as session:
                rows = await session.scalars(
                    select(PostTarget.comment_status).where(PostTarget.id.in_([lost.id, bare.id]))
                )
                return set(rows.all()) <= {"PUBLISHED", "FAILED"}

        await wait_for(both_posted, 30, "comment steps recovered")
    [row] = await targets_of(app_state, lost_id)
    assert row.comment_status == "PUBLISHED" and row.comment_platform_id in platforms.statuses
    [other] = await targets_of(app_state, payload["post"]["id"])
    # Its post id is unknown (confirmed by hand without one): nothing to reply under, so
    # the step fails (never a loose status); the post stays PUBLISHED.
    assert other.status == "PUBLISHED" and other.comment_status == "FAILED"
    assert other.comment_error == comments.NO_POST_ID and len(platforms.statuses) == 2


RESCHEDULE = """
mutation($i: ReschedulePostInput!) { reschedulePost(input: $i) {
  post { targets { firstComment commentStatus } } errors { field code message }
} }
"""


async def test_reschedule_replaces_or_removes_the_first_comment(
    web: httpx.AsyncClient, app_state: AppState, admin: Team, platforms: FakePlatforms
) -> None:
    mastodon = await account(app_state, admin, platforms, Platform.MASTODON)
    post = (await schedule(web, admin, [mastodon], "Old comment"))["post"]
    later = (datetime.now(UTC) + timedelta(hours=2)).isoformat()

    async def reschedule(comment: str | None) -> dict[str, Any]:
        variables = {"postId": post["id"], "scheduledAt": later, "firstComment": comment}
        data = await call(web, admin.owner, RESCHEDULE, {"i": variables})
        payload: dict[str, Any] = data["reschedulePost"]
        return payload

    moved = await reschedule("New comment")
    assert moved["post"]["targets"] == [{"firstComment": "New comment", "commentStatus": "PENDING"}]
    refused = await reschedule("y" * 600)
    assert [(e["field"], e["code"]) for e in refused["errors"]] == [
        ("firstComment", "BREAKS_PLATFORM_RULES")
    ]
    kept = await reschedule(None)
    assert kept["post"]["targets"][0]["firstComment"] == "New comment"
    removed = await reschedule("")
    assert removed["post"]["targets"] == [{"firstComment": None, "commentStatus": "NONE"}]


async def test_the_sweep_closes_steps_whose_job_ended_without_an_outcome(
    web: httpx.AsyncClient,
    app_state: AppState,
    admin: Team,
    platforms: FakePlatforms,
    delivery: Delivery,
) -> None:
    # The job ran out (e.g. its last attempt hit the job time limit mid-request): a step
    # left PUBLISHING may be on the platform (UNKNOWN); one left PENDING never went (FAILED).
    _, sending = await published(web, app_state, admin, platforms, delivery)
    _, waiting = await published(web, app_state, admin, platforms, delivery)
    async with app_state.session_factory() as session, session.begin():
        await session.execute(
            update(PostTarget)
            .where(PostTarget.id == sending.id)
            .values(comment_status="PUBLISHING", comment_attempts=3)
        )
        await session.execute(
            update(Job)
            .where(Job.id.in_([comments.job_id_for(sending.id), comments.job_id_for(waiting.id)]))
            .values(status="FAILED", attempts=3)
        )
    async with app_state.session_factory() as session, session.begin():
        made = await comments.sweep(session)  # two to close, no new job for them
    assert not {comments.job_id_for(sending.id), comments.job_id_for(waiting.id)} & set(made)
    async with app_state.session_factory() as session:
        rows = {
            r.id: r
            for r in await session.scalars(
                select(PostTarget).where(PostTarget.id.in_([sending.id, waiting.id]))
            )
        }
    assert rows[sending.id].comment_status == "UNKNOWN" and rows[sending.id].status == "PUBLISHED"
    assert rows[waiting.id].comment_status == "FAILED" and rows[waiting.id].status == "PUBLISHED"
    assert "may be on the platform" in (rows[sending.id].comment_error or "")
