"""Outgoing mail behind one small interface. `log` (dev) logs the message; `memory` keeps
it for tests. A real transport (SMTP, an email API) implements `Mailer.send`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from app.logging import get_logger

log = get_logger(__name__)


@dataclass(frozen=True)
class Mail:
    to: str
    subject: str
    body: str


class Mailer(Protocol):
    async def send(self, mail: Mail) -> None: ...


class LogMailer:
    """Development mailer: the message (with its link or token) goes to the log."""

    async def send(self, mail: Mail) -> None:
        log.info("mail_sent", to=mail.to, subject=mail.subject, body=mail.body)


@dataclass
class MemoryMailer:
    outbox: list[Mail] = field(default_factory=list)

    async def send(self, mail: Mail) -> None:
        self.outbox.append(mail)


def build_mailer(kind: str) -> Mailer:
    return MemoryMailer() if kind == "memory" else LogMailer()
