"""`GET /analytics/export?token=...`: the CSV behind an exportAnalytics link, streamed.

The token is the whole grant (app/services/analytics/export.py): no Authorization header
is needed, and one that is sent must be the signer's. Refusals are GraphQL-shaped error
documents (403 invalid, tampered, someone else's or the signer lost access; 410 expired;
503 with Retry-After when the database is away); the token is never logged or echoed.
"""

from __future__ import annotations

from datetime import UTC, datetime

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from app.auth import AuthenticationFailed, Principal, RequestMeta, authenticate
from app.errors import ErrorCode
from app.http.availability import database_unavailable, log_unavailable
from app.http.middleware import error_body
from app.logging import get_logger, request_id_var
from app.services.analytics import export
from app.state import AppState

log = get_logger(__name__)
PATH = export.PATH
_NO_STORE = {
    "Cache-Control": "no-store",
    "Pragma": "no-cache",
    "X-Content-Type-Options": "nosniff",
    # The link carries its token: never pass it on as a referrer.
    "Referrer-Policy": "no-referrer",
}
_CODES = {403: ErrorCode.FORBIDDEN, 410: ErrorCode.FORBIDDEN}


def _error(status: int, message: str, code: ErrorCode, **headers: str) -> Response:
    return Response(
        error_body(message, code),
        status_code=status,
        media_type="application/json",
        headers={**_NO_STORE, **headers},
    )


async def _caller(state: AppState, request: Request) -> Principal | None:
    authorization = request.headers.get("authorization")
    if not authorization:
        return None
    meta = RequestMeta(
        ip=request.client.host if request.client else None, request_id=request_id_var.get()
    )
    return await authenticate(
        state.read_session_factory, state.keys.signing_secret, authorization, meta
    )


async def download(request: Request) -> Response:
    state: AppState = request.app.state.smartcontent
    token = request.query_params.get("token", "")
    try:
        grant = export.verify(state.keys.signing_secret, token, datetime.now(UTC))
        await export.authorize(state.session_factory, grant, await _caller(state, request))
    except export.ExportRefused as exc:
        log.info("analytics_export_refused", status=exc.status, reason=exc.message)
        return _error(exc.status, exc.message, _CODES[exc.status])
    except AuthenticationFailed as exc:
        return _error(401, exc.message, ErrorCode.UNAUTHENTICATED)
    except Exception as exc:
        if database_unavailable(exc):
            log_unavailable(exc, "analytics_export")
            return _error(
                503,
                "The database is unavailable; try again shortly.",
                ErrorCode.SERVICE_UNAVAILABLE,
                **{"Retry-After": "5"},
            )
        raise
    log.info("analytics_export", workspace_id=str(grant.workspace_id))
    return StreamingResponse(
        export.csv_chunks(state.session_factory, grant),
        media_type="text/csv; charset=utf-8",
        headers={
            **_NO_STORE,
            "Content-Disposition": f'attachment; filename="{grant.filename}"',
        },
    )
