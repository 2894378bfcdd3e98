"""The app's own mail (invitations, password resets) as a durable job when MAILER=smtp.

`queue` writes a `send_mail` job row (the message sealed with the MultiFernet keys: it
holds a reset or invitation token, which Postgres otherwise keeps only hashed) and hands
it to arq; a worker sends it through SMTP_HOST. A process that dies after the row
committed loses nothing: the job is retried (network errors and 4xx replies, with the
runner's back-off) or picked up by the sweeper. A 5xx reply is final.

Idempotent: the claim guard runs each attempt once; after the server took the message the
sealed payload is erased, so a repeated run finds nothing to send; the Message-ID derives
from the job id, so if a worker dies between the server's answer and that erasure, the
one resent copy is the same message to clients that de-duplicate by it.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Awaitable, Callable
from email.utils import parseaddr
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.infra.mailer import Mail, SmtpFailure, SmtpServer, deliver, mail_message
from app.jobs import store as jobs
from app.jobs.runner import Handler, JobContext, PermanentJobError
from app.logging import get_logger
from app.models import Job
from app.security.crypto import SecretBox
from app.security.keys import load_keys

log = get_logger(__name__)

SEND_MAIL = "send_mail"
MAX_ATTEMPTS = 6
SEALED = "sealed"


def seal(box: SecretBox, mail: Mail) -> str:
    return box.encrypt(json.dumps({"to": mail.to, "subject": mail.subject, "body": mail.body}))


def unseal(box: SecretBox, sealed: str) -> Mail:
    data = json.loads(box.decrypt(sealed))
    return Mail(to=str(data["to"]), subject=str(data["subject"]), body=str(data["body"]))


async def queue(
    factory: async_sessionmaker[AsyncSession],
    pool: jobs.Enqueuer | None,
    box: SecretBox,
    mail: Mail,
) -> uuid.UUID:
    """Store `mail` as a job and hand it to arq (the sweeper does, if arq is away)."""
    async with factory() as session, session.begin():
        job = jobs.new_job(
            session, SEND_MAIL, {SEALED: seal(box, mail)}, MAX_ATTEMPTS, workspace_id=None
        )
    await jobs.enqueue(pool, job.id, 0)
    return job.id


def queue_with(
    factory: async_sessionmaker[AsyncSession], pool: jobs.Enqueuer | None, box: SecretBox
) -> Callable[[Mail], Awaitable[uuid.UUID]]:
    """`queue` bound to the API's connections (for app.infra.mailer.QueuedMailer)."""

    async def store(mail: Mail) -> uuid.UUID:
        return await queue(factory, pool, box, mail)

    return store


async def _erase(factory: async_sessionmaker[AsyncSession], job_id: uuid.UUID) -> None:
    async with factory() as session, session.begin():
        await session.execute(update(Job).where(Job.id == job_id).values(payload={"sent": True}))


async def send(ctx: JobContext) -> dict[str, Any]:
    settings = ctx.settings
    sealed = ctx.payload.get(SEALED)
    if not isinstance(sealed, str):
        return {"skipped": "already sent"}
    if settings is None or not settings.smtp_host:
        raise PermanentJobError("no SMTP_HOST on this worker")
    try:
        mail = unseal(load_keys(settings).box, sealed)
    except ValueError:
        raise PermanentJobError("no configured key opens this mail") from None
    sender = settings.smtp_from
    message = mail_message(mail, sender)
    domain = parseaddr(sender)[1].rpartition("@")[2] or "localhost"
    message.replace_header("Message-ID", f"<{ctx.job.id.hex}@{domain}>")
    try:
        await deliver(
            SmtpServer.from_settings(settings),
            message,
            sender=parseaddr(sender)[1] or sender,
            recipients=[mail.to],
        )
    except SmtpFailure as exc:
        log.warning("mail_failed", job_id=str(ctx.job.id), stage=exc.stage, error=exc.message)
        if exc.code is not None and exc.code >= 500:
            raise PermanentJobError(exc.message) from None
        raise RuntimeError(exc.message) from None  # retried with back-off
    await _erase(ctx.factory, ctx.job.id)
    log.info("mail_sent", job_id=str(ctx.job.id), subject=mail.subject)
    return {"sent": True}


async def rotate_payloads(
    factory: async_sessionmaker[AsyncSession], box: SecretBox
) -> tuple[int, list[uuid.UUID]]:
    """Re-encrypt mail still waiting to be sent under the newest key (`rotate-keys`)."""
    unreadable: list[uuid.UUID] = []
    count = 0
    async with factory() as session, session.begin():
        rows = await session.scalars(
            select(Job).where(Job.kind == SEND_MAIL, Job.payload.has_key(SEALED)).with_for_update()
        )
        for job in rows.all():
            try:
                job.payload = {SEALED: box.rotate(str(job.payload[SEALED]))}
            except ValueError:
                unreadable.append(job.id)
                continue
            count += 1
    return count, unreadable


JOB_HANDLERS: dict[str, Handler] = {SEND_MAIL: send}
