"""Accounts and scheduling through the API: what is stored, what is refused and why, the
content's workflow status, time zones (DST) and the calendar."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy import select

from app.infra.queue import PUBLISH_QUEUE
from app.models import Content, PostTarget
from app.models.vocabulary import Platform
from app.platforms.publishing import Credentials
from app.services.publishing import accounts
from app.services.publishing.delivery import arq_job_id
from app.state import AppState
from tests.publishing.conftest import (
    POST_FIELDS,
    Team,
    approved_content,
    call,
    connect_webhook,
    schedule,
    targets_of,
)
from tests.publishing.receiver import Receiver
from tests.teams import gid, uid

SOON = timedelta(hours=2)


async def test_schedule_two_accounts_and_the_workflow(
    client: httpx.AsyncClient, state: AppState, team: Team, receiver: Receiver
) -> None:
    a = (await connect_webhook(client, team, receiver.url, "A"))["account"]["id"]
    b = (await connect_webhook(client, team, receiver.url, "B"))["account"]["id"]
    content_id = await approved_content(client, team)
    when = datetime.now(UTC) + SOON
    payload = await schedule(client, team, content_id, [a, b], when)
    assert payload["errors"] == []
    post = payload["post"]
    assert post["status"] == "PENDING" and post["content"]["status"] == "SCHEDULED"
    assert [t["status"] for t in post["targets"]] == ["PENDING", "PENDING"]
    assert {t["account"]["id"] for t in post["targets"]} == {a, b}
    assert datetime.fromisoformat(post["scheduledAt"]) == when.replace(microsecond=when.microsecond)

    targets = await targets_of(state, post["id"])
    assert len({t.idempotency_key for t in targets}) == 2
    # One deferred arq job per target, its id derived from the target.
    queued = {m.decode() for m in await state.redis.zrange(PUBLISH_QUEUE, 0, -1)}
    assert {arq_job_id(t.id, 0) for t in targets} <= queued

    cancelled = await call(
        client,
        team.owner,
        "mutation($id: ID!) { cancelScheduledPost(id: $id) {"
        f" post {{ {POST_FIELDS} }} errors {{ code }} }} }}",
        {"id": post["id"]},
    )
    done = cancelled["cancelScheduledPost"]["post"]
    assert done["status"] == "CANCELLED" and done["content"]["status"] == "APPROVED"
    again = await call(
        client,
        team.owner,
        "mutation($id: ID!) { cancelScheduledPost(id: $id) { errors { code } } }",
        {"id": post["id"]},
    )
    assert again["cancelScheduledPost"]["errors"] == [{"code": "INVALID_STATE"}]


async def test_refusals(
    client: httpx.AsyncClient, state: AppState, team: Team, receiver: Receiver
) -> None:
    hook = (await connect_webhook(client, team, receiver.url))["account"]["id"]
    content_id = await approved_content(client, team)

    past = await schedule(
        client, team, content_id, [hook], datetime.now(UTC) - timedelta(minutes=1)
    )
    assert [(e["field"], e["code"]) for e in past["errors"]] == [("scheduledAt", "IN_THE_PAST")]

    draft = await call(
        client,
        team.owner,
        "mutation($i: CreateContentInput!) { createContent(input: $i) { content { id } } }",
        {"i": {"workspaceId": team.workspace_id, "title": "Draft", "body": "Not yet"}},
    )
    draft_id = draft["createContent"]["content"]["id"]
    unapproved = await schedule(client, team, draft_id, [hook], datetime.now(UTC) + SOON)
    assert [e["code"] for e in unapproved["errors"]] == ["APPROVAL_REQUIRED"]

    # Instagram needs media: the platform's rules refuse a text-only post (account stored
    # through the same seam an OAuth callback uses).
    async with state.session_factory() as session, session.begin():
        insta = await accounts.store_account(
            session,
            state.keys.box,
            workspace_id=uid(team.workspace_id),
            platform=Platform.INSTAGRAM,
            name="Brand IG",
            credentials=Credentials(access_token="tok", external_id="ig-1"),
            created_by_id=None,
        )
    broken = await schedule(
        client, team, content_id, [gid("SocialAccount", insta.id)], datetime.now(UTC) + SOON
    )
    [error] = broken["errors"]
    assert error["code"] == "BREAKS_PLATFORM_RULES" and "INSTAGRAM" in error["message"]

    disconnected = await call(
        client,
        team.owner,
        "mutation($id: ID!) { disconnectSocialAccount(id: $id) { account { status } } }",
        {"id": hook},
    )
    assert disconnected["disconnectSocialAccount"]["account"]["status"] == "DISCONNECTED"
    refused = await schedule(client, team, content_id, [hook], datetime.now(UTC) + SOON)
    assert [e["code"] for e in refused["errors"]] == ["ACCOUNT_NOT_CONNECTED"]

    bad_zone = await schedule(
        client, team, content_id, [hook], datetime.now(UTC) + SOON, "Mars/Olympus"
    )
    assert [e["field"] for e in bad_zone["errors"]] == ["timezone"]
    async with state.session_factory() as session:
        content = await session.get(Content, uid(content_id))
        assert content is not None and content.status == "APPROVED"  # nothing was scheduled
        assert (await session.scalars(select(PostTarget))).all() == []


async def test_dst_wall_clock_and_calendar(
    client: httpx.AsyncClient, team: Team, receiver: Receiver
) -> None:
    hook = (await connect_webhook(client, team, receiver.url))["account"]["id"]
    content_id = await approved_content(client, team)
    # Europe/Berlin leaves CET (UTC+1) for CEST (UTC+2) on 2027-03-28.
    before = await schedule(
        client, team, content_id, [hook], "2027-03-27T09:00:00", "Europe/Berlin"
    )
    after = await schedule(client, team, content_id, [hook], "2027-03-29T09:00:00", "Europe/Berlin")
    assert before["post"]["scheduledAt"] == "2027-03-27T08:00:00+00:00"
    assert after["post"]["scheduledAt"] == "2027-03-29T07:00:00+00:00"
    skipped = await schedule(
        client, team, content_id, [hook], "2027-03-28T02:30:00", "Europe/Berlin"
    )
    assert [e["field"] for e in skipped["errors"]] == ["scheduledAt"]
    assert "does not exist" in skipped["errors"][0]["message"]

    days = await call(
        client,
        team.owner,
        'query($ws: ID!) { calendar(workspaceId: $ws, from: "2027-03-27T00:00:00",'
        ' to: "2027-03-30T00:00:00", timezone: "Europe/Berlin") { date posts { id scheduledAt } } }',
        {"ws": team.workspace_id},
    )
    by_day = {d["date"]: [p["id"] for p in d["posts"]] for d in days["calendar"]}
    assert by_day == {
        "2027-03-27": [before["post"]["id"]],
        "2027-03-28": [],
        "2027-03-29": [after["post"]["id"]],
    }
    # The same two posts seen from New York (still on its own DST by then): 03:00 both days.
    ny = await call(
        client,
        team.owner,
        'query($ws: ID!) { calendar(workspaceId: $ws, from: "2027-03-27T00:00:00",'
        ' to: "2027-03-30T00:00:00", timezone: "America/New_York") { date posts { id } } }',
        {"ws": team.workspace_id},
    )
    assert [len(d["posts"]) for d in ny["calendar"]] == [1, 0, 1]

    rescheduled = await call(
        client,
        team.owner,
        "mutation($i: ReschedulePostInput!) { reschedulePost(input: $i) {"
        " post { scheduledAt timezone } errors { code } } }",
        {"i": {"postId": before["post"]["id"], "scheduledAt": "2027-10-31T09:00:00"}},
    )
    # Back on CET after 2027-10-31 03:00: 09:00 local is 08:00 UTC again, zone kept.
    assert rescheduled["reschedulePost"]["post"] == {
        "scheduledAt": "2027-10-31T08:00:00+00:00",
        "timezone": "Europe/Berlin",
    }


async def test_scheduled_posts_filters(
    client: httpx.AsyncClient, team: Team, receiver: Receiver
) -> None:
    a = (await connect_webhook(client, team, receiver.url, "A"))["account"]["id"]
    b = (await connect_webhook(client, team, receiver.url, "B"))["account"]["id"]
    content_id = await approved_content(client, team)
    base = datetime.now(UTC) + SOON
    first = (await schedule(client, team, content_id, [a], base))["post"]["id"]
    second = (await schedule(client, team, content_id, [b], base + timedelta(days=1)))["post"]["id"]
    query = (
        "query($ws: ID!, $f: ScheduledPostFilterInput) { scheduledPosts(workspaceId: $ws,"
        " filter: $f) { edges { node { id } } } }"
    )

    async def ids(filter_: dict[str, object] | None) -> list[str]:
        data = await call(client, team.owner, query, {"ws": team.workspace_id, "f": filter_})
        return [e["node"]["id"] for e in data["scheduledPosts"]["edges"]]

    assert await ids(None) == [first, second]
    assert await ids({"accountId": b}) == [second]
    assert await ids({"status": "PENDING", "platform": "WEBHOOK"}) == [first, second]
    assert await ids({"status": "PUBLISHED"}) == []
    assert await ids({"from": (base + timedelta(hours=1)).isoformat()}) == [second]
    assert await ids({"to": (base + timedelta(hours=1)).isoformat()}) == [first]
