"""Schema extensions: error codes and masking, metrics, execution timeout."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from graphql import GraphQLError, GraphQLSyntaxError
from strawberry.extensions import SchemaExtension
from strawberry.types.execution import ExecutionContext

from app.errors import AppError, ErrorCode
from app.logging import get_logger, request_id_var

log = get_logger("smartcontent.graphql")

_COMPLEXITY_MARKERS = (
    "exceeds maximum operation depth",
    "aliases found",
    "tokens. Parsing aborted",
)


def classify(error: GraphQLError) -> tuple[ErrorCode, bool]:
    """(code, masked) for one error. Unknown exceptions from resolvers are masked."""
    original = error.original_error
    if isinstance(original, AppError):
        return original.code, False
    if isinstance(error, GraphQLSyntaxError):
        if any(m in error.message for m in _COMPLEXITY_MARKERS):
            return ErrorCode.QUERY_TOO_COMPLEX, False
        return ErrorCode.GRAPHQL_PARSE_FAILED, False
    if original is None or isinstance(original, GraphQLError):
        existing = (error.extensions or {}).get("code")
        if isinstance(existing, str) and existing in ErrorCode.__members__:
            return ErrorCode(existing), False
        if any(m in error.message for m in _COMPLEXITY_MARKERS):
            return ErrorCode.QUERY_TOO_COMPLEX, False
        if error.path is None:
            return ErrorCode.GRAPHQL_VALIDATION_FAILED, False
        return ErrorCode.BAD_USER_INPUT, False
    if (
        isinstance(original, ValueError)
        and error.path is not None
        and "GlobalID" in type(original).__name__
    ):
        return ErrorCode.BAD_USER_INPUT, False
    return ErrorCode.INTERNAL_SERVER_ERROR, True


def format_errors(errors: list[GraphQLError], max_errors: int) -> list[GraphQLError]:
    request_id = request_id_var.get()
    out: list[GraphQLError] = []
    for error in errors[:max_errors]:
        code, masked = classify(error)
        extensions: dict[str, Any] = dict(error.extensions or {})
        extensions["code"] = code.value
        if request_id:
            extensions["requestId"] = request_id
        original = error.original_error
        if isinstance(original, AppError):
            extensions.update(original.extra)
        message = error.message
        if masked:
            log.error("resolver_error", path=error.path, exc_info=original)
            message = "Internal server error. Quote the request id when reporting it."
            original = None
        out.append(
            GraphQLError(
                message,
                nodes=error.nodes,
                source=error.source,
                positions=error.positions,
                path=error.path,
                original_error=original,
                extensions=extensions,
            )
        )
    if len(errors) > max_errors:
        out.append(
            GraphQLError(
                f"Too many errors: {len(errors) - max_errors} more not shown.",
                extensions={"code": ErrorCode.QUERY_TOO_COMPLEX.value, "requestId": request_id},
            )
        )
    return out


class ErrorPolicy(SchemaExtension):
    """Gives every error an `extensions.code` and the request id; masks internal ones."""

    def __init__(
        self, *, execution_context: ExecutionContext | None = None, max_errors: int = 20
    ) -> None:
        self.max_errors = max_errors

    def _process(self, errors: list[GraphQLError] | None) -> None:
        # In place: Strawberry builds the response from these same list objects.
        if errors:
            errors[:] = format_errors(list(errors), self.max_errors)

    def on_operation(self) -> Iterator[None]:
        yield
        ctx = self.execution_context
        pre = ctx.pre_execution_errors
        self._process(pre)
        result_errors = getattr(ctx.result, "errors", None)
        if result_errors is not pre:
            self._process(result_errors)

    def on_stream_result(self, result: Any) -> Iterator[None]:
        self._process(getattr(result, "errors", None))
        yield


class OperationScope(SchemaExtension):
    """Fresh DataLoaders per operation, even when operations share a task or a context."""

    def on_operation(self) -> Iterator[None]:
        context = self.execution_context.context
        begin = getattr(context, "begin_operation", None)
        if begin is None:
            yield
            return
        token = begin()
        try:
            yield
        finally:
            context.end_operation(token)


class OperationMetrics(SchemaExtension):
    """Counts operations, their latency and their errors by code."""

    def on_operation(self) -> Iterator[None]:
        started = time.perf_counter()
        yield
        ctx = self.execution_context
        state = getattr(ctx.context, "state", None)
        if state is None:
            return
        metrics = state.metrics
        try:
            op_type = ctx.operation_type.value
        except RuntimeError:  # no document: the query did not parse
            op_type = "invalid"
        label = metrics.operation_label(ctx.operation_name)
        metrics.requests.labels(label, op_type).inc()
        if op_type != "subscription":
            metrics.latency.labels(label).observe(time.perf_counter() - started)
        errors = getattr(ctx.result, "errors", None) or ctx.pre_execution_errors or []
        for error in errors:
            metrics.errors.labels((error.extensions or {}).get("code", "UNKNOWN")).inc()


def timeout_error(seconds: float) -> GraphQLError:
    return GraphQLError(
        f"Operation exceeded the execution time limit of {seconds:g} s.",
        extensions={"code": ErrorCode.TIMEOUT.value},
    )
