"""Connected accounts through the API: stored encrypted and never shown, refusals, the
outbound guard, disconnecting, key rotation, posting slots and the queue."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy import select

from app.models import AuditEntry, Content, SocialAccount
from app.models.vocabulary import Platform
from app.platforms.registry import publisher_for
from app.services.publishing import accounts
from app.state import AppState
from tests.helpers import gql
from tests.platforms.conftest import make_post
from tests.platforms.smtp_inbox import serve_inbox
from tests.publishing.conftest import (
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
    assert extra["recipients"] == "a@example.com" and extra["smtp_password"] == "pw-123"
    assert "pw-123" not in (row.credentials or "")


async def test_a_connected_email_account_delivers_through_the_email_publisher(
    client: httpx.AsyncClient, state: AppState, team: Team
) -> None:
    """What connectEmailAccount stores is what the email adapter reads: a post really
    arrives at the account's recipients over its SMTP server."""
    async with serve_inbox() as inbox:
        good = await call(
            client,
            team.owner,
            "mutation($i: ConnectEmailAccountInput!) { connectEmailAccount(input: $i) {"
            " account { id } errors { field code } } }",
            {
                "i": {
                    "workspaceId": team.workspace_id,
                    "name": "Newsletter",
                    "fromAddress": "news@example.com",
                    "recipients": ["ann@example.com", "bob@example.com"],
                    "smtp": {"host": "127.0.0.1", "port": inbox.port, "security": "none"},
                }
            },
        )
        assert good["connectEmailAccount"]["errors"] == []
        async with state.session_factory() as session:
            row = await session.get(
                SocialAccount, uid(good["connectEmailAccount"]["account"]["id"])
            )
            assert row is not None
            credentials = accounts.credentials_of(state.keys.box, row)
        async with httpx.AsyncClient() as http:
            publisher = publisher_for(Platform.EMAIL, http, state.settings)
            assert publisher.validate(make_post("Hi", subject="News"), credentials) == []
            await publisher.publish(make_post("Hi all", subject="News"), credentials)
        [arrived] = await inbox.wait_for(1)
    assert sorted(arrived.recipients) == ["ann@example.com", "bob@example.com"]
    assert arrived.message["Subject"] == "News"


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
    assert await accounts.rotate_credentials(state.session_factory, SecretBox([newest, old])) == (
        1,
        [],
    )
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
