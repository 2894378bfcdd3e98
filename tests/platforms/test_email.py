"""The email publisher end to end against a real local SMTP server (aiosmtpd)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from app.models.vocabulary import Platform
from app.platforms.publishing import (
    AuthError,
    Credentials,
    OutcomeUnknown,
    PermanentError,
    RetryableError,
)
from app.platforms.registry import publisher_for
from app.settings import Settings
from tests.platforms.conftest import make_post
from tests.platforms.smtp_inbox import Inbox, serve_inbox

pytestmark = pytest.mark.no_db


@pytest.fixture
async def inbox() -> AsyncIterator[Inbox]:
    async with serve_inbox() as inbox:
        yield inbox


def account(inbox: Inbox, **extra: str) -> Credentials:
    values = {
        "smtp_host": "127.0.0.1",
        "smtp_port": str(inbox.port),
        "smtp_starttls": "false",
        "from_address": "News <news@shop.example>",
        "recipients": "ann@example.com, Bob <bob@example.com>",
        **extra,
    }
    return Credentials(extra=values)


def newsletter(**fields: str):  # type: ignore[no-untyped-def]
    return make_post(
        "Hello <b>friends</b> & fans,\n\nOur <script>alert(1)</script> sale starts now.\nSee you!",
        subject="Winter sale",
        preheader="30% off <everything>",
        idempotency_key=fields.pop("idempotency_key", "target-mail-1"),
        **fields,
    )


async def test_message_arrives_with_text_and_escaped_html(
    inbox: Inbox, http: httpx.AsyncClient, platform_settings: Settings
) -> None:
    publisher = publisher_for(Platform.EMAIL, http, platform_settings)
    assert publisher.validate(newsletter(), account(inbox)) == []
    published = await publisher.publish(newsletter(), account(inbox))
    [arrived] = await inbox.wait_for(1)
    assert arrived.sender == "news@shop.example"
    assert arrived.recipients == ["ann@example.com", "bob@example.com"]
    message = arrived.message
    assert message["Subject"] == "Winter sale"
    assert message["From"] == "News <news@shop.example>"
    assert message["To"] == "ann@example.com, bob@example.com"
    assert message["Message-ID"] == published.platform_post_id
    assert message.get_content_type() == "multipart/alternative"
    text = message.get_body(("plain",))
    html = message.get_body(("html",))
    assert text is not None and html is not None
    assert text.get_content().startswith("Hello <b>friends</b> & fans,")
    body = html.get_content()
    assert "<script>" not in body and "<b>" not in body
    assert "Hello &lt;b&gt;friends&lt;/b&gt; &amp; fans," in body
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in body
    # The preheader comes first, hidden, escaped.
    hidden = body.index('<div style="display:none')
    assert hidden < body.index("<p>") and "30% off &lt;everything&gt;</div>" in body


async def test_same_target_same_message_id(
    inbox: Inbox, http: httpx.AsyncClient, platform_settings: Settings
) -> None:
    publisher = publisher_for(Platform.EMAIL, http, platform_settings)
    first = await publisher.publish(newsletter(), account(inbox))
    second = await publisher.publish(newsletter(), account(inbox))
    other = await publisher.publish(newsletter(idempotency_key="target-mail-2"), account(inbox))
    assert first.platform_post_id == second.platform_post_id != other.platform_post_id
    assert first.platform_post_id.endswith("@shop.example>")


async def test_login_and_refused_login(
    inbox: Inbox, http: httpx.AsyncClient, platform_settings: Settings
) -> None:
    inbox.login = ("mailer", "s3cret-smtp-pass")
    publisher = publisher_for(Platform.EMAIL, http, platform_settings)
    await publisher.publish(
        newsletter(), account(inbox, smtp_username="mailer", smtp_password="s3cret-smtp-pass")
    )
    assert len(await inbox.wait_for(1)) == 1
    with pytest.raises(AuthError) as caught:
        await publisher.publish(
            newsletter(), account(inbox, smtp_username="mailer", smtp_password="wrong-pass-word")
        )
    assert "wrong-pass-word" not in caught.value.message and "535" in caught.value.message


async def test_recipients_refused(
    inbox: Inbox, http: httpx.AsyncClient, platform_settings: Settings
) -> None:
    publisher = publisher_for(Platform.EMAIL, http, platform_settings)
    inbox.refuse = {"ann@example.com"}
    await publisher.publish(newsletter(), account(inbox))  # bob still gets it
    [arrived] = await inbox.wait_for(1)
    assert arrived.recipients == ["bob@example.com"]
    inbox.refuse = {"ann@example.com", "bob@example.com"}
    with pytest.raises(PermanentError) as caught:
        await publisher.publish(newsletter(), account(inbox))
    assert caught.value.status == 550 and "every recipient was refused" in caught.value.message


async def test_connection_lost_during_data_is_unknown(
    inbox: Inbox, http: httpx.AsyncClient, platform_settings: Settings
) -> None:
    inbox.drop_after_data = True
    publisher = publisher_for(Platform.EMAIL, http, platform_settings)
    with pytest.raises(OutcomeUnknown):
        await publisher.publish(newsletter(), account(inbox))
    assert len(inbox.arrived) == 1  # it did arrive: a blind retry would send it twice


async def test_unreachable_server_is_retryable(
    http: httpx.AsyncClient, platform_settings: Settings
) -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        publisher = publisher_for(Platform.EMAIL, http, platform_settings)
        credentials = Credentials(
            extra={
                "smtp_host": "127.0.0.1",
                "smtp_port": str(port),
                "smtp_starttls": "false",
                "from_address": "a@b.example",
                "recipients": "c@d.example",
            }
        )
        with pytest.raises(RetryableError) as caught:
            await publisher.publish(newsletter(), credentials)
    assert caught.value.message.startswith("SMTP connection failed")


async def test_instance_smtp_and_validation(
    inbox: Inbox, http: httpx.AsyncClient, platform_settings: Settings
) -> None:
    settings = platform_settings.model_copy(
        update={"smtp_host": "127.0.0.1", "smtp_port": inbox.port, "smtp_starttls": False}
    )
    publisher = publisher_for(Platform.EMAIL, http, settings)
    credentials = Credentials(
        extra={"from_address": "team@shop.example", "recipients": "ann@example.com"}
    )
    await publisher.publish(newsletter(), credentials)
    assert (await inbox.wait_for(1))[0].recipients == ["ann@example.com"]

    bare = publisher_for(Platform.EMAIL, http, platform_settings)
    problems = bare.validate(make_post("no subject"), Credentials(extra={"from_address": "nope"}))
    assert problems == [
        "An email needs a subject.",
        "The email account has no recipients.",
        "No SMTP server: set the account's or the instance's SMTP_HOST.",
        "The email account's from address is not an address.",
    ]
    with pytest.raises(PermanentError):
        await bare.delete(await publisher.publish(newsletter(), credentials), credentials)
