"""Operation limits, checked before the other validation rules in time linear in the document.

A fragment may be spread many times: in `fragment F0 on Query { ...F1 ...F1 }` and so on,
each fragment spreading the next twice, 22 fragments (1 KB) stand for 2^22 selections, and
a rule that walks every spread takes seconds. Here each fragment is summarised once, after
the fragments it spreads (its depth, aliases and the selections it stands for, a spread
adding the summary of the fragment it names), so the cost is one visit per selection.

Within these limits the other rules are cheap too, which they are not by themselves:
- depth, introspection fields included (Strawberry's QueryDepthLimiter skips everything
  below `__schema`/`__type`, which leaves the classic nested introspection query unbounded);
- aliases, fragments expanded;
- selections (fields, inline fragments and spreads) with fragments expanded: what execution
  and Strawberry's `info.selected_fields` walk;
- the comparisons graphql-core's OverlappingFieldsCanBeMerged makes: every pair of fields
  that share a response name where they merge, and every field set and pair of fragment
  spreads against the fragments they reach. A few hundred repeats of one field, or a
  hundred fragments spread side by side, cost it seconds.
A document with a fragment cycle or an unused fragment is invalid whatever else it holds:
only the rule that says so runs on it (both are linear).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLSchema,
    InlineFragmentNode,
    NoFragmentCyclesRule,
    NoUnusedFragmentsRule,
    OperationDefinitionNode,
    SelectionSetNode,
    validate,
)
from strawberry.extensions import ParserCache

from app.errors import ErrorCode

# OverlappingFieldsCanBeMerged compares a pair of fields in about 3 us and a field set or
# fragment against a fragment in about three times that (measured on a busy 2-core machine):
# this budget keeps it to about 15 ms, and far above what clients send (40 fragments spread
# side by side that all select `id` cost 780 pairs and 3 x 820 fragment comparisons;
# GraphiQL's introspection query costs 3 x 13).
MAX_COMPARISONS = 5_000
FRAGMENT_COMPARISON_WEIGHT = 3
# Longer texts (the token limit bounds tokens, not their length: a 1 MB string literal takes
# the parser 100-200 ms) are parsed in a worker thread and kept in no cache: the caches hold
# 512 texts each, and no megabyte-sized ones.
LONG_DOCUMENT_CHARS = 32_768
# Counts stop growing here: a fan-out's 2^n is reported as "over" the limit, not computed.
_CAP = 1 << 40


@dataclass(frozen=True, slots=True)
class Limits:
    max_depth: int
    max_aliases: int
    max_selections: int
    max_comparisons: int = MAX_COMPARISONS


@dataclass(frozen=True, slots=True)
class Summary:
    """What a selection set stands for once its fragments are expanded."""

    depth: int  # deepest field nesting; a leaf field counts 0
    aliases: int  # aliased fields
    selections: int  # fields, inline fragments and fragment spreads

    def __add__(self, other: Summary) -> Summary:
        return Summary(
            max(self.depth, other.depth),
            min(self.aliases + other.aliases, _CAP),
            min(self.selections + other.selections, _CAP),
        )


_EMPTY = Summary(0, 0, 0)
_SPREAD = Summary(0, 0, 1)


@dataclass(slots=True)
class Fragments:
    """The document's fragments, each summarised once."""

    definitions: dict[str, FragmentDefinitionNode]
    summaries: dict[str, Summary] = field(default_factory=dict)
    # Fragments each one reaches through its spreads, transitively, as bits of `index`.
    reach: dict[str, int] = field(default_factory=dict)
    index: dict[str, int] = field(default_factory=dict)
    has_cycle: bool = False

    def reach_of(self, names: Iterable[str]) -> int:
        bits = 0
        for name in names:
            if name in self.index:
                bits |= (1 << self.index[name]) | self.reach[name]
        return bits


