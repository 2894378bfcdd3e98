"""Errors the API reports with a stable `extensions.code`; anything else is masked."""

from __future__ import annotations

from enum import StrEnum


class ErrorCode(StrEnum):
    UNAUTHENTICATED = "UNAUTHENTICATED"
    FORBIDDEN = "FORBIDDEN"
    NOT_FOUND = "NOT_FOUND"
    RATE_LIMITED = "RATE_LIMITED"
    BAD_USER_INPUT = "BAD_USER_INPUT"
    BAD_REQUEST = "BAD_REQUEST"
    PAYLOAD_TOO_LARGE = "PAYLOAD_TOO_LARGE"
    QUERY_TOO_COMPLEX = "QUERY_TOO_COMPLEX"
    GRAPHQL_PARSE_FAILED = "GRAPHQL_PARSE_FAILED"
    GRAPHQL_VALIDATION_FAILED = "GRAPHQL_VALIDATION_FAILED"
    TIMEOUT = "TIMEOUT"
    SERVICE_UNAVAILABLE = "SERVICE_UNAVAILABLE"
    INTERNAL_SERVER_ERROR = "INTERNAL_SERVER_ERROR"


class AppError(Exception):
    """A failure the client may see as-is: message and code are part of the API."""

    code: ErrorCode = ErrorCode.BAD_REQUEST

    def __init__(self, message: str, *, extra: dict[str, object] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.extra = extra or {}


class Unauthenticated(AppError):
    code = ErrorCode.UNAUTHENTICATED


class Forbidden(AppError):
    code = ErrorCode.FORBIDDEN


class NotFound(AppError):
    code = ErrorCode.NOT_FOUND


class RateLimited(AppError):
    code = ErrorCode.RATE_LIMITED


class BadUserInput(AppError):
    code = ErrorCode.BAD_USER_INPUT


class OperationTimeout(AppError):
    code = ErrorCode.TIMEOUT


class ServiceUnavailable(AppError):
    """A dependency (the database) cannot be reached: the request may succeed if retried."""

    code = ErrorCode.SERVICE_UNAVAILABLE


class FieldError:
    """One validation or business-rule failure, reported in a mutation payload's `errors`."""

    __slots__ = ("code", "field", "message")

    def __init__(self, field: str | None, code: str, message: str) -> None:
        self.field = field
        self.code = code
        self.message = message

    def __repr__(self) -> str:
        return f"FieldError({self.field!r}, {self.code!r}, {self.message!r})"


class ValidationFailed(Exception):
    """Raised by services for input the caller can fix; resolvers turn it into payload errors."""

    def __init__(self, errors: list[FieldError]) -> None:
        super().__init__("; ".join(e.message for e in errors))
        self.errors = errors
