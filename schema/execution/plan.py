"""The execution plan of one operation, kept across requests beside its parsed document.

graphql-core collects the fields of every object it completes (memoised per request),
looks up each field's definition, builds its resolve info, coerces its arguments and walks
the generic completion of its type, for every field of every item. A plan does the parts
that depend only on the document once per document: the grouped field sets (so their
identities, on which graphql-core memoises sub-field collection, stay the same from one
request to the next), and per field its definition, field nodes, literal arguments and
whether it is a leaf that can be completed directly (see schema.execution.executor).

What a document's collection depends on besides its text is the values of the variables
its `@include`/`@skip` directives read: a plan is kept per combination of those values.
Fragments with variable definitions (an experimental parser option) make every field's
arguments depend on the spread, so such operations get no plan at all.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from datetime import date, time
from decimal import Decimal
from enum import Enum
from typing import Any
from uuid import UUID

from graphql import (
    DirectiveNode,
    FieldNode,
    FragmentDefinitionNode,
    GraphQLEnumType,
    GraphQLField,
    GraphQLLeafType,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLSchema,
    Node,
    OperationDefinitionNode,
    OperationType,
    VariableNode,
    is_leaf_type,
    is_non_null_type,
)
from graphql.execution.collect_fields import CollectedFields, FieldDetailsList, GroupedFieldSet

# Distinct operations come from clients: the cache is bounded (schema.schema's CACHE_SIZE,
# like the parser's and validation's), and so is each operation's set of directive values.
PLANS_PER_OPERATION = 16


@dataclass(slots=True)
class FieldPlan:
    """What executing one field (a response name of one selection set) needs that does not
    change between requests or items."""

    field_def: GraphQLField | None  # None: not a field of the parent type (left out)
    field_nodes: list[FieldNode]
    # Literal arguments, coerced once; None when they read variables or failed to coerce
    # (then they are coerced per call, so the error is reported the way graphql-core does).
    static_args: dict[str, Any] | None
    has_args: bool
    # The leaf type of a field typed `Leaf` or `Leaf!`, else None.
    leaf: GraphQLLeafType | None
    nullable: bool
    # A Strawberry field without a resolver (schema_converter's `_get_basic_result`, which
    # ignores the info): (its default resolver, the attribute), what that resolver calls.
    read: tuple[Callable[[Any, str], Any], str] | None
    # How the executor completes it (see schema.execution.executor): OTHER, LEAF, OBJECT
    # (`T`/`T!`) or OBJECTS (a list of `T`/`T!`, not streamed); set by its steps.
    shape: int = 0
    # OBJECT: the object type; OBJECTS: the item type (`T` or `T!`) and its object type.
    object_type: GraphQLObjectType | None = None
    item_type: GraphQLOutputType | None = None
    # LEAF: the leaf type's output coercion (an enum's by a lookup, see fast_coercion).
    coerce: Callable[[Any], Any] | None = None


@dataclass(slots=True, eq=False)
class DocumentPlan:
    """One operation's plan for one combination of its directive variables' values."""

    # The operation's root grouped field sets by root type.
    roots: dict[GraphQLObjectType, GroupedFieldSet] = field(default_factory=dict)
    # graphql-core's sub-field memo ((type, id(field details list)) -> (list, collected)):
    # shared by every request, as the lists it is keyed by live in this plan.
    sub_fields: dict[tuple[GraphQLObjectType, int], tuple[FieldDetailsList, CollectedFields]] = (
        field(default_factory=dict)
    )
    # (parent type, id(field details list)) -> (the list, kept alive for its id; its plan).
    fields: dict[tuple[GraphQLObjectType, int], tuple[FieldDetailsList, FieldPlan]] = field(
        default_factory=dict
    )
    # (parent type, id(grouped field set)) -> (the set; its fields' steps, in order).
    selections: dict[tuple[GraphQLObjectType, int], tuple[GroupedFieldSet, list[Any]]] = field(
        default_factory=dict
    )


def has_variables(node: Node) -> bool:
    """Whether a value node (or any value inside it) reads a variable."""
    found: set[str] = set()
    _variables_in(node, found)
    return bool(found)


def _directive_variables(node: Node, found: set[str]) -> None:
    """The variables read by directive arguments anywhere below `node`."""
    directives: tuple[DirectiveNode, ...] = getattr(node, "directives", None) or ()
    for directive in directives:
        for argument in directive.arguments or ():
            _variables_in(argument.value, found)
    selection_set = getattr(node, "selection_set", None)
    if selection_set is not None:
        for selection in selection_set.selections:
            _directive_variables(selection, found)


def _variables_in(node: Node, found: set[str]) -> None:
    if isinstance(node, VariableNode):
        found.add(node.name.value)
        return
    for key in node.keys:
        value = getattr(node, key, None)
        items = value if isinstance(value, tuple | list) else (value,)
        for item in items:
            if isinstance(item, Node) and key != "loc":
                _variables_in(item, found)


@dataclass(slots=True, eq=False)
class OperationPlans:
    """Every plan of one operation node, by its directive variables' values."""

    schema: GraphQLSchema
    operation: OperationDefinitionNode  # held: keeps its id from being reused
    directive_variables: tuple[str, ...]
    plannable: bool
    by_values: OrderedDict[Hashable, DocumentPlan] = field(default_factory=OrderedDict)

    def plan_for(self, coerced: dict[str, Any]) -> DocumentPlan | None:
        try:
            key = tuple(coerced.get(name) for name in self.directive_variables)
            hash(key)
        except TypeError:  # an unhashable value: plan this request alone
            return DocumentPlan()
        plan = self.by_values.get(key)
        if plan is None:
            plan = self.by_values[key] = DocumentPlan()
            if len(self.by_values) > PLANS_PER_OPERATION:
                self.by_values.popitem(last=False)
        else:
            self.by_values.move_to_end(key)
        return plan


