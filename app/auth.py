"""Who is calling: a user (access JWT) or an API key, with its workspace roles.

Resolved once per request (per websocket connection) and passed to services, which make
every permission decision through `Principal.require`.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import bindparam, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.errors import AppError, ErrorCode, Forbidden, Unauthenticated
from app.models import ApiKey, Membership, User, Workspace
from app.permissions import Action, Role, allows
from app.security import tokens

API_KEY_PREFIX = "sk_"
API_KEY_TOUCH_INTERVAL = timedelta(minutes=1)
# An execution option: this write leaves every principal as it was (a key's last use), so
# cached principals stay (app.services.identity.principals).
PRINCIPALS_UNCHANGED = "principals_unchanged"


class TwoFactorRequired(Forbidden):
    """The workspace requires two-factor authentication and this user has not set it up."""


@dataclass(frozen=True)
class WorkspaceAccess:
    role: Role
    require_two_factor: bool


@dataclass(frozen=True)
class RequestMeta:
    """Where a request came from, for audit entries and throttling."""

    ip: str | None = None
    request_id: str | None = None
    user_agent: str | None = None


@dataclass(frozen=True)
class Principal:
    kind: str  # "user" | "api_key" | "anonymous"
    meta: RequestMeta = field(default_factory=RequestMeta)
    user_id: uuid.UUID | None = None
    api_key_id: uuid.UUID | None = None
    label: str = "anonymous"
    plan: str = "anonymous"
    two_factor_enabled: bool = False
    access: dict[uuid.UUID, WorkspaceAccess] = field(default_factory=dict)

    @property
    def is_authenticated(self) -> bool:
        return self.kind != "anonymous"

    @property
    def rate_limit_key(self) -> str:
        if self.user_id is not None:
            return f"user:{self.user_id}"
        if self.api_key_id is not None:
            return f"key:{self.api_key_id}"
        return f"ip:{self.meta.ip or 'unknown'}"

    def require_user(self) -> uuid.UUID:
        """The caller must be a signed-in user (API keys act only inside their workspace)."""
        if self.kind == "anonymous":
            raise Unauthenticated("Sign in to do this.")
        if self.user_id is None:
            raise Forbidden("API keys cannot do this; sign in as a user.")
        return self.user_id

    def role_in(self, workspace_id: uuid.UUID) -> Role | None:
        access = self.access.get(workspace_id)
        return access.role if access else None

    def require(self, workspace_id: uuid.UUID, action: Action) -> Role:
        """Allow `action` in `workspace_id` or raise UNAUTHENTICATED / FORBIDDEN."""
        if not self.is_authenticated:
            raise Unauthenticated("Sign in to do this.")
        access = self.access.get(workspace_id)
        if access is None:
            raise Forbidden("You are not a member of this workspace.")
        if access.require_two_factor and self.kind == "user" and not self.two_factor_enabled:
            raise TwoFactorRequired(
                "This workspace requires two-factor authentication; enable it first.",
                extra={"reason": "TWO_FACTOR_REQUIRED"},
            )
        if not allows(access.role, action):
            raise Forbidden(f"Your role ({access.role.name.lower()}) cannot do this.")
        return access.role


ANONYMOUS = Principal(kind="anonymous")


class AuthenticationFailed(AppError):
    code = ErrorCode.UNAUTHENTICATED

    def __init__(self, message: str, *, guess: bool = True) -> None:
        super().__init__(message)
        # False for a credential that was valid once (expired, revoked, its session ended):
        # only the others count towards an address's limit of rejected credentials.
        self.guess = guess


# One statement per request, built once: the account and every membership with its
# workspace's 2FA rule, aggregated (a request spends more on a round trip than on this).
_ACCOUNT_ACCESS = (
    select(
        User.email,
        User.plan,
        User.token_version,
        User.totp_enabled,
        func.array_remove(func.array_agg(Membership.workspace_id), None),
        func.array_remove(func.array_agg(Membership.role), None),
        func.array_remove(func.array_agg(Workspace.require_two_factor), None),
    )
    .outerjoin(Membership, Membership.user_id == User.id)
    .outerjoin(Workspace, Workspace.id == Membership.workspace_id)
    .where(User.id == bindparam("user_id"))
    .group_by(User.id)
)


async def principal_for_access_token(
    factory: async_sessionmaker[AsyncSession], secret: str, token: str, meta: RequestMeta
) -> Principal:
    return (await _access_token(factory, secret, token, meta))[0]


async def _access_token(
    factory: async_sessionmaker[AsyncSession], secret: str, token: str, meta: RequestMeta
) -> tuple[Principal, datetime]:
    try:
        claims = tokens.decode_access_token(secret, token)
    except tokens.InvalidToken as exc:
        raise AuthenticationFailed(f"Access token rejected: {exc}.", guess=not exc.expired) from exc
    async with factory() as session:
        row = (await session.execute(_ACCOUNT_ACCESS, {"user_id": claims.user_id})).one_or_none()
    if row is None or row.token_version != claims.token_version:
        raise AuthenticationFailed("Access token rejected: session ended.", guess=False)
    email, plan, _, totp_enabled, workspace_ids, roles, require_2fa = row
    principal = Principal(
        kind="user",
        meta=meta,
        user_id=claims.user_id,
        label=email,
        plan=plan,
        two_factor_enabled=totp_enabled,
        access={
            ws: WorkspaceAccess(Role.parse(role), bool(required))
            for ws, role, required in zip(workspace_ids, roles, require_2fa, strict=True)
        },
    )
    return principal, claims.expires_at


def split_api_key(secret: str) -> tuple[str, str] | None:
    """`sk_<prefix>_<secret>` -> (prefix, whole key)."""
    if not secret.startswith(API_KEY_PREFIX):
        return None
    parts = secret[len(API_KEY_PREFIX) :].split("_", 1)
    if len(parts) != 2 or not parts[0] or not parts[1]:
        return None
    return parts[0], secret


async def principal_for_api_key(
    factory: async_sessionmaker[AsyncSession], secret: str, meta: RequestMeta
) -> Principal:
    return (await _api_key(factory, secret, meta))[0]


async def _api_key(
    factory: async_sessionmaker[AsyncSession], secret: str, meta: RequestMeta
) -> tuple[Principal, datetime | None]:
    parsed = split_api_key(secret)
    if parsed is None:
        raise AuthenticationFailed("API key rejected: malformed.")
    prefix, whole = parsed
    now = datetime.now(UTC)
    async with factory() as session:
        row = (
            await session.execute(
                select(ApiKey, Workspace.plan)
                .join(Workspace, Workspace.id == ApiKey.workspace_id)
                .where(ApiKey.prefix == prefix)
            )
        ).one_or_none()
        if row is None:
            raise AuthenticationFailed("API key rejected.")
        key, plan = row
        if not tokens.constant_time_equal(key.secret_hash, tokens.token_hash(whole)):
            raise AuthenticationFailed("API key rejected.")
        if key.revoked_at is not None:
            raise AuthenticationFailed("API key rejected: revoked.", guess=False)
        if key.expires_at is not None and key.expires_at <= now:
            raise AuthenticationFailed("API key rejected: expired.", guess=False)
        if key.last_used_at is None or now - key.last_used_at > API_KEY_TOUCH_INTERVAL:
            # Throttled so a busy key does not write on every request.
            await session.execute(
                update(ApiKey).where(ApiKey.id == key.id).values(last_used_at=now),
                execution_options={PRINCIPALS_UNCHANGED: True},
            )
            await session.commit()
    principal = Principal(
        kind="api_key",
        meta=meta,
        api_key_id=key.id,
        label=f"api-key:{key.prefix}",
        plan=plan,
        access={key.workspace_id: WorkspaceAccess(Role.parse(key.role), False)},
    )
    return principal, key.expires_at


async def authenticate(
    factory: async_sessionmaker[AsyncSession],
    secret: str,
    authorization: str | None,
    meta: RequestMeta,
) -> Principal:
    """Principal for an `Authorization` value (header or websocket connectionParams)."""
    return (await resolve(factory, secret, authorization, meta))[0]


async def resolve(
    factory: async_sessionmaker[AsyncSession],
    secret: str,
    authorization: str | None,
    meta: RequestMeta,
) -> tuple[Principal, datetime | None]:
    """`authenticate`, with when the credential itself expires (None: never)."""
    if not authorization:
        return Principal(kind="anonymous", meta=meta), None
    scheme, _, credential = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not credential:
        raise AuthenticationFailed("Authorization must be `Bearer <token>`.")
    credential = credential.strip()
    if credential.startswith(API_KEY_PREFIX):
        return await _api_key(factory, credential, meta)
    return await _access_token(factory, secret, credential, meta)
