"""`GET /oauth/{platform}/callback`: where a platform sends the browser back after the
admin approved (or refused) a connection begun with `startAccountConnection`.

The answer is always a redirect to PUBLIC_URL (the web app) with `oauth=connected` (and
`accounts`, how many were stored) or `oauth=error` and a short `reason` (`invalid_state`,
`denied`, `refused`, `no_accounts`, `not_allowed`, `unavailable`): never a token.
"""

from __future__ import annotations

from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from app.logging import get_logger
from app.services.publishing import connections
from app.state import AppState

log = get_logger(__name__)


def _back(state: AppState, **params: str) -> Response:
    base = state.settings.public_url.rstrip("/")
    return RedirectResponse(f"{base}/?{urlencode(params)}", status_code=303)


async def callback(request: Request) -> Response:
    state: AppState = request.app.state.smartcontent
    slug = request.path_params["platform"]
    platform = connections.platform_of(slug)
    if platform is None:
        return _back(state, oauth="error", reason="unknown_platform")
    name = platform.value.lower()
    query = request.query_params
    token = query.get("state", "")
    try:
        if query.get("error"):
            # Refused on the platform's page: use up the state, connect nothing.
            await connections.complete(state, platform, "", token)
        result = await connections.complete(state, platform, query.get("code", ""), token)
    except connections.ConnectionRefused as exc:
        log.info("oauth_callback_refused", platform=name, reason=exc.reason)
        return _back(state, oauth="error", platform=name, reason=exc.reason)
    except Exception as exc:  # Redis or Postgres away: masked, logged
        log.warning("oauth_callback_failed", platform=name, error=repr(exc))
        return _back(state, oauth="error", platform=name, reason="unavailable")
    return _back(state, oauth="connected", platform=name, accounts=str(len(result.accounts)))