class PlanCache:
    """The plans of recent operations (the last `maxsize` operation nodes).

    Keyed by the operation node's identity, which the parser cache keeps the same for the
    same text (and operation name); the node is held in the entry, so an id is never
    reused while its entry lives, and a new document is never given an old plan. Used
    from the event loop only.
    """

    def __init__(self, maxsize: int) -> None:
        self.maxsize = maxsize
        self._entries: OrderedDict[tuple[int, int], OperationPlans] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def plan(
        self,
        schema: GraphQLSchema,
        operation: OperationDefinitionNode,
        fragments: dict[str, FragmentDefinitionNode],
        coerced_variables: dict[str, Any],
    ) -> DocumentPlan | None:
        """The plan for this operation and these variable values; None: execute it as
        graphql-core does (subscriptions, which `fanout` owns, and fragment variables)."""
        key = (id(schema), id(operation))
        entry = self._entries.get(key)
        if entry is None or entry.operation is not operation or entry.schema is not schema:
            entry = _operation_plans(schema, operation, fragments)
            self._entries[key] = entry
            if len(self._entries) > self.maxsize:
                self._entries.popitem(last=False)
        else:
            self._entries.move_to_end(key)
        if not entry.plannable:
            return None
        return entry.plan_for(coerced_variables)


def _operation_plans(
    schema: GraphQLSchema,
    operation: OperationDefinitionNode,
    fragments: dict[str, FragmentDefinitionNode],
) -> OperationPlans:
    plannable = operation.operation != OperationType.SUBSCRIPTION and not any(
        fragment.variable_definitions for fragment in fragments.values()
    )
    found: set[str] = set()
    _directive_variables(operation, found)
    for fragment in fragments.values():
        _directive_variables(fragment, found)
    return OperationPlans(schema, operation, tuple(sorted(found)), plannable)


# Argument values one coercion may hand to many calls: a resolver cannot change them in
# place (graphql-core gives input objects and lists as dicts and lists; a JSON scalar's
# value is passed as it is). Others are coerced per call, as graphql-core does.
_IMMUTABLE = (str, int, float, bool, bytes, Enum, UUID, date, time, Decimal, type(None))


def shareable(args: dict[str, Any]) -> bool:
    """Whether coerced arguments can be reused: every value immutable (tuples of them too)."""
    return all(_immutable(value) for value in args.values())


def _immutable(value: Any) -> bool:
    if isinstance(value, tuple):
        return all(_immutable(item) for item in value)
    return isinstance(value, _IMMUTABLE)


def leaf_of(return_type: GraphQLOutputType) -> tuple[GraphQLLeafType | None, bool]:
    """(the leaf type, nullable) of a field typed `Leaf` or `Leaf!`; (None, _) otherwise."""
    nullable = not is_non_null_type(return_type)
    named = return_type if nullable else return_type.of_type  # type: ignore[union-attr]
    if is_leaf_type(named):
        return named, nullable
    return None, nullable


def fast_coercion(leaf: GraphQLLeafType) -> Callable[[Any], Any]:
    """`leaf.coerce_output_value`, or for Strawberry's enum types the same answer by one
    lookup: its coercion compares the value with each of the enum's values in turn."""
    wrapped = getattr(leaf, "wrapped_cls", None)
    coerce = leaf.coerce_output_value
    if not isinstance(leaf, GraphQLEnumType) or not isinstance(wrapped, type(Enum)):
        return coerce
    names: dict[Any, str] = {}
    for member in wrapped:
        for name, value in leaf.values.items():
            if member.value == value.value:  # the first name, as its coercion finds it
                names[member] = name
                break
    get = names.get

    def coerce_enum(value: Any) -> Any:
        if type(value) is wrapped:
            found = get(value)
            if found is not None:
                return found
        return coerce(value)

    return coerce_enum
