"""Websocket protocol handlers (graphql-transport-ws and the legacy graphql-ws): each
operation re-checks the credential, the rate limit and the database's availability."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import (
    BaseGraphQLTransportWSHandler,
)
from strawberry.subscriptions.protocols.graphql_transport_ws.types import SubscribeMessage
from strawberry.subscriptions.protocols.graphql_ws.handlers import BaseGraphQLWSHandler
from strawberry.subscriptions.protocols.graphql_ws.types import StartMessage

from app.errors import AppError, ServiceUnavailable
from app.http.admission import DatabaseDown, admit, error_result, rate_limited
from schema.context import Context

if TYPE_CHECKING:
    from app.http.graphql_view import GraphQLView


def _close_reason(error: ServiceUnavailable) -> str:
    return f"Database unavailable; retry in {error.extra['retryAfter']} s"[:123]


async def _refresh(view: Any, context: Context) -> AppError | None:
    """Re-check a websocket's credential (see `GraphQLView.refresh_principal`)."""
    refresh = cast("GraphQLView", view).refresh_principal
    return await refresh(context)


class TransportWSHandler(BaseGraphQLTransportWSHandler[Context, None]):
    """graphql-transport-ws; before each operation starts, the credential is re-checked and
    the rate limit applied."""

    async def handle_connection_init(self, message: Any) -> None:
        try:
            await super().handle_connection_init(message)
        except DatabaseDown as exc:
            await self.websocket.close(code=1013, reason=_close_reason(exc.error))

    async def handle_subscribe(self, message: SubscribeMessage) -> None:
        if self.connection_acknowledged and message.get("id") not in self.operations:
            failure = await _refresh(self.view, self.context)
            if failure is not None:
                result = error_result(failure, 1, self.context.state.metrics)
                await self.send_message(
                    {
                        "id": message["id"],
                        "type": "error",
                        "payload": [e.formatted for e in result.errors or []],
                    }
                )
                return
            decision = await admit(self.context)
            if not decision.allowed:
                result = error_result(rate_limited(decision), 1, self.context.state.metrics)
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
    async def handle_connection_init(self, message: Any) -> None:
        try:
            await super().handle_connection_init(message)
        except DatabaseDown as exc:
            result = error_result(exc.error, 1, self.context.state.metrics)
            payload = (result.errors or [])[0].formatted
            await self.send_message(cast(Any, {"type": "connection_error", "payload": payload}))
            await self.websocket.close(code=1013, reason=_close_reason(exc.error))

    async def handle_start(self, message: StartMessage) -> None:
        failure = await _refresh(self.view, self.context)
        if failure is not None:
            result = error_result(failure, 1, self.context.state.metrics)
            await self.send_message(
                {
                    "id": message["id"],
                    "type": "error",
                    "payload": (result.errors or [])[0].formatted,
                }
            )
            return
        decision = await admit(self.context)
        if not decision.allowed:
            result = error_result(rate_limited(decision), 1, self.context.state.metrics)
            await self.send_message(
                {
                    "id": message["id"],
                    "type": "error",
                    "payload": (result.errors or [])[0].formatted,
                }
            )
            return
        await super().handle_start(message)
