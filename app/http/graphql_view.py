"""The Strawberry ASGI view: authentication, rate limits, typed context, JSON errors."""

from __future__ import annotations

from datetime import timedelta
from typing import Any, cast

from cross_web import HTTPException
from graphql import GraphQLError
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.exceptions import ConnectionRejectionError
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL, GRAPHQL_WS_PROTOCOL
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import (
    BaseGraphQLTransportWSHandler,
)
from strawberry.subscriptions.protocols.graphql_transport_ws.types import SubscribeMessage
from strawberry.subscriptions.protocols.graphql_ws.handlers import BaseGraphQLWSHandler
from strawberry.subscriptions.protocols.graphql_ws.types import StartMessage
from strawberry.types.execution import ExecutionResult
from strawberry.types.unset import UNSET, UnsetType

from app.auth import AuthenticationFailed, Principal, RequestMeta, authenticate
from app.errors import AppError, ErrorCode, RateLimited
from app.http.middleware import error_body
from app.infra.ratelimit import Decision
from app.logging import request_id_var
from app.state import AppState
from schema.context import Context
from schema.extensions import format_errors
from schema.schema import SmartContentSchema


def _meta(request: Request | WebSocket) -> RequestMeta:
    return RequestMeta(
        ip=request.client.host if request.client else None,
        request_id=request_id_var.get(),
        user_agent=request.headers.get("user-agent"),
    )


def _rate_limited(decision: Decision) -> RateLimited:
    return RateLimited(
        f"Rate limit of {decision.limit} operations per minute reached; retry in "
        f"{decision.retry_after} s.",
        extra={"retryAfter": decision.retry_after},
    )


def _error_result(error: AppError, max_errors: int) -> ExecutionResult:
    graphql_error = GraphQLError(error.message, original_error=error)
    return ExecutionResult(data=None, errors=format_errors([graphql_error], max_errors))


async def _refresh(view: Any, context: Context) -> AuthenticationFailed | None:
    """Re-check a websocket's credential (see `GraphQLView.refresh_principal`)."""
    refresh = cast(GraphQLView, view).refresh_principal
    return await refresh(context)


async def _admit(context: Context) -> Decision:
    principal = context.principal
    # A request with a credential is also refused while its address is over the limit of
    # rejected credentials (see RateLimiter.hit).
    ip = principal.meta.ip if context.authorization else None
    return await context.state.rate_limiter.hit(principal.rate_limit_key, principal.plan, ip=ip)


async def _rejected(context: Context, failure: AuthenticationFailed) -> AppError:
    """What to answer a rejected credential: UNAUTHENTICATED, or RATE_LIMITED once its
    address has presented too many that were never valid (token or key guessing)."""
    if not failure.guess:
        return failure
    decision = await context.state.rate_limiter.reject(context.principal.meta.ip)
    return failure if decision.allowed else _rate_limited(decision)


class TransportWSHandler(BaseGraphQLTransportWSHandler[Context, None]):
    """graphql-transport-ws; before each operation starts, the credential is re-checked and
    the rate limit applied."""

    async def handle_subscribe(self, message: SubscribeMessage) -> None:
        if self.connection_acknowledged and message.get("id") not in self.operations:
            failure = await _refresh(self.view, self.context)
            if failure is not None:
                result = _error_result(failure, 1)
                await self.send_message(
                    {
                        "id": message["id"],
                        "type": "error",
                        "payload": [e.formatted for e in result.errors or []],
                    }
                )
                return
            decision = await _admit(self.context)
            if not decision.allowed:
                result = _error_result(_rate_limited(decision), 1)
                await self.send_message(
                    {
                        "id": message["id"],
                        "type": "error",
                        "payload": [e.formatted for e in result.errors or []],
                    }
                )
                return
        await super().handle_subscribe(message)


class LegacyWSHandler(BaseGraphQLWSHandler[Context, None]):
    async def handle_start(self, message: StartMessage) -> None:
        failure = await _refresh(self.view, self.context)
        if failure is not None:
            result = _error_result(failure, 1)
            await self.send_message(
                {
                    "id": message["id"],
                    "type": "error",
                    "payload": (result.errors or [])[0].formatted,
                }
            )
            return
        decision = await _admit(self.context)
        if not decision.allowed:
            result = _error_result(_rate_limited(decision), 1)
            await self.send_message(
                {
                    "id": message["id"],
                    "type": "error",
                    "payload": (result.errors or [])[0].formatted,
                }
            )
            return
        await super().handle_start(message)


