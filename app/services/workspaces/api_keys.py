"""API keys for partners: `sk_<prefix>_<secret>`, shown once, stored as a hash, scoped to
one workspace with one role (never owner)."""

from __future__ import annotations

import secrets
import string
import uuid
from datetime import UTC, datetime

from app.auth import API_KEY_PREFIX, Principal
from app.errors import FieldError, UserErrorCode, ValidationFailed
from app.models import ApiKey
from app.pagination import Page
from app.permissions import Action, Role
from app.security import tokens
from app.services import lookup
from app.services.audit import trail as audit
from app.state import AppState

_ALPHABET = string.ascii_lowercase + string.digits


def _new_key() -> tuple[str, str]:
    prefix = "".join(secrets.choice(_ALPHABET) for _ in range(10))
    return prefix, f"{API_KEY_PREFIX}{prefix}_{secrets.token_urlsafe(32)}"


async def create(
    state: AppState,
    principal: Principal,
    workspace_id: uuid.UUID,
    *,
    name: str,
    role: Role,
    expires_at: datetime | None,
) -> tuple[ApiKey, str]:
    actor_role = principal.require(workspace_id, Action.API_KEY_MANAGE)
    errors = []
    name = name.strip()
    if not name or len(name) > 200:
        errors.append(
            FieldError("name", UserErrorCode.INVALID, "Name must be 1 to 200 characters.")
        )
    if role == Role.OWNER or role > actor_role:
        errors.append(FieldError("role", UserErrorCode.NOT_ALLOWED, "A key cannot have this role."))
    if expires_at is not None and expires_at <= datetime.now(UTC):
        errors.append(
            FieldError("expiresAt", UserErrorCode.IN_THE_PAST, "Expiry must be in the future.")
        )
    if errors:
        raise ValidationFailed(errors)
    prefix, secret = _new_key()
    async with state.session_factory() as session, session.begin():
        key = ApiKey(
            id=uuid.uuid4(),
            workspace_id=workspace_id,
            name=name,
            role=role.name,
            prefix=prefix,
            secret_hash=tokens.token_hash(secret),
            created_by_id=principal.user_id,
            expires_at=expires_at,
        )
        session.add(key)
        audit.record(
            session,
            principal,
            "createApiKey",
            workspace_id=workspace_id,
            target_type="ApiKey",
            target_id=key.id,
            details={"name": name, "role": role.name, "prefix": prefix},
        )
        await session.flush()
        await session.refresh(key)
    return key, secret


async def revoke(state: AppState, principal: Principal, key_id: uuid.UUID) -> ApiKey:
    async with state.session_factory() as session, session.begin():
        key = await lookup.scoped_row(
            session,
            ApiKey,
            key_id,
            principal,
            Action.API_KEY_MANAGE,
            for_update=True,
            conceal=False,
        )
        if key.revoked_at is None:
            key.revoked_at = datetime.now(UTC)
        audit.record_row(session, principal, "revokeApiKey", key, {"prefix": key.prefix})
    return key


async def list_keys(
    state: AppState, principal: Principal, workspace_id: uuid.UUID, *, first: int, after: str | None
) -> Page[ApiKey]:
    return await lookup.workspace_page(
        state.session_factory,
        principal,
        ApiKey,
        workspace_id,
        Action.API_KEY_MANAGE,
        first=first,
        after=after,
    )
