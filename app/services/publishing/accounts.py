"""Connected accounts: where a workspace publishes, with credentials encrypted at rest.

`store_account` is the one way an account is saved, whatever connected it (the webhook
and email forms here; OAuth callbacks, Bluesky and Mastodon elsewhere): it encrypts the
credentials with the MultiFernet keys, and connecting the same platform account again
(same external id) updates the row instead of adding a twin.

Credentials.extra keys per platform, as the adapters read them:
- WEBHOOK: `url`, `secret`;
- EMAIL: `from_address`, `recipients` (comma-separated), and optionally `smtp_host`,
  `smtp_port`, `smtp_username`, `smtp_password`, `smtp_starttls` and `smtp_tls`
  ("true"/"false"); without `smtp_host` the instance's SMTP settings are used (the
  email adapter, app/platforms/adapters/email.py, reads exactly these).
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from email_validator import EmailNotValidError, validate_email
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.auth import Principal
from app.errors import FieldError, NotFound, UserErrorCode, ValidationFailed
from app.infra import outbound
from app.models import AccountStatus, PostTarget, ScheduledPost, SocialAccount, TargetStatus
from app.models.vocabulary import Platform
from app.pagination import Page
from app.permissions import Action
from app.platforms.publishing import Credentials
from app.security.crypto import SecretBox
from app.services import lookup
from app.services.audit import trail as audit
from app.services.outgoing import outbox
from app.services.publishing import events, transitions
from app.state import AppState

MAX_NAME = 200
MAX_URL = 2000
MIN_SECRET = 16
MAX_SECRET = 500
MAX_RECIPIENTS = 100
SMTP_SECURITY = ("starttls", "tls", "none")
WEB_SCHEMES = frozenset({"https", "http"})
DISCONNECTED_ERROR = "The account was disconnected before this post went out."


def seal(box: SecretBox, credentials: Credentials) -> str:
    """Credentials as one encrypted JSON document."""
    document = {
        "access_token": credentials.access_token,
        "refresh_token": credentials.refresh_token,
        "expires_at": credentials.expires_at.isoformat() if credentials.expires_at else None,
        "external_id": credentials.external_id,
        "extra": dict(credentials.extra),
    }
    return box.encrypt(json.dumps(document))


def unseal(box: SecretBox, sealed: str | None) -> Credentials:
    if not sealed:
        return Credentials()
    document: dict[str, Any] = json.loads(box.decrypt(sealed))
    expires = document.get("expires_at")
    return Credentials(
        access_token=document.get("access_token"),
        refresh_token=document.get("refresh_token"),
        expires_at=datetime.fromisoformat(expires) if expires else None,
        external_id=document.get("external_id"),
        extra={str(k): str(v) for k, v in (document.get("extra") or {}).items()},
    )


def not_found() -> NotFound:
    return NotFound("No such social account.")


async def store_account(
    session: AsyncSession,
    box: SecretBox,
    *,
    workspace_id: uuid.UUID,
    platform: Platform,
    name: str,
    credentials: Credentials,
    created_by_id: uuid.UUID | None,
) -> SocialAccount:
    """Save a connected account in the caller's transaction (it commits with the audit
    entry). With an external id, an existing live account of the same platform account is
    updated (reconnected) instead of duplicated."""
    existing = None
    if credentials.external_id:
        existing = await session.scalar(
            select(SocialAccount)
            .where(
                SocialAccount.workspace_id == workspace_id,
                SocialAccount.platform == platform.value,
                SocialAccount.external_id == credentials.external_id,
                SocialAccount.status != AccountStatus.DISCONNECTED.value,
            )
            .with_for_update()
        )
    account = existing or SocialAccount(
        id=uuid.uuid4(),
        workspace_id=workspace_id,
        platform=platform.value,
        external_id=credentials.external_id,
        created_by_id=created_by_id,
    )
    account.name = name
    account.status = AccountStatus.CONNECTED.value
    account.status_reason = None
    account.credentials = seal(box, credentials)
    account.token_expires_at = credentials.expires_at
    if existing is None:
        session.add(account)
    await session.flush()
    await session.refresh(account)
    return account


def credentials_of(box: SecretBox, account: SocialAccount) -> Credentials:
    return unseal(box, account.credentials)


async def rotate_credentials(
    factory: async_sessionmaker[AsyncSession], box: SecretBox
) -> tuple[int, list[uuid.UUID]]:
    """Re-encrypt every stored credential under the newest key (for `rotate-keys`, after a
    new key was prepended to ENCRYPTION_KEYS): how many were rewritten, and the accounts
    whose credentials no configured key opens (left as they are)."""
    unreadable: list[uuid.UUID] = []
    count = 0
    async with factory() as session, session.begin():
        rows = await session.scalars(
            select(SocialAccount).where(SocialAccount.credentials.is_not(None)).with_for_update()
        )
        for account in rows.all():
            assert account.credentials is not None
            try:
                account.credentials = box.rotate(account.credentials)
            except ValueError:
                unreadable.append(account.id)
                continue
            count += 1
    return count, unreadable


def _name_error(name: str) -> FieldError | None:
    if not name.strip() or len(name.strip()) > MAX_NAME:
        return FieldError(
            "name", UserErrorCode.INVALID, f"Name must be 1 to {MAX_NAME} characters."
        )
    return None


async def _url_error(state: AppState, field: str, url: str) -> FieldError | None:
    if len(url) > MAX_URL:
        return FieldError(field, UserErrorCode.TOO_LONG, f"At most {MAX_URL} characters.")
    problem = await outbound.check_url(
        url,
        allow_private=state.settings.outbound_allow_private_networks,
        schemes=WEB_SCHEMES,
    )
    return FieldError(field, UserErrorCode.INVALID, problem) if problem else None


async def _connect(
    state: AppState,
    principal: Principal,
    workspace_id: uuid.UUID,
    platform: Platform,
    name: str,
    credentials: Credentials,
    action_name: str,
    details: dict[str, Any],
) -> SocialAccount:
    async with state.session_factory() as session, session.begin():
        account = await store_account(
            session,
            state.keys.box,
            workspace_id=workspace_id,
            platform=platform,
            name=name.strip(),
            credentials=credentials,
            created_by_id=principal.user_id,
        )
        audit.record_row(session, principal, action_name, account, details)
    return account


async def connect_webhook(
    state: AppState,
    principal: Principal,
    workspace_id: uuid.UUID,
    *,
    name: str,
    url: str,
    secret: str,
) -> SocialAccount:
    """A webhook account: posts go to `url` as signed JSON (see the webhook adapter)."""
    principal.require(workspace_id, Action.ACCOUNT_MANAGE)
    errors = [e for e in (_name_error(name), await _url_error(state, "url", url)) if e]
    if not MIN_SECRET <= len(secret) <= MAX_SECRET:
        errors.append(
            FieldError(
                "secret",
                UserErrorCode.INVALID,
                f"The signing secret must be {MIN_SECRET} to {MAX_SECRET} characters.",
            )
        )
    if errors:
        raise ValidationFailed(errors)
    host = url.split("://", 1)[-1].split("/", 1)[0]
    return await _connect(
        state,
        principal,
        workspace_id,
        Platform.WEBHOOK,
        name,
        Credentials(extra={"url": url, "secret": secret}),
        "connectWebhookAccount",
        {"name": name.strip(), "host": host},
    )


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    port: int = 587
    username: str | None = None
    password: str | None = None
    security: str = "starttls"


@dataclass(frozen=True)
class EmailAccountRequest:
    workspace_id: uuid.UUID
    name: str
    from_address: str
    recipients: list[str] = field(default_factory=list)
    smtp: SmtpSettings | None = None


def _address(field_name: str, value: str, errors: list[FieldError]) -> str | None:
    try:
        return validate_email(value, check_deliverability=False).normalized
    except EmailNotValidError:
        errors.append(FieldError(field_name, UserErrorCode.INVALID, f"{value!r} is not an email."))
        return None


async def connect_email(
    state: AppState, principal: Principal, request: EmailAccountRequest
) -> SocialAccount:
    """An email account: posts go to `recipients` from `from_address`, over the given SMTP
    server or the instance's."""
    principal.require(request.workspace_id, Action.ACCOUNT_MANAGE)
    errors: list[FieldError] = []
    if error := _name_error(request.name):
        errors.append(error)
    sender = _address("fromAddress", request.from_address, errors)
    if not request.recipients:
        errors.append(FieldError("recipients", UserErrorCode.REQUIRED, "Name who receives it."))
    elif len(request.recipients) > MAX_RECIPIENTS:
        errors.append(
            FieldError("recipients", UserErrorCode.TOO_MANY, f"At most {MAX_RECIPIENTS}.")
        )
    recipients = [_address("recipients", r, errors) for r in request.recipients[:MAX_RECIPIENTS]]
    extra: dict[str, str] = {}
    smtp = request.smtp
    if smtp is not None:
        if not 1 <= smtp.port <= 65535:
            errors.append(FieldError("smtp.port", UserErrorCode.OUT_OF_RANGE, "1 to 65535."))
        if smtp.security not in SMTP_SECURITY:
            errors.append(
                FieldError("smtp.security", UserErrorCode.INVALID, "starttls, tls or none.")
            )
        problem = await outbound.check_url(
            f"smtp://{smtp.host}:{smtp.port if 1 <= smtp.port <= 65535 else 25}",
            allow_private=state.settings.outbound_allow_private_networks,
            schemes=frozenset({"smtp"}),
        )
        if problem:
            errors.append(FieldError("smtp.host", UserErrorCode.INVALID, problem))
        extra.update(
            smtp_host=smtp.host,
            smtp_port=str(smtp.port),
            smtp_starttls=str(smtp.security == "starttls").lower(),
            smtp_tls=str(smtp.security == "tls").lower(),
            **({"smtp_username": smtp.username} if smtp.username else {}),
            **({"smtp_password": smtp.password} if smtp.password else {}),
        )
    if errors:
        raise ValidationFailed(errors)
    assert sender is not None
    extra.update(from_address=sender, recipients=", ".join(r for r in recipients if r))
    return await _connect(
        state,
        principal,
        request.workspace_id,
        Platform.EMAIL,
        request.name,
        Credentials(extra=extra),
        "connectEmailAccount",
        {"name": request.name.strip(), "recipients": len(recipients)},
    )


