"""The email publisher checks an account's own SMTP server at send time (not only when the
account was connected): a host resolving to a private, loopback or link-local address is
refused unless OUTBOUND_ALLOW_PRIVATE_NETWORKS=true, and the connection goes to the
address that was checked. Against a real local SMTP server (aiosmtpd)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from app.models.vocabulary import Platform
from app.platforms.publishing import Credentials, PermanentError
from app.platforms.registry import publisher_for
from app.settings import Settings
from tests.platforms.conftest import make_post
from tests.platforms.smtp_inbox import Inbox, serve_inbox

pytestmark = pytest.mark.no_db


@pytest.fixture
async def inbox() -> AsyncIterator[Inbox]:
    async with serve_inbox() as inbox:
        yield inbox


def account(host: str, port: int) -> Credentials:
    return Credentials(
        extra={
            "smtp_host": host,
            "smtp_port": str(port),
            "smtp_starttls": "false",
            "from_address": "news@shop.example",
            "recipients": "ann@example.com",
        }
    )


POST = make_post("Sale today.", subject="Sale", idempotency_key="target-guard-1")


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
async def test_a_private_smtp_host_is_refused_at_send_time(
    inbox: Inbox, http: httpx.AsyncClient, platform_settings: Settings, host: str
) -> None:
    closed = platform_settings.model_copy(update={"outbound_allow_private_networks": False})
    publisher = publisher_for(Platform.EMAIL, http, closed)
    with pytest.raises(PermanentError) as caught:
        await publisher.publish(POST, account(host, inbox.port))
    assert "private, loopback or link-local" in caught.value.message
    assert inbox.arrived == []  # nothing was sent, not even a connection's greeting


async def test_the_setting_lets_a_private_host_through_by_its_checked_address(
    inbox: Inbox, http: httpx.AsyncClient, platform_settings: Settings
) -> None:
    assert platform_settings.outbound_allow_private_networks
    publisher = publisher_for(Platform.EMAIL, http, platform_settings)
    # "localhost" may resolve to ::1 first: the inbox listens on 127.0.0.1 only, so the
    # next checked address is tried.
    await publisher.publish(POST, account("localhost", inbox.port))
    [arrived] = await inbox.wait_for(1)
    assert arrived.recipients == ["ann@example.com"]


async def test_the_instance_server_is_the_operators_and_not_checked(
    inbox: Inbox, http: httpx.AsyncClient, platform_settings: Settings
) -> None:
    settings = platform_settings.model_copy(
        update={
            "outbound_allow_private_networks": False,
            "smtp_host": "127.0.0.1",
            "smtp_port": inbox.port,
            "smtp_starttls": False,
        }
    )
    publisher = publisher_for(Platform.EMAIL, http, settings)
    credentials = Credentials(
        extra={"from_address": "team@shop.example", "recipients": "ann@example.com"}
    )
    await publisher.publish(POST, credentials)
    assert len(await inbox.wait_for(1)) == 1
