"""Query depth limit that also counts introspection fields.

Strawberry's QueryDepthLimiter skips everything below `__schema`/`__type`, which leaves the
classic deeply nested introspection query unbounded. This rule counts every field.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    ValidationContext,
    ValidationRule,
)
from strawberry.extensions import ParserCache


def _depth(
    selection_set: SelectionSetNode | None,
    fragments: dict[str, FragmentDefinitionNode],
    seen: frozenset[str],
    limit: int,
) -> int:
    if selection_set is None:
        return 0
    deepest = 0
    for selection in selection_set.selections:
        if isinstance(selection, FieldNode):
            depth = (
                1 + _depth(selection.selection_set, fragments, seen, limit)
                if selection.selection_set
                else 0
            )
        elif isinstance(selection, InlineFragmentNode):
            depth = _depth(selection.selection_set, fragments, seen, limit)
        elif isinstance(selection, FragmentSpreadNode):
            name = selection.name.value
            fragment = fragments.get(name)
            if fragment is None or name in seen:
                continue  # unknown or cyclic: other validation rules report it
            depth = _depth(fragment.selection_set, fragments, seen | {name}, limit)
        else:
            continue
        deepest = max(deepest, depth)
        if deepest > limit:
            break  # no need to walk a hostile document further
    return deepest


def depth_rule(max_depth: int) -> type[ValidationRule]:
    class MaxDepthRule(ValidationRule):
        def enter_operation_definition(self, node: OperationDefinitionNode, *_args: Any) -> None:
            context: ValidationContext = self.context
            fragments = {
                d.name.value: d
                for d in context.document.definitions
                if isinstance(d, FragmentDefinitionNode)
            }
            depth = _depth(node.selection_set, fragments, frozenset(), max_depth)
            if depth > max_depth:
                name = node.name.value if node.name else "anonymous"
                context.report_error(
                    GraphQLError(
                        f"'{name}' exceeds maximum operation depth of {max_depth}",
                        node,
                        extensions={"code": "QUERY_TOO_COMPLEX"},
                    )
                )

    return MaxDepthRule


class SafeParserCache(ParserCache):
    """ParserCache that leaves syntax errors to Strawberry's own parse step.

    Strawberry's ParserCache parses while *entering* the parse hook, so a syntax error
    escapes the operation's normal error path (and our error codes). Here a failed parse
    is simply not cached; Strawberry parses again inside its try block and reports it.
    """

    def on_parse(self) -> Iterator[None]:
        ctx = self.execution_context
        with contextlib.suppress(GraphQLError):
            ctx.graphql_document = self.cached_parse_document(ctx.query, **ctx.parse_options)
        yield