async def disconnect(state: AppState, principal: Principal, account_id: uuid.UUID) -> SocialAccount:
    """Disconnect: the credentials are erased, and its targets still waiting fail at once
    with the reason (none would publish); published posts are kept."""
    failed: list[PostTarget] = []
    async with state.session_factory() as session, session.begin():
        try:
            account = await lookup.scoped_row(
                session,
                SocialAccount,
                account_id,
                principal,
                Action.ACCOUNT_MANAGE,
                for_update=True,
            )
        except NotFound:
            raise not_found() from None
        if account.status != AccountStatus.DISCONNECTED.value:
            account.status = AccountStatus.DISCONNECTED.value
            account.credentials = None
            account.disconnected_at = datetime.now(UTC)
            failed = list(
                (
                    await session.scalars(
                        update(PostTarget)
                        .where(
                            PostTarget.social_account_id == account.id,
                            PostTarget.status == TargetStatus.PENDING.value,
                        )
                        .values(
                            status=TargetStatus.FAILED.value,
                            error=DISCONNECTED_ERROR,
                            event_seq=PostTarget.event_seq + 1,
                        )
                        .returning(PostTarget)
                        .execution_options(synchronize_session=False, populate_existing=True)
                    )
                ).all()
            )
            contents = await session.scalars(
                select(ScheduledPost.content_id)
                .where(ScheduledPost.id.in_({t.post_id for t in failed}))
                .distinct()
            )
            for content_id in contents.all():
                await transitions.unschedule_if_idle(session, content_id)
            await outbox.posts_failed(session, failed)
        audit.record_row(
            session, principal, "disconnectSocialAccount", account, {"failed": len(failed)}
        )
        await session.flush()
        await session.refresh(account)
    await events.emit(state.hub, failed)
    return account


async def list_accounts(
    state: AppState,
    principal: Principal,
    workspace_id: uuid.UUID,
    *,
    first: int,
    after: str | None,
    include_disconnected: bool = False,
) -> Page[SocialAccount]:
    where = [] if include_disconnected else [SocialAccount.status != AccountStatus.DISCONNECTED]
    return await lookup.workspace_page(
        state.read_session_factory,
        principal,
        SocialAccount,
        workspace_id,
        Action.CONTENT_READ,
        first=first,
        after=after,
        where=where,
    )
