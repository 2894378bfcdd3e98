"""Reading an uploaded schedule CSV (importSchedule): bounded bytes, UTF-8 (a BOM is
allowed), no NUL bytes, the stdlib csv parser (in a thread when the file is large), a header
row matched case-insensitively, and one record per row numbered as a spreadsheet shows it
(the header is row 1). A file that cannot be read as a whole is refused with one error on
`file`; a record that does not parse is reported on its own row."""

from __future__ import annotations

import asyncio
import csv
import io
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from app.errors import FieldError, UserErrorCode, ValidationFailed
from app.services.publishing.timezones import zone

CHUNK = 64 * 1024
# Parsing a file this large or larger is moved off the event loop.
THREAD_THRESHOLD = 64 * 1024

# Accepted header names (lower case, spaces and dashes read as underscores) -> column.
COLUMNS: dict[str, str] = {
    "content_id": "content_id",
    "variation_id": "variation_id",
    "account_id": "account_id",
    "account": "account",
    "account_name": "account",
    "scheduled_at": "scheduled_at",
    "timezone": "timezone",
}


# Reads an id as written in the file (a global ID, or a bare UUID) for a type name.
IdReader = Callable[[str, str], uuid.UUID | None]


class Readable(Protocol):
    """What an upload offers (Starlette's UploadFile fits)."""

    async def read(self, size: int = -1, /) -> bytes: ...


@dataclass(frozen=True)
class CsvRow:
    number: int  # the row in a spreadsheet: the header is 1
    values: dict[str, str]  # column -> stripped text ("" when empty or absent)
    problem: str | None  # why the record could not be read (then `values` is empty)


@dataclass(frozen=True)
class CsvFile:
    columns: frozenset[str]
    rows: list[CsvRow]
    warnings: list[str]


def refuse_file(code: UserErrorCode, message: str) -> ValidationFailed:
    return ValidationFailed([FieldError("file", code, message)])


async def read_upload(upload: Readable, limit: int) -> bytes:
    """The upload's bytes; refused as soon as it passes `limit`."""
    parts: list[bytes] = []
    size = 0
    while chunk := await upload.read(CHUNK):
        size += len(chunk)
        if size > limit:
            raise refuse_file(
                UserErrorCode.TOO_LARGE, f"The file may be at most {limit:,} bytes; split it."
            )
        parts.append(chunk)
    return b"".join(parts)


def decode(data: bytes) -> str:
    if not data.strip():
        raise refuse_file(UserErrorCode.EMPTY, "The file is empty.")
    if b"\x00" in data:
        raise refuse_file(
            UserErrorCode.NOT_UTF8,
            "The file contains NUL bytes (UTF-16 or not text?); save it as CSV UTF-8.",
        )
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise refuse_file(
            UserErrorCode.NOT_UTF8,
            f"The file is not UTF-8 (byte {exc.start}, line {line}); save it as CSV UTF-8.",
        ) from None


def _delimiter(header_line: str) -> str:
    """Comma, unless the header has none and uses semicolons or tabs (spreadsheets in
    locales with a decimal comma export with semicolons)."""
    if "," in header_line:
        return ","
    for candidate in (";", "\t"):
        if candidate in header_line:
            return candidate
    return ","


def _header(names: list[str]) -> tuple[list[str | None], list[str]]:
    columns: list[str | None] = []
    warnings: list[str] = []
    seen: set[str] = set()
    for raw in names:
        name = raw.strip().lower().replace(" ", "_").replace("-", "_")
        column = COLUMNS.get(name)
        if column is None:
            columns.append(None)
            if name:
                warnings.append(f"Column {raw.strip()!r} is not imported; it was ignored.")
            continue
        if column in seen:
            raise refuse_file(UserErrorCode.DUPLICATE, f"The header names {column} twice.")
        seen.add(column)
        columns.append(column)
    if "scheduled_at" not in seen:
        raise refuse_file(UserErrorCode.REQUIRED, "The header needs a scheduled_at column.")
    if not seen & {"content_id", "variation_id"}:
        raise refuse_file(
            UserErrorCode.REQUIRED, "The header needs a content_id or variation_id column."
        )
    if not seen & {"account_id", "account"}:
        raise refuse_file(
            UserErrorCode.REQUIRED, "The header needs an account_id or account column."
        )
    return columns, warnings


