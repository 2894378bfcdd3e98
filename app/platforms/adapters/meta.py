"""What Meta's Graph APIs share (Facebook Pages, Instagram, Threads): the error body
`{"error": {"message", "type", "code", "error_subcode", "is_transient", "fbtrace_id"}}`,
whose `code` decides the kind more than the HTTP status does, and rate limits reported in
usage headers rather than `Retry-After`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx

from app.platforms.adapters.base import Api, json_or_empty, retry_after_header
from app.platforms.publishing import (
    AuthError,
    PermanentError,
    PublishError,
    RetryableError,
)

# https://developers.facebook.com/docs/graph-api/guides/error-handling
AUTH_CODES = frozenset({102, 190, 10}) | frozenset(range(200, 300))
# 9: Instagram's publishing limit (posts per 24 hours).
RATE_LIMIT_CODES = frozenset({4, 9, 17, 32, 613}) | frozenset(range(80001, 80015))
TRANSIENT_CODES = frozenset({1, 2})


def _error(response: httpx.Response) -> dict[str, Any]:
    body = json_or_empty(response)
    error = body.get("error") if isinstance(body, dict) else None
    return error if isinstance(error, dict) else {}


def error_text(response: httpx.Response) -> str:
    error = _error(response)
    message = error.get("error_user_msg") or error.get("message")
    if isinstance(message, str) and message:
        code = error.get("code")
        return f"{message} (code {code})" if code is not None else message
    return response.reason_phrase or f"HTTP {response.status_code}"


def retry_after(response: httpx.Response) -> float | None:
    """Seconds until access returns: `Retry-After`, else the largest
    `estimated_time_to_regain_access` (minutes) in the business use case usage header."""
    plain = retry_after_header(response.headers)
    if plain is not None:
        return plain
    raw = response.headers.get("x-business-use-case-usage")
    if not raw:
        return None
    try:
        usage = json.loads(raw)
    except ValueError:
        return None
    minutes = [
        float(entry.get("estimated_time_to_regain_access") or 0)
        for entries in (usage.values() if isinstance(usage, dict) else [])
        if isinstance(entries, list)
        for entry in entries
        if isinstance(entry, dict)
    ]
    return max(minutes) * 60 if minutes and max(minutes) > 0 else None


def classify(name: str) -> Callable[[httpx.Response, bool, str], PublishError | None]:
    def read(response: httpx.Response, creates: bool, text: str) -> PublishError | None:
        error = _error(response)
        code = error.get("code")
        status = response.status_code
        if not isinstance(code, int):
            return None
        if code in RATE_LIMIT_CODES:
            return RetryableError(
                f"{name} rate limit: {text}", status=status, retry_after=retry_after(response)
            )
        if code in AUTH_CODES:
            return AuthError(f"{name} refused the account's token: {text}", status=status)
        if error.get("is_transient") or code in TRANSIENT_CODES:
            return RetryableError(f"{name} is unavailable: {text}", status=status)
        if status < 500:
            return PermanentError(f"{name} refused the request: {text}", status=status)
        return None

    return read


def graph_api(http: httpx.AsyncClient, name: str) -> Api:
    return Api(http, name, error_text=error_text, retry_after=retry_after, classify=classify(name))
