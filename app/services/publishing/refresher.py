"""The token refresher: renews access tokens before they expire.

A task in every worker, beside the sweepers. Each pass takes due accounts one at a time
(CONNECTED, `token_expires_at` within TOKEN_REFRESH_WINDOW_SECONDS) with `FOR UPDATE SKIP
LOCKED`, and holds that row lock while it asks the platform (the adapter's
`refresh_token`, bounded by OAUTH_TIMEOUT_SECONDS): a second worker skips the row, and once
the first commits, the new expiry puts it outside the window. So one account is never
refreshed twice at once, which matters where refresh tokens are single use (X, LinkedIn).

- Success: the new tokens are stored encrypted, with the new expiry.
- `AuthError` (the platform refused the refresh): the account becomes NEEDS_RECONNECT with
  the platform's words, an audit entry says so, and the workspace's `accounts:{id}` channel
  gets `{"account_id", "workspace_id", "status", "reason"}` for its admins.
- Anything else (rate limit, platform down): logged; the next pass tries again.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.auth import ANONYMOUS
from app.logging import get_logger
from app.models import AccountStatus, SocialAccount
from app.models.vocabulary import Platform
from app.platforms import registry
from app.platforms.publishing import AuthError, Credentials, PublishError
from app.security.crypto import SecretBox
from app.services.audit import trail as audit
from app.services.outgoing import outbox
from app.services.publishing.accounts import seal, unseal
from app.services.publishing.events import EventPublisher
from app.settings import Settings

log = get_logger(__name__)

ACTOR = "system:token-refresher"


def channel(workspace_id: uuid.UUID | str) -> str:
    """Where a workspace's account status changes are published."""
    return f"accounts:{workspace_id}"


@dataclass
class RefreshReport:
    refreshed: list[uuid.UUID] = field(default_factory=list)
    needs_reconnect: list[uuid.UUID] = field(default_factory=list)
    failed: list[uuid.UUID] = field(default_factory=list)  # tried again next pass


async def _next_due(
    session: AsyncSession, horizon: datetime, tried: list[uuid.UUID]
) -> SocialAccount | None:
    query = (
        select(SocialAccount)
        .where(
            SocialAccount.status == AccountStatus.CONNECTED.value,
            SocialAccount.token_expires_at.is_not(None),
            SocialAccount.token_expires_at < horizon,
            SocialAccount.credentials.is_not(None),
        )
        .order_by(SocialAccount.token_expires_at)
        .limit(1)
        .with_for_update(skip_locked=True)
    )
    if tried:
        query = query.where(SocialAccount.id.not_in(tried))
    return await session.scalar(query)


async def _refresh(
    http: httpx.AsyncClient, settings: Settings, account: SocialAccount, creds: Credentials
) -> Credentials:
    publisher = registry.publisher_for(Platform(account.platform), http, settings)
    tokens = await publisher.refresh_token(creds)
    return Credentials(
        access_token=tokens.access_token,
        refresh_token=tokens.refresh_token or creds.refresh_token,
        expires_at=tokens.expires_at,
        external_id=creds.external_id,
        extra=creds.extra,
    )


async def refresh_due(
    factory: async_sessionmaker[AsyncSession],
    settings: Settings,
    box: SecretBox,
    http: httpx.AsyncClient,
    publisher: EventPublisher | None,
    *,
    window_seconds: float | None = None,
    limit: int = 100,
) -> RefreshReport:
    """One pass: refresh every account expiring within the window (at most `limit`)."""
    window = window_seconds if window_seconds is not None else settings.token_refresh_window_seconds
    report = RefreshReport()
    tried: list[uuid.UUID] = []
    while len(tried) < limit:
        events: list[dict[str, Any]] = []
        async with factory() as session, session.begin():
            horizon = datetime.now(UTC) + timedelta(seconds=window)
            account = await _next_due(session, horizon, tried)
            if account is None:
                break
            tried.append(account.id)
            try:
                fresh = await _refresh(http, settings, account, unseal(box, account.credentials))
            except AuthError as exc:
                account.status = AccountStatus.NEEDS_RECONNECT.value
                account.status_reason = exc.message[:1000]
                audit.record(
                    session,
                    ANONYMOUS,
                    "accountNeedsReconnect",
                    workspace_id=account.workspace_id,
                    target_type="SocialAccount",
                    target_id=account.id,
                    details={"reason": account.status_reason},
                    actor_label=ACTOR,
                )
                report.needs_reconnect.append(account.id)
                await outbox.account_needs_reconnect(session, account)
                events.append(
                    {
                        "account_id": str(account.id),
                        "workspace_id": str(account.workspace_id),
                        "status": account.status,
                        "reason": account.status_reason,
                    }
                )
            except (PublishError, LookupError, ValueError) as exc:
                log.warning(
                    "token_refresh_failed",
                    account_id=str(account.id),
                    error=exc.message if isinstance(exc, PublishError) else type(exc).__name__,
                )
                report.failed.append(account.id)
            else:
                account.credentials = seal(box, fresh)
                account.token_expires_at = fresh.expires_at
                report.refreshed.append(account.id)
        for event in events:
            if publisher is None:
                continue
            try:
                await publisher.publish(channel(event["workspace_id"]), event)
            except Exception as exc:
                log.warning("account_event_publish_failed", error=repr(exc))
    return report


async def run_forever(
    factory: async_sessionmaker[AsyncSession],
    settings: Settings,
    box: SecretBox,
    http: httpx.AsyncClient,
    publisher: EventPublisher | None,
) -> None:
    """The worker's refresher task: a pass every TOKEN_REFRESH_INTERVAL_SECONDS; a failing
    pass (Postgres away) is logged and tried again at the next tick."""
    while True:
        try:
            report = await refresh_due(factory, settings, box, http, publisher)
            if report.refreshed or report.needs_reconnect:
                log.info(
                    "tokens_refreshed",
                    refreshed=len(report.refreshed),
                    needs_reconnect=len(report.needs_reconnect),
                )
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("token_refresher_failed", error=repr(exc))
        await asyncio.sleep(settings.token_refresh_interval_seconds)
