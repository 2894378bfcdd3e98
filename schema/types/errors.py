"""The `UserError` reported in every mutation payload."""

from __future__ import annotations

import strawberry

from app.errors import FieldError


@strawberry.type(description="A validation or business-rule failure the caller can fix.")
class UserError:
    field: str | None = strawberry.field(
        description="Input field at fault (camelCase path), or null when not tied to one field."
    )
    code: str = strawberry.field(description="Stable machine-readable code, e.g. TOO_LONG.")
    message: str = strawberry.field(description="Human-readable explanation.")

    @classmethod
    def from_field_error(cls, error: FieldError) -> UserError:
        return cls(field=error.field, code=error.code, message=error.message)

    @classmethod
    def many(cls, errors: list[FieldError]) -> list[UserError]:
        return [cls.from_field_error(e) for e in errors]
