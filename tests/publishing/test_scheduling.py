"""Accounts and scheduling through the API: what is stored, what is refused and why, the
content's workflow status, time zones (DST) and the calendar."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
from arq.constants import default_queue_name
from sqlalchemy import select

from app.models import AuditEntry, Content, PostTarget, SocialAccount
from app.models.vocabulary import Platform
from app.platforms.publishing import Credentials
from app.services.publishing import accounts
from app.services.publishing.delivery import arq_job_id
from app.state import AppState
from tests.helpers import gql
from tests.publishing.conftest import (
    POST_FIELDS,
    Team,
    approved_content,
    call,
    connect_webhook,
    schedule,
    targets_of,
)
from tests.publishing.receiver import SECRET, Receiver
from tests.teams import gid, uid

SOON = timedelta(hours=2)


async def test_webhook_account_is_stored_encrypted_and_never_shown(
    client: httpx.AsyncClient, state: AppState, team: Team, receiver: Receiver
) -> None:
    payload = await connect_webhook(client, team, receiver.url)
    assert payload["errors"] == []
    account = payload["account"]
    assert (account["platform"], account["status"], account["name"]) == (
        "WEBHOOK",
        "CONNECTED",
        "Hook",
    )
    async with state.session_factory() as session:
        row = await session.get(SocialAccount, uid(account["id"]))
        assert row is not None and row.credentials is not None
        assert SECRET not in row.credentials and receiver.url not in row.credentials
        stored = accounts.unseal(state.keys.box, row.credentials)
        assert stored.extra == {"url": receiver.url, "secret": SECRET}
        audit = (
            await session.scalars(select(AuditEntry).where(AuditEntry.action.like("connect%")))
        ).all()
    assert [a.action for a in audit] == ["connectWebhookAccount"]
    assert SECRET not in str(audit[0].details)

    listed = await call(
        client,
        team.owner,
        "query($ws: ID!) { socialAccounts(workspaceId: $ws) { edges { node {"
        " id platform status name externalId statusReason } } } }",
        {"ws": team.workspace_id},
    )
    [edge] = listed["socialAccounts"]["edges"]
    assert edge["node"]["id"] == account["id"]
    assert SECRET not in str(listed)


async def test_account_input_refusals(
    client: httpx.AsyncClient, state: AppState, team: Team
) -> None:
    short = await connect_webhook(client, team, "ftp://example.com/x", secret="short", name=" ")
    assert {(e["field"], e["code"]) for e in short["errors"]} == {
        ("name", "INVALID"),
        ("url", "INVALID"),
        ("secret", "INVALID"),
    }
    email = await call(
        client,
        team.owner,
        "mutation($i: ConnectEmailAccountInput!) { connectEmailAccount(input: $i) {"
        " account { id platform } errors { field code } } }",
        {
            "i": {
                "workspaceId": team.workspace_id,
                "name": "News",
                "fromAddress": "not-an-email",
                "recipients": ["ok@example.com", "nope"],
            }
        },
    )
    assert {e["field"] for e in email["connectEmailAccount"]["errors"]} == {
        "fromAddress",
        "recipients",
    }
    good = await call(
        client,
        team.owner,
        "mutation($i: ConnectEmailAccountInput!) { connectEmailAccount(input: $i) {"
        " account { id platform status } errors { field code } } }",
        {
            "i": {
                "workspaceId": team.workspace_id,
                "name": "News",
                "fromAddress": "news@example.com",
                "recipients": ["a@example.com"],
                "smtp": {
                    "host": "127.0.0.1",
                    "port": 2525,
                    "password": "pw-123",
                    "security": "none",
                },
            }
        },
    )
    account = good["connectEmailAccount"]["account"]
    assert account["platform"] == "EMAIL" and account["status"] == "CONNECTED"
    async with state.session_factory() as session:
        row = await session.get(SocialAccount, uid(account["id"]))
        assert row is not None
        extra = accounts.unseal(state.keys.box, row.credentials).extra
    assert extra["recipients"] == '["a@example.com"]' and extra["smtp_password"] == "pw-123"
    assert "pw-123" not in (row.credentials or "")


async def test_private_webhook_refused_when_the_guard_is_on(
    client: httpx.AsyncClient, app: object, team: Team
) -> None:
    # The suite's default app keeps the guard on (OUTBOUND_ALLOW_PRIVATE_NETWORKS unset).
    from starlette.applications import Starlette

    assert isinstance(app, Starlette)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://testserver"
    ) as strict:
        body = await gql(
            strict,
            "mutation($i: ConnectWebhookAccountInput!) { connectWebhookAccount(input: $i) {"
            " account { id } errors { field code message } } }",
            {
                "i": {
                    "workspaceId": team.workspace_id,
                    "name": "Metadata",
                    "url": "http://169.254.169.254/latest",
                    "secret": SECRET,
                }
            },
            headers=team.owner.headers,
        )
    [error] = body["data"]["connectWebhookAccount"]["errors"]
    assert error["field"] == "url" and "private" in error["message"]


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
    queued = {m.decode() for m in await state.redis.zrange(default_queue_name, 0, -1)}
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


async def test_disconnect_fails_waiting_posts_with_the_reason(
    client: httpx.AsyncClient, state: AppState, team: Team, receiver: Receiver
) -> None:
    a = (await connect_webhook(client, team, receiver.url, "A"))["account"]["id"]
    b = (await connect_webhook(client, team, receiver.url, "B"))["account"]["id"]
    content_id = await approved_content(client, team)
    only_a = (await schedule(client, team, content_id, [a], datetime.now(UTC) + SOON))["post"]
    both = (await schedule(client, team, content_id, [a, b], datetime.now(UTC) + SOON))["post"]
    await call(
        client,
        team.owner,
        "mutation($id: ID!) { disconnectSocialAccount(id: $id) { errors { code } } }",
        {"id": a},
    )
    [row] = await targets_of(state, only_a["id"])
    assert row.status == "FAILED" and row.error == accounts.DISCONNECTED_ERROR
    statuses = {
        gid("SocialAccount", t.social_account_id): t.status
        for t in await targets_of(state, both["id"])
    }
    assert statuses == {a: "FAILED", b: "PENDING"}  # the other account's target is untouched
    async with state.session_factory() as session:
        account = await session.get(SocialAccount, uid(a))
        content = await session.get(Content, uid(content_id))
    assert account is not None and account.credentials is None
    assert content is not None and content.status == "SCHEDULED"  # B still goes out


async def test_credentials_rotate_to_the_newest_key(
    client: httpx.AsyncClient, state: AppState, team: Team, receiver: Receiver
) -> None:
    from cryptography.fernet import Fernet

    from app.security.crypto import SecretBox, derived_key

    account_id = uid((await connect_webhook(client, team, receiver.url))["account"]["id"])
    # The test settings have no ENCRYPTION_KEYS: the key is derived from SECRET_KEY.
    old = derived_key(state.keys.signing_secret, "encryption-at-rest")
    newest = Fernet.generate_key().decode()
    # ENCRYPTION_KEYS after a rotation: the new key first, the old one after it.
    rotated = await accounts.rotate_credentials(state.session_factory, SecretBox([newest, old]))
    assert rotated == (1, [])
    async with state.session_factory() as session:
        row = await session.get(SocialAccount, account_id)
    assert row is not None
    # Readable with the new key alone: the old key can now be dropped.
    assert accounts.unseal(SecretBox([newest]), row.credentials).extra["secret"] == SECRET


async def test_posting_slots_and_the_queue(
    client: httpx.AsyncClient, state: AppState, team: Team, receiver: Receiver
) -> None:
    hook = (await connect_webhook(client, team, receiver.url))["account"]["id"]
    content_id = await approved_content(client, team)
    set_slots = (
        "mutation($i: SetPostingSlotsInput!) { setPostingSlots(input: $i) {"
        " slots { weekday time timezone } errors { field code } } }"
    )
    bad = await call(
        client,
        team.owner,
        set_slots,
        {
            "i": {
                "socialAccountId": hook,
                "timezone": "Europe/Berlin",
                "slots": [{"weekday": 7, "time": "09:00"}, {"weekday": 1, "time": "09:00"}],
            }
        },
    )
    assert [e["code"] for e in bad["setPostingSlots"]["errors"]] == ["OUT_OF_RANGE"]
    # Every day at 09:00 and 17:30 Berlin time.
    slots = [{"weekday": d, "time": t} for d in range(7) for t in ("17:30", "09:00")]
    done = await call(
        client,
        team.owner,
        set_slots,
        {"i": {"socialAccountId": hook, "timezone": "Europe/Berlin", "slots": slots}},
    )
    assert len(done["setPostingSlots"]["slots"]) == 14
    assert done["setPostingSlots"]["slots"][:2] == [
        {"weekday": 0, "time": "09:00", "timezone": "Europe/Berlin"},
        {"weekday": 0, "time": "17:30", "timezone": "Europe/Berlin"},
    ]
    queue = (
        "mutation($c: ID!, $a: ID!) { addToQueue(input: {contentId: $c, socialAccountId: $a})"
        " { post { id scheduledAt timezone } errors { code } } }"
    )
    first = (await call(client, team.owner, queue, {"c": content_id, "a": hook}))["addToQueue"]
    second = (await call(client, team.owner, queue, {"c": content_id, "a": hook}))["addToQueue"]
    times = [datetime.fromisoformat(p["post"]["scheduledAt"]) for p in (first, second)]
    from zoneinfo import ZoneInfo

    berlin = [t.astimezone(ZoneInfo("Europe/Berlin")) for t in times]
    assert all(t.strftime("%H:%M") in ("09:00", "17:30") for t in berlin)
    assert times[0] < times[1] <= times[0] + timedelta(hours=16)  # the next free slot
    assert first["post"]["timezone"] == "Europe/Berlin"
    listed = await call(
        client,
        team.owner,
        "query($ws: ID!) { socialAccounts(workspaceId: $ws) { edges { node {"
        " postingSlots { weekday time } } } } }",
        {"ws": team.workspace_id},
    )
    assert len(listed["socialAccounts"]["edges"][0]["node"]["postingSlots"]) == 14
