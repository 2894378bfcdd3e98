"""Schema extensions: staged validation, string inputs, error codes and masking, metrics."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterator
from typing import Any

from graphql import (
    DocumentNode,
    GraphQLError,
    GraphQLSyntaxError,
)
from strawberry.extensions import SchemaExtension
from strawberry.schema.schema import validate_document
from strawberry.types.execution import ExecutionContext

from app.errors import AppError, ErrorCode
from app.logging import get_logger, request_id_var
from schema.limits import LONG_DOCUMENT_CHARS, Limits, limit_errors
from schema.string_inputs import literal_errors, variable_errors

log = get_logger("smartcontent.graphql")

_COMPLEXITY_MARKERS = (
    "exceeds maximum operation depth",
    "aliases found",
    "tokens. Parsing aborted",
)
# Syntax errors about a string literal's content: the document is fine, the value is not
# (a raw NUL or control character, a lone surrogate, raw or as a `\\uD800` escape).
_BAD_STRING_MARKERS = ("Invalid character within String", "Invalid Unicode escape sequence")


def classify(error: GraphQLError) -> tuple[ErrorCode, bool]:
    """(code, masked) for one error. Unknown exceptions from resolvers are masked."""
    original = error.original_error
    if isinstance(original, AppError):
        return original.code, False
    if isinstance(error, GraphQLSyntaxError):
        if any(m in error.message for m in _COMPLEXITY_MARKERS):
            return ErrorCode.QUERY_TOO_COMPLEX, False
        if any(m in error.message for m in _BAD_STRING_MARKERS):
            return ErrorCode.BAD_USER_INPUT, False
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


class DocumentCache:
    """What validation found in recent documents (the last `maxsize` results).

    Keyed by the document object: the parser cache hands out one object per query text,
    and a document's own hash walks all of it (about 0.1 ms for a page query). Long
    documents are not kept. Used from the event loop only.
    """

    def __init__(self, maxsize: int) -> None:
        self.maxsize = maxsize
        self._entries: OrderedDict[tuple[int, Hashable], tuple[DocumentNode, list[GraphQLError]]]
        self._entries = OrderedDict()

    def get(
        self, document: DocumentNode, key: Hashable, compute: Callable[[], list[GraphQLError]]
    ) -> list[GraphQLError]:
        """The errors `compute` (one of several, told apart by `key`) finds in `document`;
        a copy, as OperationEdge's error policy rewrites the list it gets in place."""
        source = document.loc.source.body if document.loc else ""
        if len(source) > LONG_DOCUMENT_CHARS:
            return compute()
        slot = (id(document), key)
        entry = self._entries.get(slot)
        if entry is not None and entry[0] is document:
            self._entries.move_to_end(slot)
            return list(entry[1])
        errors = compute()
        self._entries[slot] = (document, errors)  # holding it keeps its id from reuse
        if len(self._entries) > self.maxsize:
            self._entries.popitem(last=False)
        return list(errors)


class Validation(SchemaExtension):
    """Validates an operation in stages, each keeping the next one cheap:

    1. the operation limits (schema.limits), in time linear in the document, so that no
       document within the token limit costs the other rules more than milliseconds;
    2. string inputs, literals and variables: NUL and unpaired surrogates are refused here,
       once for every operation and transport, as BAD_USER_INPUT naming the argument or
       variable (never the value);
    3. graphql-core's rules, Strawberry's and those extensions add.
    What stages 1 and 3 and the literals of stage 2 find is cached per document.
    """

    def __init__(
        self,
        *,
        execution_context: ExecutionContext | None = None,
        limits: Limits,
        cache: DocumentCache,
    ) -> None:
        self.limits = limits
        self.cache = cache

    def on_validate(self) -> Iterator[None]:
        ctx = self.execution_context
        document = ctx.graphql_document
        assert document is not None  # validation runs only after a successful parse
        schema = ctx.schema._schema
        rules = tuple(ctx.validation_rules)

        def before_variables() -> list[GraphQLError]:
            return limit_errors(schema, document, self.limits) or literal_errors(document)

        def rest() -> list[GraphQLError]:
            return validate_document(schema, document, rules)

        errors = self.cache.get(document, "limits and literals", before_variables)
        if not errors:
            errors = variable_errors(ctx.variables)
        if not errors:
            errors = self.cache.get(document, rules, rest)
        ctx.pre_execution_errors = errors
        yield


def _apply_error_policy(errors: list[GraphQLError] | None, max_errors: int) -> None:
    # In place: Strawberry builds the response from these same list objects.
    if errors:
        errors[:] = format_errors(list(errors), max_errors)


def _count(ctx: ExecutionContext, started: float) -> None:
    """The operation, its latency and its errors by code."""
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


class OperationEdge(SchemaExtension):
    """What every operation gets around it, in one extension (Strawberry wraps each
    extension's hooks anew per operation, a fixed cost per extension), in this order:

    - scope: fresh DataLoaders per operation, even when operations share a task or a
      context (outermost: they end last, whatever happens);
    - the token limit for the parser (Strawberry's MaxTokensLimiter);
    - error policy: every error gets an `extensions.code` and the request id; internal
      ones are masked;
    - metrics: the operation, its latency and its errors by the codes just assigned.
    """

    def __init__(
        self,
        *,
        execution_context: ExecutionContext | None = None,
        max_errors: int = 20,
        max_tokens: int | None = None,
    ) -> None:
        self.max_errors = max_errors
        self.max_tokens = max_tokens

    def on_operation(self) -> Iterator[None]:
        ctx = self.execution_context
        context = ctx.context
        begin = getattr(context, "begin_operation", None)
        token = begin() if begin is not None else None
        try:
            if self.max_tokens is not None:
                ctx.parse_options["max_tokens"] = self.max_tokens
            started = time.perf_counter()
            yield
            pre = ctx.pre_execution_errors
            _apply_error_policy(pre, self.max_errors)
            result_errors = getattr(ctx.result, "errors", None)
            if result_errors is not pre:
                _apply_error_policy(result_errors, self.max_errors)
            _count(ctx, started)
        finally:
            if token is not None:
                context.end_operation(token)

    # Only a result's errors: a result without any skips this hook (schema.extension_hooks).
    stream_hook_touches_errors_only = True

    def on_stream_result(self, result: Any) -> Iterator[None]:
        _apply_error_policy(getattr(result, "errors", None), self.max_errors)
        yield


def timeout_error(seconds: float) -> GraphQLError:
    return GraphQLError(
        f"Operation exceeded the execution time limit of {seconds:g} s.",
        extensions={"code": ErrorCode.TIMEOUT.value},
    )
