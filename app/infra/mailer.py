"""Outgoing mail behind one small interface: `log` (dev) logs the message, `memory` keeps
it for tests, `smtp` sends it through SMTP_HOST with aiosmtplib.

`deliver` is the one SMTP transport, shared with the email publisher
(app/platforms/adapters/email.py); it says at which stage a failure happened (connect,
auth, envelope, data), because only a failure during DATA leaves it unknown whether the
server took the message.

The app's mailer for `smtp` is `QueuedMailer`: `send` stores the message as a durable job
(app/services/outgoing/mail.py, wired in app/asgi.py: this package imports no domain) and
a worker sends it, retried, so mail survives a process that dies. A request that mails (a
password reset) never waits on the database or the SMTP server, and a slow or failing
server never fails it. `SmtpMailer` sends in a background task of this process instead
(lost if it dies); it is what `build_mailer` gives without a durable queue.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import formatdate, make_msgid, parseaddr
from typing import Literal, Protocol

import aiosmtplib

from app.logging import get_logger
from app.settings import Settings

log = get_logger(__name__)


@dataclass(frozen=True)
class Mail:
    to: str
    subject: str
    body: str


class Mailer(Protocol):
    async def send(self, mail: Mail) -> None: ...

    async def aclose(self) -> None: ...


class LogMailer:
    """Development mailer: the message (with its link or token) goes to the log."""

    async def send(self, mail: Mail) -> None:
        log.info("mail_sent", to=mail.to, subject=mail.subject, body=mail.body)

    async def aclose(self) -> None:
        return None


@dataclass
class MemoryMailer:
    outbox: list[Mail] = field(default_factory=list)

    async def send(self, mail: Mail) -> None:
        self.outbox.append(mail)

    async def aclose(self) -> None:
        return None


Stage = Literal["connect", "auth", "envelope", "data"]


class SmtpFailure(Exception):
    """Why a message was not (surely) delivered; `message` is safe to show."""

    def __init__(self, stage: Stage, message: str, *, code: int | None = None) -> None:
        super().__init__(message)
        self.stage = stage
        self.message = message
        self.code = code


@dataclass(frozen=True)
class SmtpServer:
    host: str
    port: int = 587
    username: str | None = None
    password: str | None = None
    starttls: bool = True
    tls: bool = False  # implicit TLS (port 465); then STARTTLS is not used
    timeout: float = 30.0
    # The addresses to connect to (in order), when `host` was resolved and checked
    # beforehand (a user-chosen server must be public): the connection goes to an address
    # that was checked, and TLS still verifies `host`.
    addresses: tuple[str, ...] = ()

    @classmethod
    def from_settings(cls, settings: Settings) -> SmtpServer:
        if not settings.smtp_host:
            raise ValueError("SMTP_HOST is not set")
        password = settings.smtp_password
        return cls(
            host=settings.smtp_host,
            port=settings.smtp_port,
            username=settings.smtp_username,
            password=password.get_secret_value() if password is not None else None,
            starttls=settings.smtp_starttls and not settings.smtp_tls,
            tls=settings.smtp_tls,
            timeout=settings.smtp_timeout_seconds,
        )


def _reply(exc: aiosmtplib.SMTPResponseException) -> str:
    return f"{exc.code} {exc.message}"[:300]


async def deliver(
    server: SmtpServer, message: EmailMessage, *, sender: str, recipients: list[str]
) -> list[str]:
    """Send `message` to `recipients`; returns the recipients the server refused (the
    rest were accepted). Raises `SmtpFailure` when nobody got it, or it is unknown."""
    if not recipients:
        raise SmtpFailure("envelope", "the message has no recipients")
    stage: Stage = "connect"
    client: aiosmtplib.SMTP | None = None
    try:
        client = await _client(server)
        await client.connect()
        if server.username:
            stage = "auth"
            await client.login(server.username, server.password or "")
        stage = "envelope"
        await client.mail(sender)
        refused: list[str] = []
        refusal: aiosmtplib.SMTPRecipientRefused | None = None
        for recipient in recipients:
            try:
                await client.rcpt(recipient)
            except aiosmtplib.SMTPRecipientRefused as exc:
                refused.append(recipient)
                refusal = exc
        if refusal is not None and len(refused) == len(recipients):
            raise SmtpFailure(
                "envelope",
                f"every recipient was refused ({_reply(refusal)})",
                code=refusal.code,
            )
        stage = "data"
        await client.data(message.as_bytes())
    except SmtpFailure:
        raise
    except aiosmtplib.SMTPResponseException as exc:
        raise SmtpFailure(stage, f"the SMTP server refused: {_reply(exc)}", code=exc.code) from None
    except (aiosmtplib.SMTPException, OSError) as exc:
        # Connection lost or timed out (no reply code). The password never appears here.
        raise SmtpFailure(stage, f"SMTP connection failed ({type(exc).__name__})") from None
    finally:
        if client is not None and client.is_connected:
            try:
                await client.quit()
            except (aiosmtplib.SMTPException, OSError):
                client.close()
    return refused


async def _client(server: SmtpServer) -> aiosmtplib.SMTP:
    start_tls = server.starttls if not server.tls else False
    if not server.addresses:
        return aiosmtplib.SMTP(
            hostname=server.host,
            port=server.port,
            use_tls=server.tls,
            start_tls=start_tls,
            timeout=server.timeout,
        )
    sock = await _connect_checked(server)
    # The connected socket is aiosmtplib's from here (its transport closes it).
    return aiosmtplib.SMTP(
        hostname=server.host,
        sock=sock,
        use_tls=server.tls,
        start_tls=start_tls,
        timeout=server.timeout,
    )


async def _connect_checked(server: SmtpServer) -> socket.socket:
    """A TCP connection to the first of the checked addresses that answers."""
    loop = asyncio.get_running_loop()
    error: OSError = OSError("no address to connect to")
    for address in server.addresses:
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setblocking(False)
        try:
            async with asyncio.timeout(server.timeout):
                await loop.sock_connect(sock, (address, server.port))
        except OSError as exc:  # refused, unreachable, timed out: try the next address
            sock.close()
            error = exc
            continue
        except BaseException:
            sock.close()
            raise
        return sock
    raise error


def mail_message(mail: Mail, sender: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = mail.to
    message["Subject"] = mail.subject
    message["Date"] = formatdate(localtime=False)
    domain = parseaddr(sender)[1].rpartition("@")[2] or "localhost"
    message["Message-ID"] = make_msgid(domain=domain)
    message.set_content(mail.body)
    return message


class SmtpMailer:
    """The app's own mail (invitations, password resets) through SMTP, in the background."""

    def __init__(self, server: SmtpServer, sender: str, *, concurrency: int = 4) -> None:
        self.server = server
        self.sender = sender
        self._pending: set[asyncio.Task[None]] = set()
        self._slots = asyncio.Semaphore(concurrency)

    async def send(self, mail: Mail) -> None:
        task = asyncio.create_task(self._deliver(mail))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _deliver(self, mail: Mail) -> None:
        async with self._slots:
            envelope_from = parseaddr(self.sender)[1] or self.sender
            try:
                await deliver(
                    self.server,
                    mail_message(mail, self.sender),
                    sender=envelope_from,
                    recipients=[mail.to],
                )
            except SmtpFailure as exc:
                log.warning(
                    "mail_failed",
                    to=mail.to,
                    subject=mail.subject,
                    stage=exc.stage,
                    error=exc.message,
                )
                return
            log.info("mail_sent", to=mail.to, subject=mail.subject)

    async def aclose(self) -> None:
        """Wait for mail in flight (at shutdown; tests)."""
        if self._pending:
            await asyncio.gather(*self._pending, return_exceptions=True)


