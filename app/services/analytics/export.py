"""exportAnalytics: a signed, short-lived link to a CSV of the dashboard's figures, and the
rows it streams.

The link: `{api_url}/analytics/export?token=...`, the token being the grant (workspace,
who asked: user or API key, period, format, expiry) in base64url JSON and its HMAC-SHA256
under a key derived from the app's signing secret (never the secret itself, so a token
cannot be replayed as anything else the app signs). Nothing is stored: the token is the
grant. At download time the signature and expiry are checked (403 tampered, 410 expired),
then the signer's access is read again from the database and checked with
`Principal.require`, so a removed member or a revoked key cannot download with an old
link. The token never goes into logs or error messages.

The CSV: one row per (content item, platform, source) with the counters the dashboard
sums, read from dashboard_rows.grouped_rows for the period alone (so the columns' sums
are the dashboard's figures), ordered by item, streamed from a server-side cursor in
batches.
No totals row: a sum row would double any sum a spreadsheet makes of a column, and the
dashboard already shows the totals. Unknown platform counters are empty cells. Text cells
starting with = + - @ tab or CR are prefixed with ' so a spreadsheet never runs them.
"""

from __future__ import annotations

import base64
import binascii
import csv
import hashlib
import hmac
import io
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import nulls_first, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.auth import Principal, WorkspaceAccess
from app.errors import BadUserInput
from app.models import ApiKey, Content, Membership, User, Workspace
from app.models.vocabulary import ExportFormat
from app.permissions import Action, Role
from app.services.analytics import dashboard_rows as rows

PATH = "/analytics/export"
LINK_LIFETIME = timedelta(minutes=10)
BATCH = 500
# The dashboard's counters, in its order: the CSV sums to its figures.
COLUMNS = ("content_id", "title", "source", "platform", "posts", *rows.COUNTERS, "engagements")
_FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True)
class ExportLink:
    url: str
    expires_at: datetime
    filename: str


@dataclass(frozen=True)
class Grant:
    workspace_id: uuid.UUID
    subject_kind: str  # "user" | "api_key"
    subject_id: uuid.UUID
    period: rows.Period
    format: ExportFormat
    expires_at: datetime

    @property
    def filename(self) -> str:
        """Built from dates only: nothing a caller chose reaches the header."""
        since, until = self.period.since, self.period.until
        return f"analytics-{since:%Y%m%dT%H%M}-{until:%Y%m%dT%H%M}.{self.format.value.lower()}"


class ExportRefused(Exception):
    """A download refused: `status` 403 or 410, a message safe to show (no token)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _key(secret: str) -> bytes:
    return hashlib.sha256(f"analytics-export:{secret}".encode()).digest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def sign(secret: str, grant: Grant) -> str:
    body = _b64(
        orjson.dumps(
            {
                "w": str(grant.workspace_id),
                "k": grant.subject_kind,
                "s": str(grant.subject_id),
                "f": grant.period.since.isoformat(),
                "t": grant.period.until.isoformat(),
                "x": grant.format.value,
                "e": int(grant.expires_at.timestamp()),
            }
        )
    )
    mac = hmac.new(_key(secret), body.encode(), hashlib.sha256).digest()
    return f"{body}.{_b64(mac)}"


_INVALID = "This download link is invalid; export again."


def verify(secret: str, token: str, now: datetime) -> Grant:
    """The grant a token carries, or ExportRefused (403 tampered or malformed, 410 expired)."""
    body, _, mac = token.partition(".")
    try:
        expected = hmac.new(_key(secret), body.encode(), hashlib.sha256).digest()
        if not mac or not hmac.compare_digest(expected, _unb64(mac)):
            raise ExportRefused(403, _INVALID)
        claims = orjson.loads(_unb64(body))
        grant = Grant(
            workspace_id=uuid.UUID(claims["w"]),
            subject_kind=str(claims["k"]),
            subject_id=uuid.UUID(claims["s"]),
            period=rows.Period(
                datetime.fromisoformat(claims["f"]), datetime.fromisoformat(claims["t"])
            ),
            format=ExportFormat(claims["x"]),
            expires_at=datetime.fromtimestamp(int(claims["e"]), UTC),
        )
    except (ValueError, KeyError, TypeError, binascii.Error, orjson.JSONDecodeError) as exc:
        raise ExportRefused(403, _INVALID) from exc
    if grant.expires_at <= now:
        raise ExportRefused(410, "This download link has expired; export again.")
    return grant


def create_link(
    principal: Principal,
    secret: str,
    base_url: str,
    workspace_id: uuid.UUID,
    since: datetime,
    until: datetime,
    fmt: ExportFormat,
    now: datetime | None = None,
) -> ExportLink:
    """A link for a member who may read the workspace's analytics (viewer and up)."""
    principal.require(workspace_id, Action.CONTENT_READ)
    period = rows.checked_period(since, until)
    if principal.user_id is not None:
        kind, subject = "user", principal.user_id
    elif principal.api_key_id is not None:
        kind, subject = "api_key", principal.api_key_id
    else:  # pragma: no cover - require() lets only users and keys through
        raise BadUserInput("sign in to export")
    expires = (now or datetime.now(UTC)).replace(microsecond=0) + LINK_LIFETIME
    grant = Grant(workspace_id, kind, subject, period, fmt, expires)
    token = sign(secret, grant)
    return ExportLink(f"{base_url.rstrip('/')}{PATH}?token={token}", expires, grant.filename)


