"""The report of importSchedule (bulk scheduling from a CSV upload)."""

from __future__ import annotations

from datetime import datetime

import strawberry
from strawberry import relay

from app.services.publishing.imports import ImportReport, RowResult
from schema.ids import to_global_id
from schema.types.errors import UserError


@strawberry.type(description="One row of an imported schedule: scheduled, or why not.")
class ScheduleImportRow:
    row: int = strawberry.field(
        description="The row's number as a spreadsheet shows it (the header is row 1)."
    )
    accepted: bool = strawberry.field(
        description="True when the row was scheduled (in a dry run: when it would be)."
    )
    post_id: relay.GlobalID | None = strawberry.field(
        description="The ScheduledPost made from the row (null when refused or in a dry run)."
    )
    scheduled_at: datetime | None = strawberry.field(
        description="The UTC instant the row's time was read as (null when it could not be)."
    )
    errors: list[UserError] = strawberry.field(
        description="Why the row was refused; `field` names the CSV column (null: the whole "
        "row, e.g. MALFORMED or DUPLICATE)."
    )

    @classmethod
    def of(cls, result: RowResult) -> ScheduleImportRow:
        return cls(
            row=result.row,
            accepted=result.accepted,
            post_id=to_global_id("ScheduledPost", result.post_id) if result.post_id else None,
            scheduled_at=result.scheduled_at,
            errors=UserError.many(result.errors),
        )


@strawberry.type(description="What importSchedule did with each row of the file, and totals.")
class ScheduleImport:
    dry_run: bool = strawberry.field(description="True when nothing was scheduled (dryRun).")
    total: int = strawberry.field(description="Rows in the file (blank lines not counted).")
    accepted: int = strawberry.field(description="Rows scheduled (or, in a dry run, schedulable).")
    refused: int = strawberry.field(description="Rows refused, each with its errors.")
    rows: list[ScheduleImportRow] = strawberry.field(description="Every row, in file order.")
    warnings: list[str] = strawberry.field(
        description="Remarks on the file as a whole, e.g. columns that are not imported."
    )

    @classmethod
    def of(cls, report: ImportReport) -> ScheduleImport:
        return cls(
            dry_run=report.dry_run,
            total=len(report.rows),
            accepted=report.accepted,
            refused=report.refused,
            rows=[ScheduleImportRow.of(r) for r in report.rows],
            warnings=report.warnings,
        )


@strawberry.type(description="Result of importSchedule.")
class ImportSchedulePayload:
    report: ScheduleImport | None = strawberry.field(
        description="The per-row report (null when the file as a whole was refused)."
    )
    errors: list[UserError] = strawberry.field(
        description="Why the file as a whole was refused (too large, not UTF-8, no header...)."
    )

    @classmethod
    def of(cls, report: ImportReport | None, errors: list[UserError]) -> ImportSchedulePayload:
        return cls(report=ScheduleImport.of(report) if report is not None else None, errors=errors)
