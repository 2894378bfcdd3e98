"""MAILER=smtp: the app's own mail is a durable job a worker sends through a real local
SMTP server (aiosmtpd), retried while the server is down, final when it refuses."""

from __future__ import annotations

import asyncio
import socket
import uuid

import httpx
import pytest
from sqlalchemy import select

from app.infra.mailer import Mail, QueuedMailer, SmtpMailer, SmtpServer, build_mailer
from app.jobs import runner
from app.jobs.runner import JobContext
from app.models import Job
from app.services.outgoing import mail
from app.settings import Settings
from app.state import AppState
from tests.conftest import Servers, make_settings, running_app
from tests.helpers import gql, register
from tests.outgoing.steps import Quiet
from tests.platforms.smtp_inbox import serve_inbox
from tests.publishing.conftest import arq_worker
from workers.tasks import HANDLERS


async def test_password_reset_mail_is_a_job_a_worker_sends(servers: Servers) -> None:
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
            state = app.state.smartcontent
            assert isinstance(state.mailer, QueuedMailer)
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(
                transport=transport, base_url="http://testserver"
            ) as client:
                account = await register(client)
                request = "mutation($e: String!) { requestPasswordReset(email: $e) { success } }"
                body = await gql(client, request, {"e": account.email})
                assert body["data"]["requestPasswordReset"]["success"] is True
            await state.mailer.aclose()  # the job row is written beside the request
            [job] = await _mail_jobs(state)
            # Stored sealed: the reset token is nowhere in plain text.
            assert set(job.payload) == {"sealed"} and account.email not in str(job.payload)
            assert inbox.arrived == []  # the request itself sends nothing
            async with arq_worker(settings):
                [arrived] = await inbox.wait_for(1, timeout=20)
                await _wait_until_done(state, job.id)
            [done] = await _mail_jobs(state)
        assert done.status == "SUCCEEDED" and done.payload == {"sent": True}
        assert arrived.sender == "no-reply@smartcontent.test"
        assert arrived.recipients == [account.email]
        message = arrived.message
        assert message["Subject"] == "Reset your SmartContent password"
        assert message["From"] == "SmartContent <no-reply@smartcontent.test>"
        assert message["Message-ID"] == f"<{job.id.hex}@smartcontent.test>"
        text = message.get_content()
        assert f"{settings.public_url}/reset-password?token=" in text


async def test_a_server_down_is_retried_and_a_refusal_is_final(servers: Servers) -> None:
    async with serve_inbox() as inbox:
        up = make_settings(
            servers, smtp_host="127.0.0.1", smtp_port=inbox.port, smtp_starttls=False
        )
        with socket.socket() as closed:
            closed.bind(("127.0.0.1", 0))  # bound, not listening: connections are refused
            down = up.model_copy(update={"smtp_port": closed.getsockname()[1]})
            async with running_app(up) as app:
                state = app.state.smartcontent
                job_id = await mail.queue(
                    state.session_factory, None, state.keys.box, Mail("ann@example.com", "Hi", "B")
                )
                assert await _run(state, job_id, down) == "retrying"
                assert inbox.arrived == []
                assert await _run(state, job_id, up) == "succeeded"
                assert len(inbox.arrived) == 1
                # Run again (a duplicate arq job, or the handler after a lost success):
                # nothing is sent twice.
                assert await _run(state, job_id, up) == "skipped"
                async with state.session_factory() as session:
                    job = await session.get(Job, job_id)
                assert job is not None
                ctx = JobContext(job, state.session_factory, Quiet(), settings=up)
                assert await mail.send(ctx) == {"skipped": "already sent"}
                assert len(inbox.arrived) == 1

                inbox.refuse = {"gone@example.com"}
                refused = await mail.queue(
                    state.session_factory, None, state.keys.box, Mail("gone@example.com", "Hi", "B")
                )
                assert await _run(state, refused, up) == "failed"
                assert len(inbox.arrived) == 1


async def _mail_jobs(state: AppState) -> list[Job]:
    async with state.session_factory() as session:
        return list((await session.scalars(select(Job).where(Job.kind == mail.SEND_MAIL))).all())


async def _wait_until_done(state: AppState, job_id: uuid.UUID) -> None:
    async with asyncio.timeout(20):
        while True:
            async with state.session_factory() as session:
                job = await session.get(Job, job_id)
            if job is not None and job.status == "SUCCEEDED":
                return
            await asyncio.sleep(0.05)


async def _run(state: AppState, job_id: uuid.UUID, settings: Settings) -> str:
    return await runner.run(
        job_id,
        factory=state.session_factory,
        publisher=Quiet(),
        enqueuer=None,
        lease_seconds=10,
        handlers=HANDLERS,
        settings=settings,
        timeout_seconds=15,
    )


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
