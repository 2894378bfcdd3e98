"""Bulk scheduling from a CSV upload (importSchedule): per row, with a report.

Each row is one post of one content item (or variation) to one account. Rows are judged
one by one with the refusals of schedulePost (past time, unapproved content, the
platform's rules, a disconnected account, ...); good rows are scheduled, refused rows are
reported with why, and nothing of a refused row is saved (what Buffer's and Hootsuite's
bulk uploads do: a user fixes the refused rows and uploads only those). A row that repeats
another row of the file, or a post already waiting (same content, account and time), is
refused as a duplicate, so uploading a file again schedules nothing twice. `dry_run`
judges every row the same way inside a transaction that is rolled back.

The lookups are batched: contents, variations, accounts and the posts already waiting are
each loaded in one statement for the whole file, whatever its length.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth import Principal
from app.errors import AppError, FieldError, UserErrorCode, ValidationFailed
from app.models import (
    AccountStatus,
    Content,
    ContentMedia,
    ContentVariation,
    PostTarget,
    ScheduledPost,
    SocialAccount,
    Workspace,
)
from app.permissions import Action
from app.services.publishing import checks, scheduling
from app.services.publishing.import_csv import (
    CsvFile,
    IdReader,
    ParsedRow,
    Readable,
    bare_uuid,
    parse_fields,
    read_csv,
)
from app.services.publishing.timezones import zone
from app.services.publishing.transitions import LIVE
from app.state import AppState

# schedulePost's field names -> the file's columns, for refusals raised by scheduling.
FIELD_COLUMNS = {
    "contentId": "content_id",
    "variationId": "variation_id",
    "socialAccountIds": "account_id",
    "scheduledAt": "scheduled_at",
    "timezone": "timezone",
}


@dataclass
class RowResult:
    row: int
    errors: list[FieldError] = field(default_factory=list)
    post_id: uuid.UUID | None = None
    scheduled_at: datetime | None = None

    @property
    def accepted(self) -> bool:
        return not self.errors


@dataclass(frozen=True)
class ImportReport:
    dry_run: bool
    rows: list[RowResult]
    warnings: list[str]

    @property
    def accepted(self) -> int:
        return sum(1 for r in self.rows if r.accepted)

    @property
    def refused(self) -> int:
        return len(self.rows) - self.accepted


@dataclass
class _Batch:
    """Everything the rows refer to, loaded once for the whole file."""

    contents: dict[uuid.UUID, Content]
    variations: dict[uuid.UUID, ContentVariation]
    by_platform: dict[uuid.UUID, dict[str, ContentVariation]]
    with_media: set[uuid.UUID]
    accounts: dict[uuid.UUID, SocialAccount]
    by_name: dict[str, list[SocialAccount]]
    waiting: set[tuple[uuid.UUID, uuid.UUID, datetime]]


async def _load(
    session: AsyncSession, workspace_id: uuid.UUID, parsed: Iterable[ParsedRow]
) -> _Batch:
    rows = list(parsed)
    variation_ids = {p.variation_id for p in rows if p.variation_id}
    variations = {
        v.id: v
        for v in (
            await session.scalars(
                select(ContentVariation).where(
                    ContentVariation.id.in_(list(variation_ids)),
                    ContentVariation.workspace_id == workspace_id,
                )
            )
        ).all()
    }
    content_ids = {p.content_id for p in rows if p.content_id}
    content_ids |= {v.content_id for v in variations.values()}
    # Locked as schedulePost locks its content (in id order: no deadlock between imports).
    contents = {
        c.id: c
        for c in (
            await session.scalars(
                select(Content)
                .where(Content.id.in_(list(content_ids)), Content.workspace_id == workspace_id)
                .order_by(Content.id)
                .with_for_update()
            )
        ).all()
    }
    by_platform: dict[uuid.UUID, dict[str, ContentVariation]] = {c: {} for c in contents}
    for v in (
        await session.scalars(
            select(ContentVariation).where(ContentVariation.content_id.in_(list(contents)))
        )
    ).all():
        by_platform[v.content_id][v.platform] = v
    with_media = set(
        (
            await session.scalars(
                select(ContentMedia.content_id).where(ContentMedia.content_id.in_(list(contents)))
            )
        ).all()
    )
    account_ids = {p.account_id for p in rows if p.account_id}
    names = {p.account_name for p in rows if p.account_name and not p.account_id}
    accounts: dict[uuid.UUID, SocialAccount] = {}
    by_name: dict[str, list[SocialAccount]] = {}
    if account_ids or names:
        for a in (
            await session.scalars(
                select(SocialAccount).where(
                    SocialAccount.workspace_id == workspace_id,
                    SocialAccount.id.in_(list(account_ids)) | SocialAccount.name.in_(list(names)),
                )
            )
        ).all():
            if a.id in account_ids:
                accounts[a.id] = a
            by_name.setdefault(a.name, []).append(a)
    waiting_rows = await session.execute(
        select(ScheduledPost.content_id, PostTarget.social_account_id, PostTarget.scheduled_at)
        .join(ScheduledPost, ScheduledPost.id == PostTarget.post_id)
        .where(
            PostTarget.workspace_id == workspace_id,
            ScheduledPost.content_id.in_(list(contents)),
            PostTarget.status.in_(LIVE),
        )
    )
    waiting = {(c, a, t) for c, a, t in waiting_rows.all()}
    return _Batch(contents, variations, by_platform, with_media, accounts, by_name, waiting)


def _account_of(parsed: ParsedRow, batch: _Batch, errors: list[FieldError]) -> SocialAccount | None:
    if parsed.account_id is not None:
        account = batch.accounts.get(parsed.account_id)
        if account is None:
            errors.append(
                FieldError("account_id", UserErrorCode.NOT_FOUND, "No such account here.")
            )
        return account
    assert parsed.account_name is not None
    named = batch.by_name.get(parsed.account_name, [])
    connected = [a for a in named if a.status == AccountStatus.CONNECTED.value] or named
    if not named:
        errors.append(
            FieldError(
                "account",
                UserErrorCode.NOT_FOUND,
                f"No account here is called {parsed.account_name!r}.",
            )
        )
        return None
    if len(connected) > 1:
        errors.append(
            FieldError(
                "account",
                UserErrorCode.INVALID,
                f"{len(connected)} accounts are called {parsed.account_name!r}; use account_id.",
            )
        )
        return None
    return connected[0]


def _source_of(
    parsed: ParsedRow, batch: _Batch, errors: list[FieldError]
) -> tuple[Content | None, ContentVariation | None]:
    variation = None
    content_id = parsed.content_id
    if parsed.variation_id is not None:
        variation = batch.variations.get(parsed.variation_id)
        if variation is None:
            errors.append(
                FieldError("variation_id", UserErrorCode.NOT_FOUND, "No such variation here.")
            )
            return None, None
        content_id = variation.content_id
    content = batch.contents.get(content_id) if content_id else None
    if content is None:
        errors.append(FieldError("content_id", UserErrorCode.NOT_FOUND, "No such content here."))
    elif content.deleted_at is not None:
        errors.append(FieldError("content_id", UserErrorCode.DELETED, "Restore the content first."))
        content = None
    return content, variation


def _as_columns(errors: Iterable[FieldError], account_column: str) -> list[FieldError]:
    out = []
    for e in errors:
        column = FIELD_COLUMNS.get(e.field or "", e.field)
        if column == "account_id":
            column = account_column
        out.append(FieldError(column, e.code, e.message))
    return out


async def import_schedule(
    state: AppState,
    principal: Principal,
    workspace_id: uuid.UUID,
    upload: Readable,
    *,
    timezone: str = "UTC",
    dry_run: bool = False,
    read_id: IdReader = bare_uuid,
) -> ImportReport:
    """Judge every row of the CSV and schedule the good ones (none when `dry_run`)."""
    principal.require(workspace_id, Action.CONTENT_PUBLISH)
    if zone(timezone) is None:
        raise scheduling.refuse("timezone", UserErrorCode.INVALID, f"Unknown zone {timezone!r}.")
    settings = state.settings
    sheet: CsvFile = await read_csv(
        upload,
        max_bytes=settings.schedule_import_max_bytes,
        max_rows=settings.schedule_import_max_rows,
    )
    results = [RowResult(row.number) for row in sheet.rows]
    parsed: list[ParsedRow | None] = []
    for row, result in zip(sheet.rows, results, strict=True):
        if row.problem is not None:
            result.errors.append(FieldError(None, UserErrorCode.MALFORMED, row.problem))
            parsed.append(None)
            continue
        parsed.append(parse_fields(row, read_id, timezone, result.errors))
    targets: list[PostTarget] = []
    async with state.session_factory() as session:
        transaction = await session.begin()
        try:
            workspace = await session.get(Workspace, workspace_id)
            assert workspace is not None  # the principal's role in it was checked
            good = [p for p, r in zip(parsed, results, strict=True) if p and r.accepted]
            batch = await _load(session, workspace_id, good)
            seen: set[tuple[uuid.UUID, uuid.UUID, datetime]] = set()
            for p, result, row in zip(parsed, results, sheet.rows, strict=True):
                if p is None or not result.accepted:
                    continue
                account_column = "account_id" if row.values.get("account_id") else "account"
                try:
                    targets += await _schedule_row(
                        state, session, principal, workspace, batch, p, result, seen
                    )
                except ValidationFailed as exc:
                    result.errors += _as_columns(exc.errors, account_column)
                except AppError as exc:  # e.g. a role that may not move this content
                    result.errors.append(
                        FieldError("content_id", UserErrorCode.NOT_ALLOWED, exc.message)
                    )
            if dry_run:
                await transaction.rollback()
            else:
                # Posts first, then their targets: two batched INSERTs, not two per row.
                await session.flush()
                session.add_all(targets)
                await transaction.commit()
        except BaseException:
            await transaction.rollback()
            raise
    if dry_run:
        for result in results:
            result.post_id = None
    else:
        await scheduling.announce(state, targets)
    return ImportReport(dry_run=dry_run, rows=results, warnings=sheet.warnings)


async def _schedule_row(
    state: AppState,
    session: AsyncSession,
    principal: Principal,
    workspace: Workspace,
    batch: _Batch,
    parsed: ParsedRow,
    result: RowResult,
    seen: set[tuple[uuid.UUID, uuid.UUID, datetime]],
) -> list[PostTarget]:
    errors: list[FieldError] = []
    content, variation = _source_of(parsed, batch, errors)
    account = _account_of(parsed, batch, errors)
    assert parsed.scheduled_at is not None
    try:
        when = scheduling.checked_time(parsed.scheduled_at, parsed.timezone)
    except ValidationFailed as exc:
        errors += _as_columns(exc.errors, "account_id")
        when = None
    if errors or content is None or account is None or when is None:
        result.errors += errors
        return []
    key = (content.id, account.id, when)
    if key in seen or key in batch.waiting:
        where = "an earlier row of this file" if key in seen else "a post already waiting"
        result.errors.append(
            FieldError(
                None,
                UserErrorCode.DUPLICATE,
                f"The same content, account and time as {where}.",
            )
        )
        return []
    await checks.check_targets(
        state,
        session,
        content,
        variation,
        [account],
        platform_variations=batch.by_platform.get(content.id, {}),
        content_has_media=content.id in batch.with_media,
    )
    post, targets = await scheduling.create_post(
        state,
        session,
        principal,
        workspace,
        content,
        variation,
        [account],
        when,
        parsed.timezone,
        action="importSchedule",
        defer_targets=True,
    )
    seen.add(key)
    result.post_id = post.id
    result.scheduled_at = when
    return targets
