"""Schema extensions: staged validation, string inputs, error codes and masking, metrics."""

from __future__ import annotations

import json
import re
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterator
from typing import Any

from graphql import (
    ArgumentNode,
    DirectiveNode,
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    GraphQLError,
    GraphQLSyntaxError,
    ListValueNode,
    ObjectValueNode,
    OperationDefinitionNode,
    SelectionSetNode,
    StringValueNode,
    ValueNode,
)
from strawberry.extensions import SchemaExtension
from strawberry.schema.schema import validate_document
from strawberry.types.execution import ExecutionContext

from app.errors import AppError, ErrorCode
from app.logging import get_logger, request_id_var
from schema.limits import LONG_DOCUMENT_CHARS, Limits, limit_errors

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


# Strings the database and UTF-8 cannot hold: NUL, and UTF-16 surrogates that are not part of
# a pair (JSON `"\\ud800"` decodes to one; a valid pair decodes to one astral code point).
_BAD_CHARACTER = re.compile(r"[\x00\ud800-\udfff]")
# A NUL as JSON writes it: `\\u0000` after an even run of backslashes (an odd one would make
# it the text "\\u0000" after an escaped backslash).
_JSON_NUL = re.compile(r"(?<!\\)(?:\\\\)*\\u0000")
_BAD_STRING_HINT = "Text may not contain NUL characters or unpaired surrogates."


def _bad_string(value: str) -> str | None:
    """What is wrong with `value` (never the value itself), or None."""
    found = _BAD_CHARACTER.search(value)
    if found is None:
        return None
    return "a NUL character" if found.group() == "\x00" else "an unpaired surrogate"


def _bad_input(where: str, what: str, **extra: str) -> GraphQLError:
    return GraphQLError(
        f"{where} contains {what}. {_BAD_STRING_HINT}",
        extensions={"code": ErrorCode.BAD_USER_INPUT.value, **extra},
    )


def _json_path(path: tuple[str | int, ...]) -> str:
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path).lstrip(".")


def _holds_bad(value: Any) -> bool:
    """Whether any string (or key) inside `value` is bad, at C speed: JSON writes a NUL as
    the escape `\\u0000` and, with ensure_ascii off, keeps surrogates as they are."""
    if isinstance(value, str):
        return _BAD_CHARACTER.search(value) is not None
    dumped = json.dumps(value, ensure_ascii=False, default=lambda _: None)
    return _JSON_NUL.search(dumped) is not None or _BAD_CHARACTER.search(dumped) is not None


def _first_bad(value: Any, path: tuple[str | int, ...]) -> tuple[str, str, bool] | None:
    """(path, what is wrong, whether in a key) of the first bad string in `value`.

    Bisects each list or object with `_holds_bad`, so a 1 MB value costs a few scans in C
    and a few dozen steps in Python, not one step per element.
    """
    while True:
        if isinstance(value, str):
            what = _bad_string(value)
            return (_json_path(path), what, False) if what else None
        if isinstance(value, dict):
            labels: list[str | int] = list(value)
            if _holds_bad(labels):
                what = next(w for k in labels if isinstance(k, str) and (w := _bad_string(k)))
                return _json_path(path), what, True
            children = list(value.values())
        elif isinstance(value, list):
            labels, children = list(range(len(value))), value
        else:
            return None
        low, high = 0, len(children)
        if high == 0 or not _holds_bad(children):
            return None
        while high - low > 1:
            middle = (low + high) // 2
            if _holds_bad(children[low:middle]):
                high = middle
            else:
                low = middle
        value, path = children[low], (*path, labels[low])


def variable_errors(variables: dict[str, Any] | None) -> list[GraphQLError]:
    """An error for each variable holding a bad string (or object key), naming the first
    one's path. A clean value costs one scan in C (see `_holds_bad`)."""
    errors: list[GraphQLError] = []
    for name, value in (variables or {}).items():
        found = _first_bad(value, (name,))
        if found is None:
            continue
        path, what, in_key = found
        where = f'A key of variable "${path}"' if in_key else f'Variable "${path}"'
        errors.append(_bad_input(where, what, variable=path))
    return errors


def _value_errors(
    value: ValueNode, path: tuple[str | int, ...], where: Callable[[str], str]
) -> Iterator[GraphQLError]:
    if isinstance(value, StringValueNode):
        what = _bad_string(value.value)
        if what is not None:
            name = _json_path(path)
            yield _bad_input(where(name), what, argument=name)
    elif isinstance(value, ListValueNode):
        for i, item in enumerate(value.values):
            yield from _value_errors(item, (*path, i), where)
    elif isinstance(value, ObjectValueNode):
        for field in value.fields:
            yield from _value_errors(field.value, (*path, field.name.value), where)


def _arguments_errors(
    arguments: tuple[ArgumentNode, ...] | None, owner: str
) -> Iterator[GraphQLError]:
    for argument in arguments or ():
        yield from _value_errors(
            argument.value, (argument.name.value,), lambda name: f'Argument "{name}" of {owner}'
        )


def _directives_errors(directives: tuple[DirectiveNode, ...] | None) -> Iterator[GraphQLError]:
    for directive in directives or ():
        yield from _arguments_errors(directive.arguments, f'directive "@{directive.name.value}"')


def _selections_errors(selection_set: SelectionSetNode | None) -> Iterator[GraphQLError]:
    if selection_set is None:
        return
    for selection in selection_set.selections:
        yield from _directives_errors(selection.directives)
        if isinstance(selection, FieldNode):
            yield from _arguments_errors(selection.arguments, f'field "{selection.name.value}"')
        yield from _selections_errors(getattr(selection, "selection_set", None))


def literal_errors(document: DocumentNode) -> list[GraphQLError]:
    """One error per bad string literal of the document: field and directive arguments and
    variable defaults, nested objects and lists included. Only an escape (`\\u0000`) can
    put a NUL in a literal (raw ones, and lone surrogates, fail to parse), so a document
    without a `\\u` is clean."""
    source = document.loc.source.body if document.loc else None
    if source is not None and "\\u" not in source:
        return []
    errors: list[GraphQLError] = []
    for definition in document.definitions:
        if isinstance(definition, OperationDefinitionNode):
            for variable in definition.variable_definitions or ():
                if variable.default_value is not None:
                    name = variable.variable.name.value
                    errors.extend(
                        _value_errors(
                            variable.default_value,
                            (name,),
                            lambda path: f'The default value of variable "${path}"',
                        )
                    )
        if isinstance(definition, OperationDefinitionNode | FragmentDefinitionNode):
            errors.extend(_directives_errors(definition.directives))
            errors.extend(_selections_errors(definition.selection_set))
    return errors


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
        a copy, as ErrorPolicy rewrites the list it gets in place."""
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