class GraphQLView(GraphQL[Context, None]):
    graphql_transport_ws_handler_class = TransportWSHandler
    graphql_ws_handler_class = LegacyWSHandler

    def __init__(self, schema: SmartContentSchema, state: AppState) -> None:
        settings = state.settings
        protocols = [GRAPHQL_TRANSPORT_WS_PROTOCOL]
        if settings.legacy_graphql_ws:
            protocols.append(GRAPHQL_WS_PROTOCOL)
        super().__init__(
            schema,
            graphql_ide="graphiql" if settings.graphiql else None,
            allow_queries_via_get=settings.allow_get_queries,
            subscription_protocols=protocols,
            connection_init_wait_timeout=timedelta(
                seconds=settings.ws_connection_init_timeout_seconds
            ),
            max_subscriptions_per_connection=settings.ws_max_subscriptions,
            allowed_origins=settings.cors_origins,
            # Safe from CSRF: credentials travel only in the Authorization header, which a
            # cross-site form cannot set.
            multipart_uploads_enabled=True,
        )
        self.state = state
        self.max_errors = settings.max_errors

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            request = Request(scope, receive)
            try:
                response = await self.run(request)
            except HTTPException as exc:
                code = (
                    ErrorCode.BAD_REQUEST
                    if exc.status_code < 500
                    else ErrorCode.INTERNAL_SERVER_ERROR
                )
                response = Response(
                    error_body(exc.reason, code),
                    status_code=exc.status_code,
                    media_type="application/json",
                )
            await response(scope, receive, send)
            return
        if scope["type"] == "websocket":
            self.state.metrics.websockets.inc()
            try:
                await self.run(WebSocket(scope, receive=receive, send=send))
            finally:
                self.state.metrics.websockets.dec()
            return
        await super().__call__(scope, receive, send)

    async def _principal(self, authorization: str | None, meta: RequestMeta) -> Principal:
        return await authenticate(
            self.state.read_session_factory, self.state.keys.signing_secret, authorization, meta
        )

    async def refresh_principal(self, context: Context) -> AuthenticationFailed | None:
        """A websocket's principal is resolved at connection time; each new operation
        resolves it again from the same credential, so a revoked key, an ended session or a
        lost membership takes effect at once, as on HTTP."""
        if not context.principal.is_authenticated:
            return None
        try:
            context.principal = await self._principal(context.authorization, context.principal.meta)
        except AuthenticationFailed as exc:
            return exc
        return None

    async def get_context(self, request: Request | WebSocket, response: Any) -> Context:
        context = Context(
            state=self.state,
            request=request,
            response=response,
            request_id=request_id_var.get() or "",
        )
        meta = _meta(request)
        context.principal = Principal(kind="anonymous", meta=meta)
        context.authorization = request.headers.get("authorization")
        try:
            context.principal = await self._principal(context.authorization, meta)
        except AuthenticationFailed as exc:
            context.auth_error = await _rejected(context, exc)
        return context

    async def execute_operation(
        self,
        request: Request,
        request_adapter: Any,
        request_data: Any,
        context: Context,
        root_value: Any,
        sub_response: Response,
    ) -> Any:
        if isinstance(context.auth_error, RateLimited):
            sub_response.status_code = 429
            sub_response.headers["Retry-After"] = str(context.auth_error.extra["retryAfter"])
            return _error_result(context.auth_error, self.max_errors)
        if context.auth_error is not None:
            sub_response.status_code = 401
            sub_response.headers["WWW-Authenticate"] = 'Bearer error="invalid_token"'
            return _error_result(context.auth_error, self.max_errors)
        decision = await _admit(context)
        for name, value in decision.headers().items():
            sub_response.headers[name] = value
        if not decision.allowed:
            sub_response.status_code = 429
            return _error_result(_rate_limited(decision), self.max_errors)
        return await super().execute_operation(
            request=request,
            request_adapter=request_adapter,
            request_data=request_data,
            context=context,
            root_value=root_value,
            sub_response=sub_response,
        )

    async def on_ws_connect(self, context: Context) -> UnsetType | dict[str, object] | None:
        """Authenticate from connectionParams (`authorization` / `Authorization`: "Bearer ...");
        without them the upgrade request's Authorization header (if any) counts."""
        params = context.connection_params or {}
        authorization = params.get("authorization") or params.get("Authorization")
        if context.auth_error is not None and not authorization:
            raise ConnectionRejectionError()
        if authorization:
            if not isinstance(authorization, str):
                raise ConnectionRejectionError()
            try:
                context.principal = await self._principal(authorization, context.principal.meta)
            except AuthenticationFailed as exc:
                await _rejected(context, exc)  # counts a guess; the connection is refused
                raise ConnectionRejectionError() from exc
            context.auth_error = None
            context.authorization = authorization
        unset: UnsetType = UNSET
        return unset
