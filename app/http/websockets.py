"""Websocket protocol handlers (graphql-transport-ws and the legacy graphql-ws): each
operation re-checks the credential, the rate limit and the database's availability. A
subscription result shared by many subscribers (schema.shared_events) is encoded once: each
message is that text with the subscriber's operation id spliced in."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from starlette.websockets import WebSocket, WebSocketDisconnect
from strawberry.http.exceptions import WebSocketDisconnected
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import (
    BaseGraphQLTransportWSHandler,
)
from strawberry.subscriptions.protocols.graphql_transport_ws.types import SubscribeMessage
from strawberry.subscriptions.protocols.graphql_ws.handlers import BaseGraphQLWSHandler
from strawberry.subscriptions.protocols.graphql_ws.types import StartMessage

from app.errors import AppError, ServiceUnavailable
from app.http.admission import DatabaseDown, admit, error_result, rate_limited
from schema.context import Context
from schema.shared_events import SharedData

if TYPE_CHECKING:
    from app.http.graphql_view import GraphQLView


def _close_reason(error: ServiceUnavailable) -> str:
    return f"Database unavailable; retry in {error.extra['retryAfter']} s"[:123]


async def _refresh(view: Any, context: Context) -> AppError | None:
    """Re-check a websocket's credential (see `GraphQLView.refresh_principal`)."""
    refresh = cast("GraphQLView", view).refresh_principal
    return await refresh(context)


# Placeholders encoded in a message template: control characters, escaped by any JSON
# encoder, so their encoded form cannot occur in the rest of the template.
_ID = "\x00id\x00"
_PAYLOAD = "\x00payload\x00"
_PLAIN_KEYS = frozenset(("id", "type", "payload"))
_KEEP_IDS = 64


class SharedSender:
    """Sends a message whose payload is only a shared result's `data` as the payload's
    text (encoded once for all subscribers) spliced into a template of the message,
    byte for byte what the view's `encode_json` makes of the whole message."""

    def __init__(self, view: Any, websocket: Any) -> None:
        self.view = view
        self.ws: WebSocket | None = getattr(websocket, "ws", None)
        # Per message shape (its keys and type): prefix, text between id and payload, suffix.
        self.templates: dict[tuple[object, ...], tuple[str, str, str] | None] = {}
        # Operation ids as encoded (a socket runs a few operations at a time).
        self.ids: dict[str, str | bytes] = {}

    def _template(self, message: Any) -> tuple[str, str, str] | None:
        keys = tuple(message)
        if len(keys) == 3 and _PLAIN_KEYS.issuperset(keys):
            shape: tuple[object, ...] = (keys, message["type"])  # what both protocols send
        else:
            shape = tuple((k, None if k in ("id", "payload") else v) for k, v in message.items())
        if shape in self.templates:
            return self.templates[shape]
        encode = self.view.encode_json
        probe = {k: {"id": _ID, "payload": _PAYLOAD}.get(k, v) for k, v in message.items()}
        text, id_mark, payload_mark = encode(probe), encode(_ID), encode(_PAYLOAD)
        template = None
        if isinstance(text, str) and isinstance(id_mark, str) and isinstance(payload_mark, str):
            before, _, rest = text.partition(id_mark)
            between, _, after = rest.partition(payload_mark)
            # Exactly one of each, the id first (both protocols put it before the payload).
            if text.count(id_mark) == 1 and text.count(payload_mark) == 1 and payload_mark in rest:
                template = (before, between, after)
        self.templates[shape] = template
        return template

    async def send(self, message: Any) -> bool:
        """Whether the message was sent (False: not a shared result, send it as usual)."""
        payload = message.get("payload")
        if (
            self.ws is None
            or not isinstance(payload, dict)
            or len(payload) != 1
            or type(payload.get("data")) is not SharedData
            or not isinstance(message.get("id"), str)
        ):
            return False
        template = self._template(message)
        encode = self.view.encode_json
        body = cast(SharedData, payload["data"]).payload_text(self.view, encode)
        operation_id = self.ids.get(message["id"])
        if operation_id is None:
            if len(self.ids) >= _KEEP_IDS:
                self.ids.clear()
            operation_id = self.ids[message["id"]] = encode(message["id"])
        if template is None or body is None or not isinstance(operation_id, str):
            return False
        before, between, after = template
        try:
            await self.ws.send_text(before + operation_id + between + body + after)
        except WebSocketDisconnect as exc:
            raise WebSocketDisconnected from exc
        return True


class TransportWSHandler(BaseGraphQLTransportWSHandler[Context, None]):
    """graphql-transport-ws; before each operation starts, the credential is re-checked and
    the rate limit applied."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.shared = SharedSender(self.view, self.websocket)

    async def send_message(self, message: Any) -> None:
        if not await self.shared.send(message):
            await super().send_message(message)

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
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.shared = SharedSender(self.view, self.websocket)

    async def send_message(self, message: Any) -> None:
        if not await self.shared.send(message):
            await super().send_message(message)

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
