"""The Strawberry ASGI view: GraphQL over HTTP (app.http.protocol), authentication, rate
limits, typed context, GraphQL-shaped errors, 503 while the database is unreachable."""

from __future__ import annotations

import json
from datetime import timedelta
from functools import partial
from typing import Any

from cross_web import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.exceptions import ConnectionRejectionError, MissingQueryError
from strawberry.http import GraphQLHTTPResponse, GraphQLRequestData
from strawberry.schema.exceptions import CannotGetOperationTypeError, InvalidOperationTypeError
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL, GRAPHQL_WS_PROTOCOL
from strawberry.types.execution import ExecutionResult
from strawberry.types.graphql import OperationType
from strawberry.types.unset import UNSET, UnsetType

from app.auth import AuthenticationFailed, Principal, RequestMeta
from app.errors import AppError, ErrorCode, RateLimited, ServiceUnavailable
from app.http import jsoncodec, protocol
from app.http.admission import DatabaseDown, admit, error_result, rate_limited, rejected
from app.http.availability import (
    DatabaseUnavailable,
    StreamedDatabaseUnavailable,
    database_unavailable,
    log_unavailable,
    unavailable_error,
)
from app.http.checks import RequestChecks
from app.http.graphiql import page as graphiql_page
from app.http.middleware import error_body
from app.http.protocol import GRAPHQL_RESPONSE, JSON, RequestRefused
from app.http.uploads import operations_from_form, read_form
from app.http.websockets import LegacyWSHandler, TransportWSHandler
from app.logging import request_id_var
from app.services.identity.principals import PrincipalCache
from app.state import AppState
from schema.context import Context
from schema.schema import SmartContentSchema


def _meta(request: Request | WebSocket) -> RequestMeta:
    return RequestMeta(
        ip=request.client.host if request.client else None,
        request_id=request_id_var.get(),
        user_agent=request.headers.get("user-agent"),
    )


