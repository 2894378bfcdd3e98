"""Operations endpoints: liveness, readiness, Prometheus metrics and local media downloads."""

from __future__ import annotations

import asyncio

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy.exc import SQLAlchemyError
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response

from app import __version__
from app.infra.storage import LocalStorage, serving_headers
from app.jobs import store as jobs
from app.logging import get_logger
from app.services.content import media as media_service
from app.services.ops import health
from app.state import AppState

log = get_logger(__name__)


def _state(request: Request) -> AppState:
    state: AppState = request.app.state.smartcontent
    return state


async def healthz(request: Request) -> Response:
    """Alive: the process answers. Says nothing about dependencies (that is /readyz)."""
    return JSONResponse({"status": "ok", "version": __version__})


async def readyz(request: Request) -> Response:
    state = _state(request)
    report = await health.check(state.read_session_factory, state.redis)
    body = {
        "status": "ok" if report.ok else "unavailable",
        "database": "ok" if report.database else "unavailable",
        "redis": "ok" if report.redis else "unavailable",
        "failing": report.failing,
    }
    return JSONResponse(body, status_code=200 if report.ok else 503)


async def metrics(request: Request) -> Response:
    state = _state(request)
    try:
        async with asyncio.timeout(2), state.session_factory() as session:
            state.metrics.job_counts = await jobs.counts_by_status(session)
    except Exception as exc:
        log.warning("metrics_job_counts_failed", error=repr(exc))
    return Response(generate_latest(state.metrics.registry), media_type=CONTENT_TYPE_LATEST)


async def media(request: Request) -> Response:
    """Local-storage downloads, through URLs signed by `LocalStorage.url`.

    Served with the type sniffed at upload (from the asset's row, never guessed from the
    key), `nosniff`, a sandbox CSP, and as an attachment unless it is a raster image or a
    verified video: a stored file can never run as a page on the API's origin."""
    state = _state(request)
    storage = state.storage
    key = request.path_params["key"]
    if not isinstance(storage, LocalStorage):
        return JSONResponse({"error": "not found"}, status_code=404)
    try:
        expires = int(request.query_params.get("expires", "0"))
    except ValueError:
        expires = 0
    if not storage.verify(key, expires, request.query_params.get("signature", "")):
        return JSONResponse({"error": "link expired or invalid"}, status_code=403)
    try:
        path = storage.path_of(key)
    except ValueError:
        return JSONResponse({"error": "not found"}, status_code=404)
    try:
        content_type = await media_service.served_type(state, key)
    except (SQLAlchemyError, OSError) as exc:
        log.warning("media_lookup_failed", error=repr(exc))
        return JSONResponse(
            {"error": "temporarily unavailable"}, status_code=503, headers={"Retry-After": "5"}
        )
    if content_type is None or not path.is_file():
        return JSONResponse({"error": "not found"}, status_code=404)
    headers = serving_headers(content_type)
    return FileResponse(path, media_type=headers.pop("Content-Type"), headers=headers)
