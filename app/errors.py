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


class UserErrorCode(StrEnum):
    """Every code a mutation payload's `errors[].code` can carry (the schema's UserErrorCode
    enum is derived from this class, with the descriptions below)."""

    ACCOUNT_NOT_CONNECTED = "ACCOUNT_NOT_CONNECTED"
    ALREADY_ENABLED = "ALREADY_ENABLED"
    ALREADY_MEMBER = "ALREADY_MEMBER"
    APPROVAL_REQUIRED = "APPROVAL_REQUIRED"
    BEFORE_START = "BEFORE_START"
    BREAKS_PLATFORM_RULES = "BREAKS_PLATFORM_RULES"
    CONFLICT = "CONFLICT"
    CONTAINS_EMAIL = "CONTAINS_EMAIL"
    DELETED = "DELETED"
    DUPLICATE = "DUPLICATE"
    EMPTY = "EMPTY"
    EXISTS = "EXISTS"
    FIRST_COMMENT_UNSUPPORTED = "FIRST_COMMENT_UNSUPPORTED"
    INVALID = "INVALID"
    INVALID_CODE = "INVALID_CODE"
    INVALID_CREDENTIALS = "INVALID_CREDENTIALS"
    IMAGE_TOO_LARGE = "IMAGE_TOO_LARGE"
    INVALID_IMAGE = "INVALID_IMAGE"
    INVALID_LINK = "INVALID_LINK"
    INVALID_REFRESH_TOKEN = "INVALID_REFRESH_TOKEN"  # noqa: S105 - a code, not a secret
    INVALID_STATE = "INVALID_STATE"
    INVALID_TOKEN = "INVALID_TOKEN"  # noqa: S105
    INVALID_TRANSITION = "INVALID_TRANSITION"
    INVALID_VIDEO = "INVALID_VIDEO"
    IN_THE_PAST = "IN_THE_PAST"
    MALFORMED = "MALFORMED"
    NEGATIVE = "NEGATIVE"
    NOT_ALLOWED = "NOT_ALLOWED"
    NOT_ENABLED = "NOT_ENABLED"
    NOT_FOUND = "NOT_FOUND"
    NOT_OWNER = "NOT_OWNER"
    NOT_PENDING = "NOT_PENDING"
    NOT_UTF8 = "NOT_UTF8"
    OTHER_CONTENT = "OTHER_CONTENT"
    OUT_OF_RANGE = "OUT_OF_RANGE"
    OWNER = "OWNER"
    QUOTA_EXCEEDED = "QUOTA_EXCEEDED"
    REQUIRED = "REQUIRED"
    SAME_USER = "SAME_USER"
    SUM_NOT_ONE = "SUM_NOT_ONE"
    TAKEN = "TAKEN"
    TOO_COMMON = "TOO_COMMON"
    TOO_FAR = "TOO_FAR"
    TOO_LARGE = "TOO_LARGE"
    TOO_LONG = "TOO_LONG"
    TOO_MANY = "TOO_MANY"
    TOO_SHORT = "TOO_SHORT"
    TWO_FACTOR_REQUIRED = "TWO_FACTOR_REQUIRED"
    UNSUPPORTED_TYPE = "UNSUPPORTED_TYPE"
    WRONG_ACCOUNT = "WRONG_ACCOUNT"
    WRONG_LENGTH = "WRONG_LENGTH"