def _summarise(selection_set: SelectionSetNode, done: dict[str, Summary]) -> Summary:
    """One walk of `selection_set` (recursing only as deep as it nests, which the parser
    bounds); a spread adds its fragment's summary from `done`. A fragment missing there is
    unknown or on a cycle: other rules report those."""
    total = _EMPTY
    for selection in selection_set.selections:
        if isinstance(selection, FieldNode):
            alias = 1 if selection.alias else 0
            if selection.selection_set is None:
                total += Summary(0, alias, 1)
            else:
                inner = _summarise(selection.selection_set, done)
                total += Summary(1 + inner.depth, alias + inner.aliases, 1 + inner.selections)
        elif isinstance(selection, InlineFragmentNode):
            total += _SPREAD + _summarise(selection.selection_set, done)
        elif isinstance(selection, FragmentSpreadNode):
            total += _SPREAD + done.get(selection.name.value, _EMPTY)
    return total


def _selection_sets(selection_set: SelectionSetNode) -> Iterator[SelectionSetNode]:
    """`selection_set` and every selection set inside it."""
    stack = [selection_set]
    while stack:
        current = stack.pop()
        yield current
        for selection in current.selections:
            if isinstance(selection, FieldNode | InlineFragmentNode) and selection.selection_set:
                stack.append(selection.selection_set)


def _direct_spreads(selection_set: SelectionSetNode) -> list[str]:
    """Fragments spread in `selection_set` itself or in its inline fragments (what
    graphql-core compares at this level), each name once."""
    names: dict[str, None] = {}
    stack = [selection_set]
    while stack:
        for selection in stack.pop().selections:
            if isinstance(selection, FragmentSpreadNode):
                names[selection.name.value] = None
            elif isinstance(selection, InlineFragmentNode):
                stack.append(selection.selection_set)
    return list(names)


def _spreads(selection_set: SelectionSetNode) -> list[str]:
    return [name for inner in _selection_sets(selection_set) for name in _direct_spreads(inner)]


def summarise_fragments(definitions: dict[str, FragmentDefinitionNode]) -> Fragments:
    """Every fragment summarised once, after the fragments it spreads (depth-first, with an
    explicit stack: a chain of hundreds of fragments must not exhaust Python's)."""
    fragments = Fragments(definitions)
    edges = {name: _spreads(f.selection_set) for name, f in definitions.items()}
    done = fragments.summaries
    on_path: set[str] = set()
    for root in definitions:
        if root in done:
            continue
        stack: list[tuple[str, Iterator[str]]] = [(root, iter(edges[root]))]
        on_path.add(root)
        while stack:
            name, children = stack[-1]
            for child in children:
                if child in on_path:
                    fragments.has_cycle = True
                elif child in definitions and child not in done:
                    on_path.add(child)
                    stack.append((child, iter(edges[child])))
                    break
            else:
                stack.pop()
                on_path.discard(name)
                done[name] = _summarise(definitions[name].selection_set, done)
                fragments.reach[name] = fragments.reach_of(edges[name])
                fragments.index[name] = len(fragments.index)
    return fragments


