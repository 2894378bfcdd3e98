"""The Strawberry ASGI view: typed context, JSON errors, websocket accounting."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from cross_web import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL, GRAPHQL_WS_PROTOCOL
from strawberry.types.unset import UNSET, UnsetType

from app.errors import ErrorCode
from app.http.middleware import error_body
from app.logging import request_id_var
from app.state import AppState
from schema.context import Context
from schema.schema import SmartContentSchema


class GraphQLView(GraphQL[Context, None]):
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
        )
        self.state = state

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

    async def get_context(self, request: Request | WebSocket, response: Any) -> Context:
        return Context(
            state=self.state,
            request=request,
            response=response,
            request_id=request_id_var.get() or "",
        )

    async def on_ws_connect(self, context: Context) -> UnsetType | dict[str, object] | None:
        # connectionParams arrive here; the identity layer authenticates from them.
        unset: UnsetType = UNSET
        return unset