# What each code means, for the schema (a code without a description fails at import).
USER_ERROR_DESCRIPTIONS: dict[UserErrorCode, str] = {
    UserErrorCode.ACCOUNT_NOT_CONNECTED: "The social account is disconnected or needs "
    "reconnecting; connect it again first.",
    UserErrorCode.ALREADY_ENABLED: "Already switched on (e.g. two-factor authentication).",
    UserErrorCode.ALREADY_MEMBER: "The person is already a member of the workspace.",
    UserErrorCode.APPROVAL_REQUIRED: "The workspace requires approval before this step.",
    UserErrorCode.BEFORE_START: "An end date lies before its start date.",
    UserErrorCode.BREAKS_PLATFORM_RULES: "The text or media breaks the target platform's "
    "rules (length, hashtags, media); the message names the platform and the rule.",
    UserErrorCode.CONFLICT: "The object changed since you read it (expectedVersion); reload.",
    UserErrorCode.CONTAINS_EMAIL: "The password contains the account's email name.",
    UserErrorCode.DELETED: "The object is soft-deleted; restore it first.",
    UserErrorCode.DUPLICATE: "The value occurs twice where it must be unique.",
    UserErrorCode.EMPTY: "The value is empty (e.g. an uploaded file with no bytes).",
    UserErrorCode.EXISTS: "Such an object already exists (e.g. a variation per platform).",
    UserErrorCode.FIRST_COMMENT_UNSUPPORTED: "A first comment was asked for an account whose "
    "platform takes none (webhook, email).",
    UserErrorCode.INVALID: "The value is not acceptable (format or choice).",
    UserErrorCode.INVALID_CODE: "A one-time or recovery code is wrong or used.",
    UserErrorCode.INVALID_CREDENTIALS: "Email or password is incorrect.",
    UserErrorCode.IMAGE_TOO_LARGE: "The image has more pixels (or a longer side) than allowed.",
    UserErrorCode.INVALID_IMAGE: "The file is not an image we can read.",
    UserErrorCode.INVALID_LINK: "A review link is unknown, expired or revoked.",
    UserErrorCode.INVALID_REFRESH_TOKEN: "The refresh token is invalid, expired or reused.",
    UserErrorCode.INVALID_STATE: "The object's current state does not allow this.",
    UserErrorCode.INVALID_TOKEN: "A reset or invitation token is invalid or expired.",
    UserErrorCode.INVALID_TRANSITION: "The workflow does not allow this status change.",
    UserErrorCode.INVALID_VIDEO: "The file does not parse as the video it claims to be.",
    UserErrorCode.IN_THE_PAST: "The time lies in the past.",
    UserErrorCode.MALFORMED: "A line of an uploaded file does not parse (CSV quoting, more "
    "fields than the header has).",
    UserErrorCode.NEGATIVE: "The number must not be negative.",
    UserErrorCode.NOT_ALLOWED: "Your role or the object's rules do not allow this change.",
    UserErrorCode.NOT_ENABLED: "Not switched on (e.g. two-factor authentication).",
    UserErrorCode.NOT_FOUND: "A referenced object does not exist in this workspace.",
    UserErrorCode.NOT_OWNER: "Members may change only what they created.",
    UserErrorCode.NOT_PENDING: "Nothing is waiting to be confirmed.",
    UserErrorCode.NOT_UTF8: "An uploaded text file is not UTF-8 (or contains NUL bytes); "
    "save it as UTF-8.",
    UserErrorCode.OTHER_CONTENT: "The object belongs to another content item than the one "
    "named (e.g. an A/B variant of another item).",
    UserErrorCode.OUT_OF_RANGE: "The number lies outside the allowed range.",
    UserErrorCode.OWNER: "The workspace owner cannot be changed or removed this way.",
    UserErrorCode.QUOTA_EXCEEDED: "The workspace used its AI token allowance for this month "
    "(by plan); it renews on the first of the month.",
    UserErrorCode.REQUIRED: "The value is required.",
    UserErrorCode.SAME_USER: "You cannot do this to yourself.",
    UserErrorCode.SUM_NOT_ONE: "The shares must add up to 1 (e.g. an A/B test's trafficSplit).",
    UserErrorCode.TAKEN: "The value is already in use (e.g. an email address).",
    UserErrorCode.TOO_COMMON: "The password is too common or too easy to guess.",
    UserErrorCode.TOO_FAR: "The time lies too far in the future.",
    UserErrorCode.TOO_LARGE: "The file or value is larger than allowed.",
    UserErrorCode.TOO_LONG: "The text is longer than allowed.",
    UserErrorCode.TOO_MANY: "The list has more items than allowed.",
    UserErrorCode.TOO_SHORT: "The text is shorter than required.",
    UserErrorCode.TWO_FACTOR_REQUIRED: "Two-factor authentication must be enabled first.",
    UserErrorCode.UNSUPPORTED_TYPE: "The file type is not supported.",
    UserErrorCode.WRONG_ACCOUNT: "The token belongs to a different account.",
    UserErrorCode.WRONG_LENGTH: "The list has the wrong number of items (e.g. an A/B test's "
    "trafficSplit needs one share per arm, the control first).",
}


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

    def __init__(self, field: str | None, code: UserErrorCode, message: str) -> None:
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
