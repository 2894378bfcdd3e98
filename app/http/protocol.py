"""GraphQL over HTTP: what a request must look like before GraphQL sees it, and which media
type and status the answer gets (https://graphql.github.io/graphql-over-http/draft/).

Everything here is checked before authentication or execution, costs time linear in the
(already size-capped) request, and fails with a `RequestRefused` that the view turns into a
GraphQL-shaped error body.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from cross_web import HTTPException
from graphql import GraphQLError

from app.errors import ErrorCode
from app.http import jsoncodec

JSON = "application/json"
GRAPHQL_RESPONSE = "application/graphql-response+json"
CHARSET = "; charset=utf-8"

# Content types a cross-site page can POST without a CORS preflight ("simple" requests).
SIMPLE_CONTENT_TYPES = frozenset(
    {"application/x-www-form-urlencoded", "multipart/form-data", "text/plain"}
)
# Headers that a browser only sends cross-site after a preflight the CORS policy allowed.
# Any one of them, with a non-empty value, marks a request as not forgeable by a form.
PREFLIGHT_HEADERS = (
    "apollo-require-preflight",
    "x-apollo-operation-name",
    "graphql-preflight",
    "x-requested-with",
)
SUPPORTED_CONTENT_TYPES = "application/json, or multipart/form-data for uploads"


class RequestRefused(HTTPException):
    """The HTTP request cannot be a GraphQL request: answered with `status` before GraphQL."""

    def __init__(
        self,
        status_code: int,
        reason: str,
        *,
        code: ErrorCode = ErrorCode.BAD_REQUEST,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(status_code, reason)
        self.code = code
        self.headers = dict(headers or {})


def split_media_type(value: str) -> tuple[str, dict[str, str]]:
    """`"Application/JSON; charset=UTF-8"` -> `("application/json", {"charset": "UTF-8"})`."""
    media, *parameters = value.split(";")
    params: dict[str, str] = {}
    for parameter in parameters:
        name, _, raw = parameter.partition("=")
        params[name.strip().lower()] = raw.strip().strip('"')
    return media.strip().lower(), params


def negotiate(accept: str | None) -> str | None:
    """The response media type for an `Accept` header, or None if it allows neither.

    No header, `*/*` or `application/*` mean application/json (what every client reads);
    the GraphQL response type only when the client names it. Highest q wins, then the
    first listed.
    """
    if accept is None or not accept.strip():
        return JSON
    best: str | None = None
    best_q = 0.0
    for entry in accept.split(","):
        media, params = split_media_type(entry)
        try:
            q = float(params.get("q", "1"))
        except ValueError:
            continue
        if media == GRAPHQL_RESPONSE:
            candidate = GRAPHQL_RESPONSE
        elif media in (JSON, "application/*", "*/*"):
            candidate = JSON
        else:
            continue
        if q > best_q:
            best, best_q = candidate, q
    return best


def not_acceptable() -> RequestRefused:
    return RequestRefused(
        406,
        f"The Accept header allows no media type this endpoint answers with: ask for "
        f"{GRAPHQL_RESPONSE} or {JSON}.",
        code=ErrorCode.BAD_REQUEST,
    )


def method_not_allowed(message: str, allow: str) -> RequestRefused:
    return RequestRefused(405, message, headers={"Allow": allow})


def has_preflight_header(headers: Mapping[str, str]) -> bool:
    return any(headers.get(name, "").strip() for name in PREFLIGHT_HEADERS)


def check_post_content_type(headers: Mapping[str, str]) -> str:
    """The POST body's media type, refusing forgeable and unsupported ones.

    A request a cross-site form could send (a simple content type, or none) must carry a
    header that needs a CORS preflight; otherwise any web page could make its visitors'
    browsers run mutations (the CSRF prevention Apollo Server applies).
    """
    raw = headers.get("content-type")
    media, params = split_media_type(raw) if raw else ("", {})
    if media in SIMPLE_CONTENT_TYPES and not has_preflight_header(headers):
        raise RequestRefused(
            400,
            f"This request has been blocked as a potential cross-site request forgery: a "
            f"{media} request must also carry a non-empty `Apollo-Require-Preflight` (or "
            f"`X-Requested-With`, `GraphQL-Preflight`) header, which browsers send "
            f"cross-site only after a CORS preflight.",
        )
    if not media:
        raise RequestRefused(415, f"A POST needs a Content-Type header: {SUPPORTED_CONTENT_TYPES}.")
    if media == JSON:
        charset = params.get("charset", "utf-8").lower()
        if charset not in ("utf-8", "utf8"):
            raise RequestRefused(415, f"JSON bodies must be UTF-8, not {charset}.")
        return media
    if media == "multipart/form-data":
        return media
    raise RequestRefused(415, f"Unsupported Content-Type {media}: use {SUPPORTED_CONTENT_TYPES}.")


def decode_json(data: str | bytes, what: str = "The request body") -> Any:
    """Parse JSON text, with a message saying what is wrong when it is not."""
    if isinstance(data, bytes):
        try:
            data = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise RequestRefused(
                400, f"{what} is not valid UTF-8 (byte {exc.start} is not)."
            ) from None
    try:
        return jsoncodec.loads(data)
    except json.JSONDecodeError as exc:
        raise RequestRefused(
            400, f"{what} is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}."
        ) from None
    except RecursionError:
        # The C decoder recurses per nesting level: the body-size limit bounds the work,
        # and this bounds the depth before it exhausts the stack.
        raise RequestRefused(400, f"{what} is nested too deeply to be a GraphQL request.") from None


def _describe(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def request_params(data: object, what: str = "The request body") -> dict[str, Any]:
    """Check the shape of a GraphQL-over-HTTP request: one object with a string `query`,
    an optional string `operationName`, and optional objects `variables` / `extensions`."""
    if isinstance(data, list):
        raise RequestRefused(
            400,
            "Batched requests (a JSON array of operations) are not supported: send one "
            "operation per request.",
        )
    if not isinstance(data, dict):
        raise RequestRefused(
            400,
            f'{what} must be a JSON object such as {{"query": "{{ __typename }}"}}, not '
            f"{_describe(data)}.",
        )
    query = data.get("query")
    if query is None:
        raise RequestRefused(
            400, 'The request has no "query": send the GraphQL document as a string.'
        )
    if not isinstance(query, str):
        raise RequestRefused(400, f'"query" must be a string, not {_describe(query)}.')
    if not query.strip():
        raise RequestRefused(400, 'The "query" is empty: send the GraphQL document.')
    operation_name = data.get("operationName")
    if operation_name is not None and not isinstance(operation_name, str):
        raise RequestRefused(
            400, f'"operationName" must be a string or null, not {_describe(operation_name)}.'
        )
    for key in ("variables", "extensions"):
        value = data.get(key)
        if value is not None and not isinstance(value, dict):
            raise RequestRefused(400, f'"{key}" must be an object or null, not {_describe(value)}.')
    return data


# Codes of errors raised before execution starts (the request itself is at fault).
_REQUEST_ERROR_CODES = frozenset(
    {
        ErrorCode.GRAPHQL_PARSE_FAILED.value,
        ErrorCode.GRAPHQL_VALIDATION_FAILED.value,
        ErrorCode.QUERY_TOO_COMPLEX.value,
        ErrorCode.BAD_USER_INPUT.value,
        ErrorCode.BAD_REQUEST.value,
    }
)


def _code(error: GraphQLError) -> object:
    return (error.extensions or {}).get("code")


def is_request_error(data: object, errors: list[GraphQLError] | None) -> bool:
    """No data and only errors from before execution (parsing, validation, variable
    coercion, limits): per the GraphQL spec the response then has no `data` entry."""
    if data is not None or not errors:
        return False
    return all(e.path is None and _code(e) in _REQUEST_ERROR_CODES for e in errors)


def unavailable(errors: list[GraphQLError] | None) -> bool:
    return any(_code(e) == ErrorCode.SERVICE_UNAVAILABLE.value for e in errors or ())


def malformed(errors: list[GraphQLError] | None) -> bool:
    return any(_code(e) == ErrorCode.BAD_REQUEST.value for e in errors or ())