class QueuedMailer:
    """The app's own mail as durable jobs: `store` writes the job row and enqueues it.

    The store runs in a task of its own, so a request that mails answers as fast for an
    address that gets mail as for one that does not (a password reset must not tell which
    addresses have accounts). Only the milliseconds until the row commits are at risk if
    the process dies; from then on the job is retried until sent. `aclose` waits for
    stores in flight (at shutdown)."""

    def __init__(self, store: Callable[[Mail], Awaitable[object]]) -> None:
        self._store = store
        self._pending: set[asyncio.Task[None]] = set()

    async def send(self, mail: Mail) -> None:
        task = asyncio.create_task(self._queue(mail))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _queue(self, mail: Mail) -> None:
        try:
            await self._store(mail)
        except Exception as exc:
            log.error("mail_not_queued", to=mail.to, subject=mail.subject, error=repr(exc))

    async def aclose(self) -> None:
        if self._pending:
            await asyncio.gather(*self._pending, return_exceptions=True)


def build_mailer(
    kind: str,
    settings: Settings | None = None,
    *,
    durable: Callable[[Mail], Awaitable[object]] | None = None,
) -> Mailer:
    """`durable`: how to store a message as a job (the smtp mailer then queues it)."""
    if kind == "memory":
        return MemoryMailer()
    if kind == "smtp":
        if settings is None:
            raise ValueError("the smtp mailer needs the settings")
        server = SmtpServer.from_settings(settings)
        if durable is not None:
            return QueuedMailer(durable)
        return SmtpMailer(server, settings.smtp_from)
    return LogMailer()