_MEDIA_TYPE = "smartcontent.media_type"


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
            # Cross-site forms cannot post these: see protocol.check_post_content_type.
            multipart_uploads_enabled=True,
        )
        self.state = state
        self.principals = PrincipalCache(
            state.read_session_factory,
            state.keys.signing_secret,
            state.hub,
            seconds=settings.principal_cache_seconds,
            offline_seconds=settings.principal_cache_offline_seconds,
        )
        self.max_errors = settings.max_errors
        self.retry_after = settings.unavailable_retry_after_seconds
        self.graphiql_html = graphiql_page(settings.graphiql_assets) if settings.graphiql else ""
        # Transport concerns that need the parsed operation. DatabaseUnavailable must see
        # errors before the error policy masks them: appended, as an operation's result is
        # handled on the way out; first, as a streamed result is handled on the way in.
        schema.extensions = (
            partial(StreamedDatabaseUnavailable, retry_after=self.retry_after),
            *schema.extensions,
            RequestChecks,
            partial(DatabaseUnavailable, retry_after=self.retry_after),
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            request = Request(scope, receive)
            media_type = protocol.negotiate(request.headers.get("accept"))
            scope.setdefault("state", {})[_MEDIA_TYPE] = media_type or JSON
            try:
                await self._check(request, media_type)
                response = await self.run(request)
            except HTTPException as exc:
                response = self._refusal(exc, media_type or JSON)
            try:
                await response(scope, receive, send)
            finally:
                await request.close()  # uploaded files' temporary storage
            return
        if scope["type"] == "websocket":
            self.state.metrics.websockets.inc()
            try:
                await self.run(WebSocket(scope, receive=receive, send=send))
            finally:
                self.state.metrics.websockets.dec()
            return
        await super().__call__(scope, receive, send)

    async def _check(self, request: Request, media_type: str | None) -> None:
        """Refuse, before authentication, what cannot be a GraphQL request here."""
        method = request.method
        if method == "GET":
            if self.should_render_graphql_ide(self.request_adapter_class(request)):
                return  # the browser page (or 404 when GraphiQL is off)
            if not self.allow_queries_via_get:
                raise protocol.method_not_allowed(
                    "GET requests are disabled on this server (ALLOW_GET_QUERIES): send the "
                    "operation as a POST with Content-Type: application/json.",
                    "POST",
                )
        elif method == "POST":
            if protocol.check_post_content_type(request.headers) == "multipart/form-data":
                await read_form(request)  # with our limits; parse_http_body reuses it
        else:
            raise protocol.method_not_allowed(
                f"{method} is not supported: send GraphQL requests as POST (or GET for "
                f"queries, when enabled).",
                "GET, POST",
            )
        if media_type is None:
            raise protocol.not_acceptable()

    def _refusal(self, exc: HTTPException, media_type: str) -> Response:
        if isinstance(exc, RequestRefused):
            code, headers = exc.code, exc.headers
        else:
            code = (
                ErrorCode.BAD_REQUEST if exc.status_code < 500 else ErrorCode.INTERNAL_SERVER_ERROR
            )
            headers = {}
        return Response(
            error_body(exc.reason, code),
            status_code=exc.status_code,
            media_type=(JSON if exc.status_code == 406 else media_type) + protocol.CHARSET,
            headers=headers,
        )

    def encode_json(self, data: object) -> str:
        # A str: Strawberry sends bytes over a websocket as binary frames, not text.
        return jsoncodec.dumps(data).decode()

    def decode_json(self, data: str | bytes) -> object:
        # Websocket messages: too deep a nesting is invalid JSON, not a crashed handler.
        try:
            return jsoncodec.loads(data)
        except RecursionError:
            raise json.JSONDecodeError("nested too deeply", "", 0) from None

    async def parse_http_body(self, request_adapter: Any) -> GraphQLRequestData:
        if request_adapter.method == "GET":
            params = dict(request_adapter.query_params)
            for key in ("variables", "extensions"):
                if params.get(key):
                    params[key] = protocol.decode_json(params[key], f'The "{key}" parameter')
            data = protocol.request_params(params, "The query string")
        elif (
            protocol.split_media_type(request_adapter.content_type or "")[0]
            == "multipart/form-data"
        ):
            form = await request_adapter.get_form_data()  # parsed by _check, cached
            data = operations_from_form(form.form)
        else:
            data = protocol.request_params(protocol.decode_json(await request_adapter.get_body()))
        return GraphQLRequestData(
            query=data["query"],
            variables=data.get("variables"),
            operation_name=data.get("operationName"),
            extensions=data.get("extensions"),
            protocol="http",
        )

    async def get_sub_response(self, request: Request | WebSocket) -> Response:
        sub_response = await super().get_sub_response(request)
        sub_response.media_type = request.scope.get("state", {}).get(_MEDIA_TYPE, JSON)
        return sub_response

    def create_response(
        self,
        response_data: GraphQLHTTPResponse | list[GraphQLHTTPResponse],
        sub_response: Response,
    ) -> Response:
        response = super().create_response(response_data, sub_response)
        response.headers["content-type"] = (sub_response.media_type or JSON) + protocol.CHARSET
        return response

    async def process_result(
        self, request: Request, result: ExecutionResult
    ) -> GraphQLHTTPResponse:
        body = await super().process_result(request, result)
        if protocol.is_request_error(result.data, result.errors):
            body.pop("data", None)  # the GraphQL spec: no data entry when nothing executed
        return body

    async def render_graphql_ide(self, request: Request) -> Response:
        return HTMLResponse(self.graphiql_html)

    async def _principal(
        self, authorization: str | None, meta: RequestMeta, *, fresh: bool = False
    ) -> Principal:
        return await self.principals.authenticate(authorization, meta, fresh=fresh)

    def _unavailable(self, error: Exception, where: str) -> ServiceUnavailable:
        log_unavailable(error, where)
        return unavailable_error(self.retry_after)

    async def refresh_principal(self, context: Context) -> AppError | None:
        """A websocket's principal is resolved at connection time; each new operation
        resolves it again from the same credential, so a revoked key, an ended session or a
        lost membership takes effect at once, as on HTTP."""
        if not context.principal.is_authenticated:
            return None
        try:
            # Through the cache (revocations reach it within milliseconds, see
            # PrincipalCache): no statement per operation for a credential seen lately.
            context.principal = await self._principal(context.authorization, context.principal.meta)
        except AuthenticationFailed as exc:
            return exc
        except Exception as exc:
            if not database_unavailable(exc):
                raise
            return self._unavailable(exc, "websocket_operation")
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
            context.auth_error = await rejected(context, exc)
        except Exception as exc:
            if not database_unavailable(exc):
                raise
            context.auth_error = self._unavailable(exc, "authentication")
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
        if isinstance(context.auth_error, ServiceUnavailable):
            sub_response.status_code = 503
            sub_response.headers["Retry-After"] = str(self.retry_after)
            return error_result(context.auth_error, self.max_errors, context.state.metrics)
        if isinstance(context.auth_error, RateLimited):
            sub_response.status_code = 429
            sub_response.headers["Retry-After"] = str(context.auth_error.extra["retryAfter"])
            return error_result(context.auth_error, self.max_errors, context.state.metrics)
        if context.auth_error is not None:
            sub_response.status_code = 401
            sub_response.headers["WWW-Authenticate"] = 'Bearer error="invalid_token"'
            return error_result(context.auth_error, self.max_errors, context.state.metrics)
        decision = await admit(context)
        for name, value in decision.headers().items():
            sub_response.headers[name] = value
        if not decision.allowed:
            sub_response.status_code = 429
            return error_result(rate_limited(decision), self.max_errors, context.state.metrics)
        result = await super().execute_operation(
            request=request,
            request_adapter=request_adapter,
            request_data=request_data,
            context=context,
            root_value=root_value,
            sub_response=sub_response,
        )
        if isinstance(result, ExecutionResult):
            self._set_status(result, sub_response)
        return result

    def _set_status(self, result: ExecutionResult, sub_response: Response) -> None:
        """503 when the database failed the operation; 400 for requests refused before
        execution with the GraphQL response media type (application/json keeps 200 for
        GraphQL errors), and for malformed requests (BAD_REQUEST) with either."""
        if protocol.unavailable(result.errors):
            sub_response.headers["Retry-After"] = str(self.retry_after)
            if result.data is None:
                sub_response.status_code = 503
        elif protocol.is_request_error(result.data, result.errors) and (
            sub_response.media_type == GRAPHQL_RESPONSE or protocol.malformed(result.errors)
        ):
            sub_response.status_code = 400

    async def execute_single(
        self,
        request: Request,
        request_adapter: Any,
        sub_response: Response,
        context: Context,
        root_value: Any,
        request_data: GraphQLRequestData,
    ) -> ExecutionResult:
        try:
            return await super().execute_single(
                request, request_adapter, sub_response, context, root_value, request_data
            )
        except HTTPException as exc:
            raise _operation_refusal(exc, request_adapter.method) from exc

    async def on_ws_connect(self, context: Context) -> UnsetType | dict[str, object] | None:
        """Authenticate from connectionParams (`authorization` / `Authorization`: "Bearer ...");
        without them the upgrade request's Authorization header (if any) counts."""
        params = context.connection_params or {}
        authorization = params.get("authorization") or params.get("Authorization")
        if isinstance(context.auth_error, ServiceUnavailable) and not authorization:
            raise DatabaseDown(context.auth_error)
        if context.auth_error is not None and not authorization:
            raise ConnectionRejectionError()
        if authorization:
            if not isinstance(authorization, str):
                raise ConnectionRejectionError()
            try:
                # From the database, once per connection: a socket opened while it is down
                # is closed with 1013 (its operations then re-check from the cache).
                context.principal = await self._principal(
                    authorization, context.principal.meta, fresh=True
                )
            except AuthenticationFailed as exc:
                await rejected(context, exc)  # counts a guess; the connection is refused
                raise ConnectionRejectionError() from exc
            except Exception as exc:
                if not database_unavailable(exc):
                    raise
                raise DatabaseDown(self._unavailable(exc, "websocket_connect")) from exc
            context.auth_error = None
            context.authorization = authorization
        unset: UnsetType = UNSET
        return unset


def _operation_refusal(exc: HTTPException, method: str) -> HTTPException:
    """Clearer messages and statuses for what Strawberry refuses once it has the document."""
    cause = exc.__cause__
    if isinstance(cause, InvalidOperationTypeError):
        if cause.operation_type == OperationType.SUBSCRIPTION:
            return RequestRefused(
                400, "Subscriptions need a websocket (graphql-transport-ws) at this URL."
            )
        if method == "GET":
            return protocol.method_not_allowed(
                "Mutations cannot be sent with GET: use POST.", "POST"
            )
    if isinstance(cause, CannotGetOperationTypeError):
        if cause.operation_name is not None:
            return RequestRefused(
                400, f'The document has no operation named "{cause.operation_name}".'
            )
        return RequestRefused(
            400,
            "Cannot tell which operation to run: send a document with one operation, or name "
            "one with operationName.",
        )
    if isinstance(cause, MissingQueryError):
        return RequestRefused(400, 'The request has no "query": send the GraphQL document.')
    return exc
