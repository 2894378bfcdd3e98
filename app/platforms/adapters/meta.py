"""What Meta's Graph APIs share (Facebook Pages, Instagram, Threads): the error body
`{"error": {"message", "type", "code", "error_subcode", "is_transient", "fbtrace_id"}}`,
whose `code` decides the kind more than the HTTP status does, and rate limits reported in
usage headers rather than `Retry-After`. Instagram and Threads also share the two-step
publishing flow (`Containers`): create a container, wait until Meta has processed it, then
publish it; only the publish step makes anything visible.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

import httpx

from app.platforms.adapters.base import Api, json_or_empty, poll_until, retry_after_header
from app.platforms.publishing import (
    AuthError,
    Credentials,
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


class GraphCall(Protocol):
    """An adapter's Graph request: fields go in the form (POST) or the query (else)."""

    def __call__(
        self, method: str, path: str, credentials: Credentials, *, creates: bool, **fields: str
    ) -> Awaitable[dict[str, object]]: ...


@dataclass(frozen=True)
class Containers:
    """Meta's container-then-publish flow, as Instagram and Threads speak it.

    POST /{user}/{create_edge} makes a container (invisible); GET /{container}?fields=
    `status_fields` until `status_key` is FINISHED (ERROR: refused for good, EXPIRED: make
    a new one); POST /{user}/{publish_edge} with `creation_id` makes it public, so only that
    request can leave the outcome unknown (`creates=True`).
    """

    call: GraphCall
    name: str  # "Instagram", "Threads": the start of every message
    create_edge: str
    publish_edge: str
    status_fields: str
    status_key: str
    error_key: str
    poll_seconds: float
    poll_attempts: int

    async def create(self, credentials: Credentials, **fields: str) -> str:
        """A new container's id, once Meta has processed it."""
        body = await self.call(
            "POST",
            f"{credentials.external_id}/{self.create_edge}",
            credentials,
            creates=False,
            **fields,
        )
        container = str(body.get("id") or "")
        if not container:
            raise PermanentError(f"{self.name} answered without a container id")
        await self.wait(container, credentials)
        return container

    async def wait(self, container: str, credentials: Credentials) -> None:
        async def finished() -> bool:
            state = await self.call(
                "GET", container, credentials, creates=False, fields=self.status_fields
            )
            status = state.get(self.status_key)
            if status == "ERROR":
                reason = str(state.get(self.error_key) or "")[:200]
                raise PermanentError(f"{self.name} could not process the post: {reason}")
            if status == "EXPIRED":
                raise RetryableError(f"{self.name}'s container expired before publishing")
            return status in ("FINISHED", "PUBLISHED")

        await poll_until(
            finished,
            interval=self.poll_seconds,
            attempts=self.poll_attempts,
            what=f"{self.name} media",
        )

    async def publish(self, container: str, credentials: Credentials) -> str:
        """Make the container public; the new post's id."""
        body = await self.call(
            "POST",
            f"{credentials.external_id}/{self.publish_edge}",
            credentials,
            creates=True,
            creation_id=container,
        )
        media_id = str(body.get("id") or "")
        if not media_id:
            raise PermanentError(f"{self.name} answered without the post's id")
        return media_id
