"""importSchedule: bulk scheduling from a CSV upload (parse -> app.services.publishing.imports
-> the report)."""

from __future__ import annotations

import uuid
from typing import Annotated, cast

import strawberry
from strawberry import relay
from strawberry.file_uploads import Upload

from app.services.publishing import import_csv, imports
from resolvers.common import WorkspaceId, attempt, principal_of, state_of, workspace_of
from schema.context import Info
from schema.types.publishing.imports import ImportSchedulePayload

IMPORT_DESCRIPTION = (
    "Schedule many posts from a CSV file (GraphQL multipart request spec), one post of one "
    "content item to one account per row. The header row is required and matched "
    "case-insensitively: `content_id` or `variation_id` (the IDs the API shows), "
    "`account_id` or `account` (the account's name), `scheduled_at` (ISO 8601; a time "
    "without an offset is read in the row's `timezone`, else in the `timezone` argument), "
    "and optionally `timezone` (IANA). Other columns are ignored with a warning. Rows are "
    "judged one by one with schedulePost's refusals (past time, unapproved content, the "
    "platform's rules, a disconnected account, content not in this workspace): good rows "
    "are scheduled, refused rows are reported with their errors and nothing of them is "
    "saved. A row repeating an earlier row, or a post already waiting (same content, "
    "account and time), is refused as DUPLICATE. `dryRun` judges every row and schedules "
    "nothing. Files are limited to SCHEDULE_IMPORT_MAX_BYTES and SCHEDULE_IMPORT_MAX_ROWS "
    "and must be UTF-8 (a BOM is fine). Requires admin role."
)


def read_id(text: str, type_name: str) -> uuid.UUID | None:
    """A global ID of `type_name` as the API shows it, or a bare UUID."""
    try:
        return uuid.UUID(text)
    except ValueError:
        pass
    try:
        value = relay.GlobalID.from_id(text)
    except Exception:  # not base64 of "Type:id"
        return None
    if value.type_name != type_name:
        return None
    try:
        return uuid.UUID(value.node_id)
    except ValueError:
        return None


@strawberry.type
class ScheduleImportMutation:
    @strawberry.mutation(description=IMPORT_DESCRIPTION)
    async def import_schedule(
        self,
        info: Info,
        workspace_id: WorkspaceId,
        file: Annotated[Upload, strawberry.argument(description="The CSV (multipart part).")],
        timezone: Annotated[
            str,
            strawberry.argument(description="IANA zone for rows without a timezone column value."),
        ] = "UTC",
        dry_run: Annotated[
            bool,
            strawberry.argument(description="Judge every row and report; schedule nothing."),
        ] = False,
    ) -> ImportSchedulePayload:
        report, errors = await attempt(
            imports.import_schedule(
                state_of(info),
                principal_of(info),
                workspace_of(workspace_id),
                cast(import_csv.Readable, file),
                timezone=timezone,
                dry_run=dry_run,
                read_id=read_id,
            )
        )
        return ImportSchedulePayload.of(report, errors)
