"""`smartcontent rotate-keys`: re-encrypt every secret stored encrypted (account
credentials, TOTP secrets, webhook endpoints' signing secrets) under the newest of ENCRYPTION_KEYS.

Rotation: prepend a new key to ENCRYPTION_KEYS on every API and worker process (the first
key encrypts, all decrypt), then run this once; afterwards the old keys can be removed.
A secret no configured key opens is left as it is and reported (exit code 1).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.security.crypto import SecretBox
from app.services.identity import two_factor
from app.services.outgoing import endpoints, mail
from app.services.publishing import accounts


@dataclass
class RotationReport:
    credentials: int = 0
    totp_secrets: int = 0
    webhook_secrets: int = 0
    queued_mail: int = 0
    unreadable_accounts: list[uuid.UUID] = field(default_factory=list)
    unreadable_users: list[uuid.UUID] = field(default_factory=list)
    unreadable_webhooks: list[uuid.UUID] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return not (self.unreadable_accounts or self.unreadable_users or self.unreadable_webhooks)


async def rotate_all(factory: async_sessionmaker[AsyncSession], box: SecretBox) -> RotationReport:
    report = RotationReport()
    report.credentials, report.unreadable_accounts = await accounts.rotate_credentials(factory, box)
    report.totp_secrets, report.unreadable_users = await two_factor.rotate_secrets(factory, box)
    webhooks = await endpoints.rotate_secrets(factory, box)
    report.webhook_secrets, report.unreadable_webhooks = webhooks
    # Mail waiting to be sent; one no key opens cannot be sent anyway (it fails).
    report.queued_mail, _ = await mail.rotate_payloads(factory, box)
    return report
