"""`POST /ingest/events`: first-party engagement events from partners, in batches.

Authenticated by an API key (`Authorization: Bearer sk_...`, the key's workspace is the
tenant, its role must allow recording: member or admin); rate-limited like GraphQL
operations (one batch, one operation). The body is a JSON array or NDJSON of up to
INGEST_MAX_EVENTS events, read while streaming up to INGEST_MAX_BODY_BYTES (413 beyond),
parsed and checked in a thread. The answer is
`{accepted, duplicate, refused, errors: [{index, id, reason}]}` (200), or an error
document like the GraphQL endpoint's for the request as a whole (400, 401, 403, 413, 415,
429, 503).
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import orjson
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from strawberry import relay

from app.auth import AuthenticationFailed, Principal, RequestMeta, principal_for_api_key
from app.errors import AppError, ErrorCode
from app.http.availability import database_unavailable, log_unavailable
from app.http.middleware import error_body
from app.logging import get_logger, request_id_var
from app.permissions import Action
from app.services.analytics import ingest
from app.services.analytics.events import (
    MEDIA_TYPES,
    BodyRefused,
    CheckedEvent,
    Refusal,
    check_events,
    parse_body,
    uuid_of,
)
from app.state import AppState

log = get_logger(__name__)
PATH = "/ingest/events"
_JSON = "application/json"


def decode_id(type_name: str, value: str) -> uuid.UUID | None:
    """A global ID of `type_name` (what the GraphQL API shows) or a plain UUID."""
    plain = uuid_of(type_name, value)
    if plain is not None:
        return plain
    try:
        global_id = relay.GlobalID.from_id(value)
    except Exception:  # not base64 of "Type:id"
        return None
    if global_id.type_name != type_name:
        return None
    return uuid_of(type_name, global_id.node_id)


def _error(
    status: int, message: str, code: ErrorCode, headers: dict[str, str] | None = None
) -> Response:
    return Response(
        error_body(message, code), status_code=status, media_type=_JSON, headers=headers
    )


class _Refused(Exception):
    def __init__(self, response: Response) -> None:
        self.response = response


async def _principal(state: AppState, request: Request) -> Principal:
    meta = RequestMeta(
        ip=request.client.host if request.client else None,
        request_id=request_id_var.get(),
        user_agent=request.headers.get("user-agent"),
    )
    challenge = {"WWW-Authenticate": 'Bearer realm="ingest"'}
    scheme, _, credential = (request.headers.get("authorization") or "").strip().partition(" ")
    if scheme.lower() != "bearer" or not credential.strip():
        raise _Refused(
            _error(
                401,
                "Send an API key: `Authorization: Bearer sk_...`.",
                ErrorCode.UNAUTHENTICATED,
                challenge,
            )
        )
    try:
        return await principal_for_api_key(state.read_session_factory, credential.strip(), meta)
    except AuthenticationFailed as exc:
        if exc.guess:
            decision = await state.rate_limiter.reject(meta.ip)
            if not decision.allowed:
                raise _Refused(
                    _error(
                        429,
                        decision.message(),
                        ErrorCode.RATE_LIMITED,
                        {"Retry-After": str(decision.retry_after)},
                    )
                ) from exc
        raise _Refused(_error(401, exc.message, ErrorCode.UNAUTHENTICATED, challenge)) from exc


async def _body(request: Request, limit: int) -> bytes:
    """The body, refused as soon as it is longer than `limit` (never buffered beyond)."""
    too_large = _Refused(
        _error(413, f"The body exceeds the limit of {limit} bytes.", ErrorCode.PAYLOAD_TOO_LARGE)
    )
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > limit:
        raise too_large
    chunks = bytearray()
    async for chunk in request.stream():
        chunks += chunk
        if len(chunks) > limit:
            raise too_large
    return bytes(chunks)


def _parse_and_check(
    body: bytes, media_type: str, max_events: int, max_future: timedelta
) -> tuple[list[CheckedEvent], list[Refusal]]:
    items = parse_body(body, media_type, max_events)
    return check_events(items, max_future=max_future, decode=decode_id)


async def ingest_events(request: Request) -> Response:
    state: AppState = request.app.state.smartcontent
    settings = state.settings
    media_type = (request.headers.get("content-type") or "").split(";")[0].strip().lower()
    try:
        if media_type not in MEDIA_TYPES:
            raise _Refused(
                _error(
                    415,
                    "Content-Type must be application/json (an array of events) or "
                    "application/x-ndjson (one event per line).",
                    ErrorCode.BAD_REQUEST,
                )
            )
        principal = await _principal(state, request)
        workspace_id = next(iter(principal.access))
        decision = await state.rate_limiter.hit(
            principal.rate_limit_key, principal.plan, ip=principal.meta.ip
        )
        if not decision.allowed:
            raise _Refused(
                _error(
                    429,
                    decision.message(),
                    ErrorCode.RATE_LIMITED,
                    {"Retry-After": str(decision.retry_after)},
                )
            )
        principal.require(workspace_id, Action.ENGAGEMENT_RECORD)
        body = await _body(request, settings.ingest_max_body_bytes)
        max_future = timedelta(seconds=settings.ingest_max_future_seconds)
        try:
            checked = await asyncio.to_thread(
                _parse_and_check, body, media_type, settings.ingest_max_events, max_future
            )
        except BodyRefused as exc:
            code = ErrorCode.PAYLOAD_TOO_LARGE if exc.status == 413 else ErrorCode.BAD_REQUEST
            raise _Refused(_error(exc.status, exc.message, code)) from exc
        report = await ingest.record(
            ingest.Ingest.of(state), principal, workspace_id, [], checked=checked
        )
    except _Refused as refused:
        return refused.response
    except ClientDisconnect:
        return Response(status_code=400)
    except AppError as exc:  # FORBIDDEN (the key's role)
        status = 403 if exc.code == ErrorCode.FORBIDDEN else 400
        return _error(status, exc.message, exc.code)
    except Exception as exc:
        if database_unavailable(exc):
            log_unavailable(exc, "ingest")
            retry = str(settings.unavailable_retry_after_seconds)
            return _error(
                503,
                "The service is unavailable; try again shortly.",
                ErrorCode.SERVICE_UNAVAILABLE,
                {"Retry-After": retry},
            )
        log.exception("ingest_failed", error=repr(exc))
        return _error(500, "Internal server error.", ErrorCode.INTERNAL_SERVER_ERROR)
    return Response(orjson.dumps(report.as_json()), media_type=_JSON)
