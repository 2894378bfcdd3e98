"""Telling "the database is down" apart from a bug, so clients get 503 and a retry hint.

A request that cannot reach Postgres (refused connection, unreachable host, server shutting
down, dropped connection, exhausted pool) is not an internal error: nothing is wrong with
the request or the code, and the same request succeeds once the database is back. Such
failures answer `503` with `SERVICE_UNAVAILABLE` and `Retry-After` instead of a masked
`INTERNAL_SERVER_ERROR`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import asyncpg
from graphql import GraphQLError
from sqlalchemy import exc as sa_exc
from strawberry.extensions import SchemaExtension
from strawberry.types.execution import ExecutionContext

from app.errors import ServiceUnavailable
from app.logging import get_logger

log = get_logger(__name__)

# SQLSTATEs meaning "the server cannot serve you now" rather than "your statement is wrong":
# class 08 (connection exception), admin/crash shutdown, cannot connect now (starting up or
# shutting down), too many connections.
_UNAVAILABLE_STATES = frozenset({"57P01", "57P02", "57P03", "53300"})
_DRIVER_MODULES = ("asyncpg", "sqlalchemy")


def _raised_by_driver(error: BaseException) -> bool:
    """True if the traceback passes through the database driver or SQLAlchemy: a socket
    error from there is the database connection, not storage or another service."""
    tb = error.__traceback__
    while tb is not None:
        module = tb.tb_frame.f_globals.get("__name__", "")
        if isinstance(module, str) and module.startswith(_DRIVER_MODULES):
            return True
        tb = tb.tb_next
    return False


def _is_unavailable(error: BaseException) -> bool:
    if isinstance(error, sa_exc.TimeoutError):  # no pooled connection within pool_timeout
        return True
    if isinstance(error, sa_exc.DBAPIError) and error.connection_invalidated:
        return True
    if isinstance(error, asyncpg.PostgresError):
        state = getattr(error, "sqlstate", None) or ""
        return state.startswith("08") or state in _UNAVAILABLE_STATES
    if isinstance(error, OSError):  # refused, reset, unreachable, DNS, connect timeout
        return _raised_by_driver(error)
    return False


def database_unavailable(error: BaseException | None) -> bool:
    """Whether `error` (or what caused it) means the database cannot be reached now."""
    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if _is_unavailable(error):
            return True
        error = error.__cause__ or error.__context__
    return False


def unavailable_error(retry_after: int) -> ServiceUnavailable:
    return ServiceUnavailable(
        f"The database is unavailable; retry in {retry_after} s.",
        extra={"retryAfter": retry_after},
    )


def log_unavailable(error: BaseException, where: str) -> None:
    log.warning("database_unavailable", where=where, error=repr(error)[:300])


class _Converting(SchemaExtension):
    """Turns resolver errors caused by an unreachable database into SERVICE_UNAVAILABLE
    before the error policy masks them as internal errors."""

    def __init__(
        self, *, execution_context: ExecutionContext | None = None, retry_after: int = 5
    ) -> None:
        self.retry_after = retry_after

    def _convert(self, errors: list[GraphQLError] | None) -> None:
        if not errors:
            return
        for index, error in enumerate(errors):
            original = error.original_error
            if original is None or not database_unavailable(original):
                continue
            log_unavailable(original, "operation")
            replacement = unavailable_error(self.retry_after)
            errors[index] = GraphQLError(
                replacement.message,
                nodes=error.nodes,
                source=error.source,
                positions=error.positions,
                path=error.path,
                original_error=replacement,
            )


class DatabaseUnavailable(_Converting):
    """For an operation's one result. Must come after the error policy in the schema's
    extensions: on the way out of `on_operation` the later extensions run first."""

    def on_operation(self) -> Iterator[None]:
        yield
        ctx = self.execution_context
        pre = ctx.pre_execution_errors
        self._convert(pre)
        result_errors: Any = getattr(ctx.result, "errors", None)
        if result_errors is not pre:
            self._convert(result_errors)


class StreamedDatabaseUnavailable(_Converting):
    """For each result streamed over a websocket (subscription events, and queries sent as
    operations on a socket). Must come before the error policy in the schema's extensions:
    a streamed result is sent inside its hooks, so each one works on the way in, in order."""

    # Only a result's errors: a result without any skips this hook (schema.extension_hooks).
    stream_hook_touches_errors_only = True

    def on_stream_result(self, result: Any) -> Iterator[None]:
        self._convert(getattr(result, "errors", None))
        yield
