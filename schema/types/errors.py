"""The `UserError` reported in every mutation payload, and its codes."""

from __future__ import annotations

import strawberry

from app.errors import FieldError
from schema.types.vocabulary import UserErrorCode


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


@strawberry.type(description="Result of a mutation with nothing else to return.")
class SuccessPayload:
    success: bool = strawberry.field(description="True when the change was made.")
    errors: list[UserError] = strawberry.field(description="Why it failed, if it did.")

    @classmethod
    def of(cls, errors: list[UserError]) -> SuccessPayload:
        return cls(success=not errors, errors=errors)
