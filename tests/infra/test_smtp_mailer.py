"""MAILER=smtp: the app's own mail goes out through a real local SMTP server (aiosmtpd)."""

from __future__ import annotations

import httpx
import pytest

from app.infra.mailer import Mail, SmtpMailer, SmtpServer, build_mailer
from app.settings import Settings
from tests.conftest import Servers, make_settings, running_app
from tests.helpers import gql, register
from tests.platforms.smtp_inbox import serve_inbox


async def test_password_reset_mail_arrives_over_smtp(servers: Servers) -> None:
    async with serve_inbox() as inbox:
        settings = make_settings(
            servers,
            mailer="smtp",
            smtp_host="127.0.0.1",
            smtp_port=inbox.port,
            smtp_starttls=False,
            smtp_from="SmartContent <no-reply@smartcontent.test>",
        )
        async with running_app(settings) as app:
            assert isinstance(app.state.smartcontent.mailer, SmtpMailer)
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(
                transport=transport, base_url="http://testserver"
            ) as client:
                account = await register(client)
                request = "mutation($e: String!) { requestPasswordReset(email: $e) { success } }"
                body = await gql(client, request, {"e": account.email})
                assert body["data"]["requestPasswordReset"]["success"] is True
                [arrived] = await inbox.wait_for(1)
        assert arrived.sender == "no-reply@smartcontent.test"
        assert arrived.recipients == [account.email]
        message = arrived.message
        assert message["Subject"] == "Reset your SmartContent password"
        assert message["From"] == "SmartContent <no-reply@smartcontent.test>"
        text = message.get_content()
        assert f"{settings.public_url}/reset-password?token=" in text


@pytest.mark.no_db
async def test_a_failing_server_never_fails_the_sender() -> None:
    async with serve_inbox() as inbox:
        inbox.refuse = {"gone@example.com"}
        mailer = SmtpMailer(
            SmtpServer("127.0.0.1", inbox.port, starttls=False, timeout=5), "a@b.example"
        )
        await mailer.send(Mail("gone@example.com", "Hi", "Body"))  # refused: logged, not raised
        await mailer.send(Mail("ok@example.com", "Hi", "Body"))
        await mailer.aclose()
        assert [a.recipients for a in inbox.arrived] == [["ok@example.com"]]


@pytest.mark.no_db
def test_smtp_mailer_needs_a_host() -> None:
    with pytest.raises(ValueError, match="SMTP_HOST"):
        Settings(_env_file=None, mailer="smtp")  # type: ignore[call-arg]
    configured = Settings(_env_file=None, mailer="smtp", smtp_host="mail.example")  # type: ignore[call-arg]
    assert isinstance(build_mailer("smtp", configured), SmtpMailer)
