"""Webhook endpoints: a workspace's admins register URLs for events.

The signing secret is generated here, shown once (on create and on rotation) and stored
encrypted with the MultiFernet keys (`smartcontent rotate-keys` re-encrypts it). A URL is
checked when entered: https (http too only with OUTBOUND_ALLOW_PRIVATE_NETWORKS=true, for
development), at most MAX_URL characters, no user name or password in it, and a host that
resolves to public addresses only; each delivery checks the address again.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.auth import Principal
from app.errors import FieldError, UserErrorCode, ValidationFailed
from app.infra import outbound
from app.models import WebhookEndpoint
from app.models.vocabulary import WebhookEvent
from app.pagination import Page
from app.permissions import Action, allows
from app.security.crypto import SecretBox
from app.services import lookup
from app.services.audit import trail as audit
from app.state import AppState

MAX_URL = 2000
MAX_DESCRIPTION = 500
MAX_ENDPOINTS = 20  # per workspace
SECRET_PREFIX = "whsec_"  # noqa: S105 - a prefix, not a secret


@dataclass(frozen=True)
class EndpointWithSecret:
    endpoint: WebhookEndpoint
    secret: str  # shown once


@dataclass(frozen=True)
class EndpointChanges:
    url: str | None = None
    events: Sequence[WebhookEvent] | None = None
    description: str | None = None
    active: bool | None = None


def new_secret() -> str:
    return SECRET_PREFIX + secrets.token_urlsafe(32)


async def url_problem(url: str, *, allow_private: bool) -> str | None:
    """Why `url` cannot be an endpoint (None when it can)."""
    if len(url) > MAX_URL:
        return f"At most {MAX_URL} characters."
    schemes = frozenset({"https", "http"}) if allow_private else frozenset({"https"})
    return await outbound.check_url(url.strip(), allow_private=allow_private, schemes=schemes)


async def _check(
    state: AppState,
    *,
    url: str | None,
    events: Sequence[WebhookEvent] | None,
    description: str | None,
) -> None:
    errors: list[FieldError] = []
    if url is not None:
        allow = state.settings.outbound_allow_private_networks
        if problem := await url_problem(url, allow_private=allow):
            code = UserErrorCode.TOO_LONG if len(url) > MAX_URL else UserErrorCode.INVALID
            errors.append(FieldError("url", code, problem))
    if events is not None and not events:
        errors.append(FieldError("events", UserErrorCode.REQUIRED, "Name at least one event."))
    if description is not None and len(description) > MAX_DESCRIPTION:
        errors.append(
            FieldError(
                "description", UserErrorCode.TOO_LONG, f"At most {MAX_DESCRIPTION} characters."
            )
        )
    if errors:
        raise ValidationFailed(errors)


def _events(events: Sequence[WebhookEvent]) -> list[str]:
    return [e.value for e in WebhookEvent if e in set(events)]  # declared order, no repeats


async def create(
    state: AppState,
    principal: Principal,
    workspace_id: uuid.UUID,
    *,
    url: str,
    events: Sequence[WebhookEvent],
    description: str | None = None,
) -> EndpointWithSecret:
    principal.require(workspace_id, Action.ACCOUNT_MANAGE)
    await _check(state, url=url, events=events, description=description)
    secret = new_secret()
    async with state.session_factory() as session, session.begin():
        count = await session.scalar(
            select(func.count())
            .select_from(WebhookEndpoint)
            .where(WebhookEndpoint.workspace_id == workspace_id)
        )
        if (count or 0) >= MAX_ENDPOINTS:
            raise ValidationFailed(
                [FieldError(None, UserErrorCode.TOO_MANY, f"At most {MAX_ENDPOINTS} endpoints.")]
            )
        endpoint = WebhookEndpoint(
            id=uuid.uuid4(),
            workspace_id=workspace_id,
            url=url.strip(),
            description=description.strip() if description else None,
            events=_events(events),
            secret=state.keys.box.encrypt(secret),
            active=True,
            created_by_id=principal.user_id,
        )
        session.add(endpoint)
        await session.flush()
        await session.refresh(endpoint)
        audit.record_row(
            session, principal, "createWebhookEndpoint", endpoint, {"events": endpoint.events}
        )
    return EndpointWithSecret(endpoint, secret)


async def _locked(
    session: AsyncSession, principal: Principal, endpoint_id: uuid.UUID
) -> WebhookEndpoint:
    return await lookup.scoped_row(
        session, WebhookEndpoint, endpoint_id, principal, Action.ACCOUNT_MANAGE, for_update=True
    )


async def update(
    state: AppState, principal: Principal, endpoint_id: uuid.UUID, changes: EndpointChanges
) -> WebhookEndpoint:
    async with state.session_factory() as session, session.begin():
        endpoint = await _locked(session, principal, endpoint_id)
        await _check(state, url=changes.url, events=changes.events, description=changes.description)
        if changes.url is not None:
            endpoint.url = changes.url.strip()
        if changes.events is not None:
            endpoint.events = _events(changes.events)
        if changes.description is not None:
            endpoint.description = changes.description.strip() or None
        if changes.active is not None:
            endpoint.active = changes.active
        audit.record_row(
            session,
            principal,
            "updateWebhookEndpoint",
            endpoint,
            {"events": endpoint.events, "active": endpoint.active},
        )
        await session.flush()
        await session.refresh(endpoint)
    return endpoint


async def delete(state: AppState, principal: Principal, endpoint_id: uuid.UUID) -> uuid.UUID:
    """Delete an endpoint with its deliveries (jobs still queued for it find nothing)."""
    async with state.session_factory() as session, session.begin():
        endpoint = await _locked(session, principal, endpoint_id)
        audit.record_row(session, principal, "deleteWebhookEndpoint", endpoint, {})
        await session.delete(endpoint)
    return endpoint_id


async def rotate_secret(
    state: AppState, principal: Principal, endpoint_id: uuid.UUID
) -> EndpointWithSecret:
    """A new signing secret, effective for every attempt from now on (shown once)."""
    secret = new_secret()
    async with state.session_factory() as session, session.begin():
        endpoint = await _locked(session, principal, endpoint_id)
        endpoint.secret = state.keys.box.encrypt(secret)
        audit.record_row(session, principal, "rotateWebhookSecret", endpoint, {})
        await session.flush()
        await session.refresh(endpoint)
    return EndpointWithSecret(endpoint, secret)


async def list_endpoints(
    state: AppState,
    principal: Principal,
    workspace_id: uuid.UUID,
    *,
    first: int,
    after: str | None,
) -> Page[WebhookEndpoint]:
    return await lookup.workspace_page(
        state.read_session_factory,
        principal,
        WebhookEndpoint,
        workspace_id,
        Action.ACCOUNT_MANAGE,
        first=first,
        after=after,
    )


async def visible(
    state: AppState, principal: Principal, ids: Sequence[uuid.UUID]
) -> list[WebhookEndpoint | None]:
    """Endpoints by id for `node(id:)`, one statement: None outside the caller's admin
    workspaces."""
    async with state.read_session_factory() as session:
        rows = (
            await session.scalars(select(WebhookEndpoint).where(WebhookEndpoint.id.in_(ids)))
        ).all()
    by_id = {r.id: r for r in rows if is_admin(principal, r.workspace_id)}
    return [by_id.get(i) for i in ids]


def is_admin(principal: Principal, workspace_id: uuid.UUID) -> bool:
    role = principal.role_in(workspace_id)
    return role is not None and allows(role, Action.ACCOUNT_MANAGE)


async def rotate_secrets(
    factory: async_sessionmaker[AsyncSession], box: SecretBox
) -> tuple[int, list[uuid.UUID]]:
    """Re-encrypt every endpoint secret under the newest key (`rotate-keys`): how many,
    and the endpoints no configured key opens (left as they are)."""
    unreadable: list[uuid.UUID] = []
    count = 0
    async with factory() as session, session.begin():
        rows = await session.scalars(select(WebhookEndpoint).with_for_update())
        for endpoint in rows.all():
            try:
                endpoint.secret = box.rotate(endpoint.secret)
            except ValueError:
                unreadable.append(endpoint.id)
                continue
            count += 1
    return count, unreadable