def parse(text: str, max_rows: int) -> CsvFile:
    """The header and every record (blank lines are skipped but keep their number)."""
    first_line = text.split("\n", 1)[0]
    reader = csv.reader(
        io.StringIO(text, newline=""), delimiter=_delimiter(first_line), strict=True
    )
    try:
        names = next(reader)
    except (StopIteration, csv.Error):
        raise refuse_file(UserErrorCode.MALFORMED, "The header row does not parse.") from None
    columns, warnings = _header(names)
    rows: list[CsvRow] = []
    number = 1
    while True:
        number += 1
        try:
            record = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            rows.append(CsvRow(number, {}, f"The line does not parse as CSV: {exc}."))
            continue
        if not any(field.strip() for field in record):
            continue
        if len(rows) >= max_rows:
            raise refuse_file(
                UserErrorCode.TOO_MANY, f"The file may have at most {max_rows:,} rows; split it."
            )
        if len(record) > len(columns) and any(f.strip() for f in record[len(columns) :]):
            rows.append(
                CsvRow(
                    number,
                    {},
                    f"The row has {len(record)} fields; the header has {len(columns)}.",
                )
            )
            continue
        values = {c: "" for c in columns if c is not None}
        for column, field in zip(columns, record, strict=False):
            if column is not None:
                values[column] = field.strip()
        rows.append(CsvRow(number, values, None))
    if not rows:
        raise refuse_file(UserErrorCode.EMPTY, "The file has a header but no rows.")
    return CsvFile(frozenset(c for c in columns if c), rows, warnings)


async def read_csv(upload: Readable, *, max_bytes: int, max_rows: int) -> CsvFile:
    data = await read_upload(upload, max_bytes)
    if len(data) < THREAD_THRESHOLD:
        return parse(decode(data), max_rows)
    return await asyncio.to_thread(lambda: parse(decode(data), max_rows))


def bare_uuid(text: str, _type_name: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(text)
    except ValueError:
        return None


@dataclass
class ParsedRow:
    """One row's ids and time, read from the text (nothing looked up yet)."""

    content_id: uuid.UUID | None = None
    variation_id: uuid.UUID | None = None
    account_id: uuid.UUID | None = None
    account_name: str | None = None
    scheduled_at: datetime | None = None
    timezone: str = "UTC"


def parse_fields(
    row: CsvRow, read_id: IdReader, default_timezone: str, err: list[FieldError]
) -> ParsedRow:
    """A row's ids and time read from its text; what cannot be read is added to `err`."""
    out = ParsedRow()
    values = row.values

    def ident(column: str, type_name: str) -> uuid.UUID | None:
        text = values.get(column, "")
        if not text:
            return None
        value = read_id(text, type_name)
        if value is None:
            err.append(FieldError(column, UserErrorCode.INVALID, f"Not a {type_name} id."))
        return value

    out.content_id = ident("content_id", "Content")
    out.variation_id = ident("variation_id", "ContentVariation")
    given = [c for c in ("content_id", "variation_id") if values.get(c)]
    if len(given) != 1:
        err.append(
            FieldError(
                "content_id",
                UserErrorCode.REQUIRED,
                "Give a content_id or a variation_id (one of them).",
            )
        )
    out.account_id = ident("account_id", "SocialAccount")
    out.account_name = values.get("account") or None
    if not values.get("account_id") and out.account_name is None:
        err.append(FieldError("account_id", UserErrorCode.REQUIRED, "Give an account."))
    out.timezone = values.get("timezone") or default_timezone
    if zone(out.timezone) is None:
        err.append(
            FieldError("timezone", UserErrorCode.INVALID, f"Unknown time zone {out.timezone!r}.")
        )
    text = values.get("scheduled_at", "")
    if not text:
        err.append(FieldError("scheduled_at", UserErrorCode.REQUIRED, "Give a time."))
    else:
        try:
            out.scheduled_at = datetime.fromisoformat(text)
        except ValueError:
            err.append(
                FieldError(
                    "scheduled_at",
                    UserErrorCode.INVALID,
                    f"{text[:40]!r} is not an ISO 8601 time (2026-12-24T09:00 or with an offset).",
                )
            )
    return out