async def _signer(session: AsyncSession, grant: Grant) -> Principal:
    """The signer as they are now (memberships and keys change after a link is made)."""
    access: dict[uuid.UUID, WorkspaceAccess] = {}
    if grant.subject_kind == "user":
        row = (
            await session.execute(
                select(Membership.role, Workspace.require_two_factor, User.totp_enabled)
                .join(Workspace, Workspace.id == Membership.workspace_id)
                .join(User, User.id == Membership.user_id)
                .where(
                    Membership.user_id == grant.subject_id,
                    Membership.workspace_id == grant.workspace_id,
                )
            )
        ).one_or_none()
        if row is not None:
            access[grant.workspace_id] = WorkspaceAccess(Role.parse(row.role), row[1])
        return Principal(
            kind="user",
            user_id=grant.subject_id,
            two_factor_enabled=bool(row.totp_enabled) if row else False,
            access=access,
        )
    key = await session.get(ApiKey, grant.subject_id)
    now = datetime.now(UTC)
    if (
        key is not None
        and key.workspace_id == grant.workspace_id
        and key.revoked_at is None
        and (key.expires_at is None or key.expires_at > now)
    ):
        access[grant.workspace_id] = WorkspaceAccess(Role.parse(key.role), False)
    return Principal(kind="api_key", api_key_id=grant.subject_id, access=access)


async def authorize(
    factory: async_sessionmaker[AsyncSession], grant: Grant, caller: Principal | None
) -> None:
    """Refuse (403) a caller other than the signer, and a signer who lost access."""
    if caller is not None and caller.is_authenticated:
        own = caller.user_id if grant.subject_kind == "user" else caller.api_key_id
        if own != grant.subject_id:
            raise ExportRefused(403, "This download link belongs to someone else.")
    async with factory() as session:
        signer = await _signer(session, grant)
    try:
        signer.require(grant.workspace_id, Action.CONTENT_READ)
    except Exception as exc:
        raise ExportRefused(
            403, "The link's creator can no longer read this workspace's analytics."
        ) from exc


def safe_cell(value: Any) -> Any:
    """A text cell a spreadsheet shows as text, never runs as a formula."""
    if isinstance(value, str) and value.startswith(_FORMULA_PREFIXES):
        return "'" + value
    return value


def _query(grant: Grant) -> Any:
    grouped = rows.grouped_rows(grant.workspace_id, [grant.period]).subquery("g")
    g = grouped.c
    return (
        select(grouped, Content.title)
        .outerjoin(
            Content, (Content.id == g.content_id) & (Content.workspace_id == grant.workspace_id)
        )
        .order_by(g.content_id, g.source.desc(), nulls_first(g.platform))
    )


def _count(value: Any) -> int | str:
    return "" if value is None else int(value)


def _line(row: Any) -> list[Any]:
    is_platform = row.source == rows.PLATFORM
    counters = [row.likes, row.comments, row.shares]
    known = [int(c) for c in counters if c is not None]
    return [
        str(row.content_id),
        safe_cell(row.title or ""),
        row.source,
        safe_cell(row.platform or ""),
        int(row.targets) if is_platform else "",
        *(_count(getattr(row, k)) for k in rows.COUNTERS if k != "conversion_value"),
        "" if row.conversion_value is None else format(row.conversion_value.normalize(), "f"),
        sum(known) if known else "",
    ]


def _encode(lines: list[list[Any]]) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerows(lines)
    return buffer.getvalue().encode()


async def csv_chunks(
    factory: async_sessionmaker[AsyncSession], grant: Grant
) -> AsyncIterator[bytes]:
    """The header, then BATCH rows at a time from a server-side cursor (the whole file is
    never in memory). `factory` must give transactional sessions (a cursor needs one)."""
    yield _encode([list(COLUMNS)])
    async with factory() as session, session.begin():
        result = await session.stream(_query(grant).execution_options(yield_per=BATCH))
        async for batch in result.partitions(BATCH):
            yield _encode([_line(row) for row in batch])
