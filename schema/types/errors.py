"""The `UserError` reported in every mutation payload, and its codes."""

from __future__ import annotations

import strawberry

from app.errors import USER_ERROR_DESCRIPTIONS, FieldError, UserErrorCode
from schema.enums import domain_enum

domain_enum(
    UserErrorCode,
    description="Why a mutation refused its input: the stable, machine-readable `code` of "
    "a UserError (the same string on the wire).",
    values=USER_ERROR_DESCRIPTIONS,
)


@strawberry.type(description="A validation or business-rule failure the caller can fix.")
class UserError:
    field: str | None = strawberry.field(
        description="Input field at fault (camelCase path), or null when not tied to one field."
    )
    code: UserErrorCode = strawberry.field(description="Stable machine-readable code.")
    message: str = strawberry.field(description="Human-readable explanation.")

    @classmethod
    def from_field_error(cls, error: FieldError) -> UserError:
        return cls(field=error.field, code=error.code, message=error.message)

    @classmethod
    def many(cls, errors: list[FieldError]) -> list[UserError]:
        return [cls.from_field_error(e) for e in errors]
