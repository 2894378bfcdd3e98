"""A real local SMTP server (aiosmtpd) in the test's event loop, that keeps what arrives.

Behaviours a test can switch on: refuse some recipients (550), require a login, or drop
the connection once the message data has arrived (the sender never hears whether it was
accepted)."""

from __future__ import annotations

import asyncio
import email
import email.policy
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session


@dataclass
class Arrived:
    sender: str
    recipients: list[str]
    message: EmailMessage


@dataclass
class Inbox:
    port: int = 0
    arrived: list[Arrived] = field(default_factory=list)
    refuse: set[str] = field(default_factory=set)
    login: tuple[str, str] | None = None
    drop_after_data: bool = False
    changed: asyncio.Condition = field(default_factory=asyncio.Condition)

    async def wait_for(self, count: int, timeout: float = 10.0) -> list[Arrived]:
        async with self.changed:
            await asyncio.wait_for(
                self.changed.wait_for(lambda: len(self.arrived) >= count), timeout
            )
        return self.arrived

    # aiosmtpd handler hooks
    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        if address in self.refuse:
            return f"550 5.1.1 <{address}>: Recipient address rejected: User unknown"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        parsed = email.message_from_bytes(raw, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        async with self.changed:
            self.arrived.append(Arrived(str(envelope.mail_from), list(envelope.rcpt_tos), parsed))
            self.changed.notify_all()
        if self.drop_after_data:
            assert server.transport is not None
            server.transport.abort()
        return "250 2.0.0 Ok: queued"

    def authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
    ) -> AuthResult:
        ok = (
            isinstance(auth_data, LoginPassword)
            and self.login is not None
            and (auth_data.login.decode(), auth_data.password.decode()) == self.login
        )
        # handled=False: aiosmtpd answers a failure itself (535).
        return AuthResult(success=ok, handled=False)


@asynccontextmanager
async def serve_inbox() -> AsyncIterator[Inbox]:
    inbox = Inbox()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: SMTP(
            inbox,
            hostname="inbox.test",
            authenticator=inbox.authenticate,
            auth_require_tls=False,  # a loopback test server without certificates
            auth_required=False,
            decode_data=False,
        ),
        "127.0.0.1",
        0,
    )
    inbox.port = server.sockets[0].getsockname()[1]
    try:
        yield inbox
    finally:
        server.close()
        await server.wait_closed()