def merge_pairs(
    selection_sets: Iterable[SelectionSetNode], fragments: Fragments, budget: int
) -> int:
    """Pairs of fields that share a response name where they merge, fragments expanded,
    at every level below; stops counting past `budget`. Linear in the selections it
    expands: call it within the selection limit and without fragment cycles."""
    counts: dict[str, int] = {}
    children: dict[str, list[SelectionSetNode]] = {}
    stack = list(selection_sets)
    while stack:
        for selection in stack.pop().selections:
            if isinstance(selection, FieldNode):
                key = (selection.alias or selection.name).value
                counts[key] = counts.get(key, 0) + 1
                if selection.selection_set is not None:
                    children.setdefault(key, []).append(selection.selection_set)
            elif isinstance(selection, InlineFragmentNode):
                stack.append(selection.selection_set)
            elif isinstance(selection, FragmentSpreadNode):
                fragment = fragments.definitions.get(selection.name.value)
                if fragment is not None:
                    stack.append(fragment.selection_set)
    pairs = sum(n * (n - 1) // 2 for n in counts.values())
    for sets in children.values():
        if pairs > budget:
            break
        pairs += merge_pairs(sets, fragments, budget - pairs)
    return pairs


def fragment_comparisons(document: DocumentNode, fragments: Fragments) -> int:
    """What OverlappingFieldsCanBeMerged compares for spreads, in each selection set of the
    document: its fields against every fragment its spreads reach, and each pair of its
    spreads, every fragment one reaches against every fragment the other reaches."""
    total = 0
    for definition in document.definitions:
        if not isinstance(definition, OperationDefinitionNode | FragmentDefinitionNode):
            continue
        for selection_set in _selection_sets(definition.selection_set):
            spreads = [n for n in _direct_spreads(selection_set) if n in fragments.index]
            if not spreads:
                continue
            sizes = [1 + fragments.reach[n].bit_count() for n in spreads]
            pairs = (sum(sizes) ** 2 - sum(s * s for s in sizes)) // 2
            total += fragments.reach_of(spreads).bit_count() + pairs
    return total


def _too_complex(message: str, node: Any) -> GraphQLError:
    return GraphQLError(message, node, extensions={"code": ErrorCode.QUERY_TOO_COMPLEX.value})


def _count(value: int) -> str:
    return f"over {_CAP:,}" if value >= _CAP else str(value)


def operation_errors(
    operation: OperationDefinitionNode, fragments: Fragments, limits: Limits
) -> list[GraphQLError]:
    """The depth, alias and selection limits `operation` exceeds."""
    name = operation.name.value if operation.name else "anonymous"
    totals = _summarise(operation.selection_set, fragments.summaries)
    errors: list[GraphQLError] = []
    if totals.depth > limits.max_depth:
        message = f"'{name}' exceeds maximum operation depth of {limits.max_depth}"
        errors.append(_too_complex(message, operation))
    if totals.aliases > limits.max_aliases:
        message = f"{_count(totals.aliases)} aliases found. Allowed: {limits.max_aliases}"
        errors.append(_too_complex(message, operation))
    if totals.selections > limits.max_selections:
        message = (
            f"'{name}' stands for {_count(totals.selections)} selections with its fragments "
            f"expanded. Allowed: {limits.max_selections}"
        )
        errors.append(_too_complex(message, operation))
    return errors


def limit_errors(
    schema: GraphQLSchema, document: DocumentNode, limits: Limits
) -> list[GraphQLError]:
    """What keeps `document` from the other validation rules (empty: nothing does)."""
    definitions = {
        d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
    }
    fragments = summarise_fragments(definitions)
    if fragments.has_cycle:
        return validate(schema, document, [NoFragmentCyclesRule])
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    errors = [error for op in operations for error in operation_errors(op, fragments, limits)]
    if errors:
        return errors
    used = fragments.reach_of(n for op in operations for n in _spreads(op.selection_set))
    if used.bit_count() < len(fragments.index):
        return validate(schema, document, [NoUnusedFragmentsRule])
    # Every fragment is used and each operation within the selection limit: expanding the
    # operations costs at most that limit each.
    budget = limits.max_comparisons - FRAGMENT_COMPARISON_WEIGHT * fragment_comparisons(
        document, fragments
    )
    for operation in operations:
        if budget < 0:
            break
        budget -= merge_pairs([operation.selection_set], fragments, budget)
    if budget < 0:
        return [
            _too_complex(
                "The document repeats fields and fragments too often to be checked: over "
                f"{limits.max_comparisons} pairs of fields or fragments would have to be "
                "compared where they merge.",
                operations[0] if operations else None,
            )
        ]
    return []


class SafeParserCache(ParserCache):
    """ParserCache that leaves syntax errors to Strawberry's own parse step, and keeps a
    document parsed already (a long one, in a thread: see SmartContentSchema).

    Strawberry's ParserCache parses while *entering* the parse hook, so a syntax error
    escapes the operation's normal error path (and our error codes). Here a failed parse
    is simply not cached; Strawberry parses again inside its try block and reports it.
    """

    def on_parse(self) -> Iterator[None]:
        ctx = self.execution_context
        if ctx.graphql_document is None:
            with contextlib.suppress(GraphQLError):
                ctx.graphql_document = self.cached_parse_document(ctx.query, **ctx.parse_options)
        yield
