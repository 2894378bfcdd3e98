"""graphql-core's executor, running each operation on its cached plan (schema.execution.plan).

Longer than 400 lines because each fast path has to mirror the graphql-core code it stands
in for (completion, list items, errors) in one place, next to the hooks that use it.

Per field graphql-core looks the definition up, builds a `GraphQLResolveInfo`, coerces the
arguments and completes the value through the generic `complete_value` (non-null, list,
leaf, abstract, object), for every item of every list. Here, per field of a planned
operation:
- the definition, field nodes and literal arguments come from the plan (arguments that
  read variables are coerced once per request, not once per item);
- a resolver-less Strawberry field is read the way its resolver reads it (the configured
  default resolver, `getattr`, on its Python name), with no info built (that resolver
  ignores it) and no response path unless it fails;
- Strawberry's relay `id` resolver (Node._id) is read the same way: the GlobalID it would
  build, for a node class keeping Strawberry's resolve_id and resolve_typename (otherwise,
  and for an id it cannot read so, the resolver runs);
- a leaf value that a resolver returned as it is (not awaitable, not None, not an
  exception) is coerced directly, as `complete_leaf_value` does; every other value (and a
  leaf whose coercion gives nothing) goes through graphql-core's own completion with the
  same info, path and error handling, so answers and errors are graphql-core's;
- an object value (a field's or a list item's) goes to `complete_object_value` directly.
- a resolver-less field typed `T`/`T!` or a list of them (T an object type, the list not
  streamed) is completed in place: the object's sub-fields are executed directly, and a
  list's items in one loop, with graphql-core's error handling, null propagation and
  gathering of awaitable items, but without its generic dispatch (about eight calls per
  object, and a resolve info that only its `is_type_of` would read: Strawberry's ignores it).
The same resolvers run in the same order. Subscriptions and operations with fragment
variables are executed exactly as graphql-core does (no plan).
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from enum import Enum
from typing import Any, ClassVar, Final

from graphql import (
    GraphQLEnumType,
    GraphQLField,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLScalarType,
    Undefined,
)
from graphql.execution.collect_fields import FieldDetailsList, GroupedFieldSet
from graphql.execution.executor import invalid_return_type_error, to_nodes
from graphql.execution.values import get_argument_values
from graphql.pyutils import Path, gather_with_cancel
from strawberry import relay
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext
from strawberry.schema.schema_converter import GraphQLCoreConverter
from strawberry.types.field import StrawberryField

from schema.execution.plan import (
    DocumentPlan,
    FieldPlan,
    PlanCache,
    fast_coercion,
    has_variables,
    leaf_of,
    shareable,
)

# Bounded like the parser and validation caches (schema.schema's CACHE_SIZE): distinct
# operations come from clients.
PLAN_CACHE_SIZE = 512

# One selection set's fields, in order: (response name, field details, plan, shape).
Step = tuple[str, FieldDetailsList, FieldPlan, int]
# Field plan shapes (FieldPlan.shape): completed by graphql-core's code, or in place.
OTHER, LEAF, OBJECT, OBJECTS = 0, 1, 2, 3


def _checks_types_itself(object_type: GraphQLObjectType) -> bool:
    """Whether completing this type needs no resolve info: no `is_type_of`, or Strawberry's
    own (an isinstance check that ignores the info). A custom one goes through
    graphql-core's completion."""
    check = object_type.is_type_of
    qualname = getattr(check, "__qualname__", "")
    return check is None or qualname.endswith("_get_is_type_of.<locals>.is_type_of")


def _object_of(of_type: Any) -> GraphQLObjectType | None:
    """The object type of a `T` or `T!` (T an object type completed without info)."""
    named = of_type.of_type if isinstance(of_type, GraphQLNonNull) else of_type
    if isinstance(named, GraphQLObjectType) and _checks_types_itself(named):
        return named
    return None


def _shape(field_plan: FieldPlan) -> int:
    """How a field is completed; sets the types its shape needs on the plan."""
    field_def = field_plan.field_def
    if field_def is None or field_plan.read is None or field_plan.has_args:
        return OTHER
    if field_plan.leaf is not None:
        field_plan.coerce = fast_coercion(field_plan.leaf)
        return LEAF
    return_type = field_def.type
    object_type = _object_of(return_type)
    if object_type is not None:
        field_plan.object_type = object_type
        return OBJECT
    listed = return_type.of_type if isinstance(return_type, GraphQLNonNull) else return_type
    if not isinstance(listed, GraphQLList):
        return OTHER
    object_type = _object_of(listed.of_type)
    streamed = any(
        directive.name.value == "stream"
        for node in field_plan.field_nodes
        for directive in node.directives or ()
    )
    if object_type is None or streamed:
        return OTHER
    field_plan.object_type, field_plan.item_type = object_type, listed.of_type
    return OBJECTS


class _Read(Enum):
    USE_RESOLVER = "use the resolver"


# What a plan's read gives when this source needs the field's own resolver after all.
USE_RESOLVER: Final = _Read.USE_RESOLVER
_NODE_ID = relay.Node.__dict__["_id"].__func__
_RESOLVE_ID = relay.Node.__dict__["resolve_id"].__func__
_RESOLVE_TYPENAME = relay.Node.__dict__["resolve_typename"].__func__
# Node classes by whether they keep Strawberry's resolve_id and resolve_typename: the id
# attribute, or None.
_PLAIN_NODES: dict[type, str | None] = {}


def _node_id_read(
    field_def: GraphQLField, parent_type: GraphQLObjectType
) -> tuple[Callable[[Any, str], Any], str] | None:
    """For Strawberry's relay `id` field (relay.Node._id, no arguments, extensions or
    permissions): a read that gives what that resolver gives, for a source whose class
    keeps Strawberry's resolve_id and resolve_typename (USE_RESOLVER otherwise). The
    resolver builds a Strawberry info and goes through its extension chain for
    `GlobalID(the parent type's name, str(getattr(root, its NodeID attribute)))`."""
    field = (field_def.extensions or {}).get(GraphQLCoreConverter.DEFINITION_BACKREF)
    if not isinstance(field, StrawberryField) or field.base_resolver is None:
        return None
    if field.extensions or field.permission_classes or field.arguments:
        return None
    wrapped = getattr(field.base_resolver.wrapped_func, "__func__", None)
    if wrapped is not _NODE_ID:
        return None
    return _read_node_id, parent_type.name


def _read_node_id(source: Any, type_name: str) -> Any:
    cls = type(source)
    try:
        attribute = _PLAIN_NODES[cls]
    except KeyError:
        plain = (
            isinstance(source, relay.Node)
            and getattr(cls.resolve_id, "__func__", None) is _RESOLVE_ID
            and getattr(cls.resolve_typename, "__func__", None) is _RESOLVE_TYPENAME
        )
        attribute = _PLAIN_NODES[cls] = cls.resolve_id_attr() if plain else None
    if attribute is None:
        return USE_RESOLVER
    node_id = getattr(source, attribute)
    if node_id is None or inspect.isawaitable(node_id):
        return USE_RESOLVER
    return relay.GlobalID(type_name=type_name, node_id=str(node_id))


def _attribute_read(field_def: GraphQLField) -> tuple[Callable[[Any, str], Any], str] | None:
    """What a resolver-less Strawberry field's resolver does: its default resolver (getattr
    unless configured) on its Python name. None for any other field."""
    if not getattr(field_def.resolve, "_is_default", False):
        return None
    field = (field_def.extensions or {}).get(GraphQLCoreConverter.DEFINITION_BACKREF)
    if not isinstance(field, StrawberryField) or not field.is_basic_field:
        return None
    return field.default_resolver, field.python_name


class PlannedExecutor(StrawberryGraphQLCoreExecutionContext):
    """Strawberry's execution context (its resolve info class included), on plans."""

    plans: ClassVar[PlanCache] = PlanCache(PLAN_CACHE_SIZE)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._plan: DocumentPlan | None = self.plans.plan(
            self.schema, self.operation, self.fragment_definitions, self.variable_values.coerced
        )
        if self._plan is not None:
            self._relevant_sub_fields = self._plan.sub_fields
        manager = self.middleware_manager
        self._middleware = manager is not None and bool(manager.middlewares)
        self._request_args: dict[int, dict[str, Any]] = {}

    # --- the plan ---------------------------------------------------------------------

    def _field_plan(
        self, plan: DocumentPlan, parent_type: GraphQLObjectType, details: FieldDetailsList
    ) -> FieldPlan:
        key = (parent_type, id(details))
        entry = plan.fields.get(key)
        if entry is not None:
            return entry[1]
        first = details[0]
        node = first.node
        field_def = self.schema.get_field(parent_type, node.name.value)
        static_args: dict[str, Any] | None = None
        has_args = bool(field_def is not None and (field_def.args or node.arguments))
        leaf, nullable, read = None, True, None
        if field_def is not None:
            leaf, nullable = leaf_of(field_def.type)
            read = _attribute_read(field_def) or _node_id_read(field_def, parent_type)
            literal = first.fragment_variable_values is None and not any(
                has_variables(argument.value) for argument in node.arguments or ()
            )
            if has_args and literal:
                try:
                    coerced = get_argument_values(
                        field_def, node, self.variable_values, None, self.hide_suggestions
                    )
                except Exception:  # reported per call, as graphql-core does
                    coerced = None
                static_args = coerced if coerced is not None and shareable(coerced) else None
        field_plan = FieldPlan(
            field_def, to_nodes(details), static_args, has_args, leaf, nullable, read
        )
        plan.fields[key] = (details, field_plan)
        return field_plan

    def _steps(
        self, plan: DocumentPlan, parent_type: GraphQLObjectType, fields: GroupedFieldSet
    ) -> list[Step]:
        key = (parent_type, id(fields))
        entry = plan.selections.get(key)
        if entry is not None:
            return entry[1]
        steps: list[Step] = []
        for name, details in fields.items():
            field_plan = self._field_plan(plan, parent_type, details)
            # (Middleware, which wraps every resolver, is checked per request.)
            field_plan.shape = _shape(field_plan)
            steps.append((name, details, field_plan, field_plan.shape))
        plan.selections[key] = (fields, steps)
        return steps

    # --- graphql-core's hooks ---------------------------------------------------------

    def execute_collected_root_fields(
        self,
        root_type: GraphQLObjectType,
        root_value: Any,
        grouped_field_set: GroupedFieldSet,
        serially: bool,
        new_defer_usages: Any,
    ) -> Any:
        # The first request's root fields stand for every later one's (collected alike),
        # so the sub-field memo and the field plans keyed by them carry over.
        plan = self._plan
        if plan is not None and not new_defer_usages:
            grouped_field_set = plan.roots.setdefault(root_type, grouped_field_set)
        return super().execute_collected_root_fields(
            root_type, root_value, grouped_field_set, serially, new_defer_usages
        )

    def execute_fields(
        self,
        parent_type: GraphQLObjectType,
        source_value: Any,
        path: Path | None,
        grouped_field_set: GroupedFieldSet,
        position_context: Any,
    ) -> Any:
        plan = self._plan
        if plan is None or position_context is not None:
            return super().execute_fields(
                parent_type, source_value, path, grouped_field_set, position_context
            )
        results: dict[str, Any] = {}
        is_awaitable = self.is_awaitable
        awaitable_fields: list[str] = []
        type_name = parent_type.name
        direct = not self._middleware
        try:
            for name, details, field_plan, shape in self._steps(
                plan, parent_type, grouped_field_set
            ):
                if not direct or shape == OTHER:
                    result = self.execute_field(
                        parent_type, source_value, details, Path(path, name, type_name), None
                    )
                elif shape == LEAF:
                    result = self._resolve_leaf(
                        field_plan, details, parent_type, source_value, path, name
                    )
                else:
                    result = self._resolve_objects(
                        field_plan, details, parent_type, source_value, Path(path, name, type_name)
                    )
                if result is not Undefined:
                    results[name] = result
                    if is_awaitable(result):
                        awaitable_fields.append(name)
        except Exception:
            if awaitable_fields:
                self.settle_in_background([results[field] for field in awaitable_fields])
            raise
        if not awaitable_fields:
            return results
        return self._gather_fields(results, awaitable_fields)

    def execute_field(
        self,
        parent_type: GraphQLObjectType,
        source: Any,
        field_details_list: FieldDetailsList,
        path: Path,
        position_context: Any,
    ) -> Any:
        plan = self._plan
        if plan is None or position_context is not None:
            return super().execute_field(
                parent_type, source, field_details_list, path, position_context
            )
        field_plan = self._field_plan(plan, parent_type, field_details_list)
        field_def = field_plan.field_def
        if field_def is None:
            return Undefined
        return_type = field_def.type
        resolve_fn = field_def.resolve or self.field_resolver
        if self._middleware:
            resolve_fn = self.middleware_manager.get_field_resolver(resolve_fn)  # type: ignore[union-attr]
        read = field_plan.read if not (self._middleware or field_plan.has_args) else None
        info = (
            None
            if read is not None
            else self.build_resolve_info(field_def, field_plan.field_nodes, parent_type, path)
        )
        try:
            result = read[0](source, read[1]) if read is not None else USE_RESOLVER
            if result is USE_RESOLVER:
                if info is None:
                    info = self.build_resolve_info(
                        field_def, field_plan.field_nodes, parent_type, path
                    )
                args = self._arguments(field_plan, field_details_list)
                result = resolve_fn(source, info, **args)
            leaf = field_plan.leaf
            if leaf is not None:
                if result is None:
                    if field_plan.nullable:
                        return None
                elif not self.is_awaitable(result) and not isinstance(result, Exception):
                    coerced = leaf.coerce_output_value(result)
                    if coerced is not None and coerced is not Undefined:
                        return coerced
            if info is None:
                info = self.build_resolve_info(field_def, field_plan.field_nodes, parent_type, path)
            if self.is_awaitable(result):
                return self.complete_awaitable_value(
                    return_type, field_details_list, info, path, result, None
                )
            completed = self.complete_value(
                return_type, field_details_list, info, path, result, None
            )
            if self.is_awaitable(completed):
                return self._await_completed(completed, return_type, field_details_list, path)
        except Exception as raw_error:
            self.handle_field_error(raw_error, return_type, field_details_list, path)
            return None
        return completed

    def complete_value(
        self,
        return_type: GraphQLOutputType,
        field_details_list: FieldDetailsList,
        info: Any,
        path: Path,
        result: Any,
        position_context: Any,
    ) -> Any:
        # An object (`T` or `T!`, a field's or a list item's) goes straight to
        # graphql-core's complete_object_value, and a leaf item to its coercion, past the
        # generic dispatch (two calls per object). Anything else is graphql-core's.
        if (
            self._plan is not None
            and position_context is None
            and result is not None
            and result is not Undefined
            and not isinstance(result, Exception)
        ):
            named = return_type.of_type if isinstance(return_type, GraphQLNonNull) else return_type
            if isinstance(named, GraphQLObjectType):
                if _checks_types_itself(named):
                    return self._complete_object(named, field_details_list, path, result)
                return self.complete_object_value(
                    named, field_details_list, info, path, result, None
                )
            if isinstance(named, GraphQLScalarType | GraphQLEnumType):
                coerced = named.coerce_output_value(result)
                if coerced is not None and coerced is not Undefined:
                    return coerced
        return super().complete_value(
            return_type, field_details_list, info, path, result, position_context
        )

    # --- the parts ----------------------------------------------------------------------

    def _complete_object(
        self,
        object_type: GraphQLObjectType,
        details: FieldDetailsList,
        path: Path,
        result: Any,
    ) -> Any:
        """graphql-core's complete_object_value of a non-null value, for a type whose
        `is_type_of` ignores the info (_checks_types_itself): the check, the sub-fields
        (collected once per plan), executed here unless they are deferred."""
        check = object_type.is_type_of
        if check is not None and not check(result, None):  # type: ignore[arg-type]
            raise invalid_return_type_error(object_type, result, details)
        grouped_field_set, new_defer_usages, _ = self.collect_subfields(object_type, details)
        if new_defer_usages:
            return self.execute_collected_subfields(
                object_type, result, path, grouped_field_set, new_defer_usages, None
            )
        return self.execute_fields(object_type, result, path, grouped_field_set, None)

    def _resolve_objects(
        self,
        field_plan: FieldPlan,
        details: FieldDetailsList,
        parent_type: GraphQLObjectType,
        source: Any,
        path: Path,
    ) -> Any:
        """A resolver-less field of shape OBJECT or OBJECTS: what `execute_field` gives. A
        value it does not expect (None where not allowed, awaitable, an exception, not a
        list) goes to graphql-core's completion as it is."""
        field_def, read = field_plan.field_def, field_plan.read
        assert field_def is not None and read is not None
        return_type = field_def.type
        try:
            result = read[0](source, read[1])
        except Exception as raw_error:
            self.handle_field_error(raw_error, return_type, details, path)
            return None
        object_type = field_plan.object_type
        assert object_type is not None
        if result is None or self.is_awaitable(result) or isinstance(result, Exception):
            if result is None and field_plan.nullable:
                return None
            return self._complete_resolved(field_plan, details, parent_type, path, result)
        try:
            if field_plan.shape == OBJECT:
                completed = self._complete_object(object_type, details, path, result)
            elif type(result) is list or type(result) is tuple:
                completed = self._complete_items(
                    field_plan, details, parent_type, path, result, object_type
                )
            else:
                return self._complete_resolved(field_plan, details, parent_type, path, result)
            if self.is_awaitable(completed):
                return self._await_completed(completed, return_type, details, path)
        except Exception as raw_error:
            self.handle_field_error(raw_error, return_type, details, path)
            return None
        return completed

    def _complete_items(
        self,
        field_plan: FieldPlan,
        details: FieldDetailsList,
        parent_type: GraphQLObjectType,
        path: Path,
        items: list[Any] | tuple[Any, ...],
        object_type: GraphQLObjectType,
    ) -> Any:
        """graphql-core's complete_iterable_value (not streamed) of a list of objects: each
        item as complete_list_item_value completes it, an awaitable or null item (or an
        exception) by graphql-core's own code with the info it would build."""
        item_type = field_plan.item_type
        assert item_type is not None
        is_awaitable = self.is_awaitable
        completed_results: list[Any] = []
        append = completed_results.append
        awaitable_indices: list[int] = []
        info: Any = None
        index = 0
        try:
            for index, item in enumerate(items):
                item_path = path.add_key(index, None)
                if item is None or isinstance(item, Exception) or is_awaitable(item):
                    if info is None:
                        info = self._info(field_plan, parent_type, path)
                    if is_awaitable(item):
                        append(
                            self.complete_awaitable_list_item_value(
                                item, item_type, details, info, item_path, None
                            )
                        )
                        awaitable_indices.append(index)
                    elif self.complete_list_item_value(
                        item, completed_results, item_type, details, info, item_path, None
                    ):
                        awaitable_indices.append(index)
                    continue
                try:
                    completed = self._complete_object(object_type, details, item_path, item)
                    if is_awaitable(completed):
                        append(self._await_completed(completed, item_type, details, item_path))
                        awaitable_indices.append(index)
                        continue
                    append(completed)
                except Exception as raw_error:
                    self.handle_field_error(raw_error, item_type, details, item_path)
                    append(None)
        except Exception:
            # As graphql-core: settle the items' pending work, and any awaitable items
            # still to come, in the background.
            pending = [completed_results[i] for i in awaitable_indices]
            pending.extend(item for item in items[index + 1 :] if is_awaitable(item))
            if pending:
                self.settle_in_background(pending)
            raise
        if not awaitable_indices:
            return completed_results
        return self._gather_items(completed_results, awaitable_indices)

    def _info(self, field_plan: FieldPlan, parent_type: GraphQLObjectType, path: Path) -> Any:
        assert field_plan.field_def is not None
        return self.build_resolve_info(
            field_plan.field_def, field_plan.field_nodes, parent_type, path
        )

    def _resolve_leaf(
        self,
        field_plan: FieldPlan,
        details: FieldDetailsList,
        parent_type: GraphQLObjectType,
        source: Any,
        path: Path | None,
        name: str,
    ) -> Any:
        """A resolver-less leaf field: its value, coerced; what `execute_field` gives."""
        field_def, read = field_plan.field_def, field_plan.read
        assert field_def is not None and field_plan.leaf is not None and read is not None
        try:
            result = read[0](source, read[1])
            if result is None:
                if field_plan.nullable:
                    return None
            elif result is USE_RESOLVER:
                field_path = Path(path, name, parent_type.name)
                return self.execute_field(parent_type, source, details, field_path, None)
            elif not self.is_awaitable(result) and not isinstance(result, Exception):
                coerced = field_plan.coerce(result)  # type: ignore[misc]
                if coerced is not None and coerced is not Undefined:
                    return coerced
        except Exception as raw_error:
            field_path = Path(path, name, parent_type.name)
            self.handle_field_error(raw_error, field_def.type, details, field_path)
            return None
        field_path = Path(path, name, parent_type.name)
        return self._complete_resolved(field_plan, details, parent_type, field_path, result)

    def _complete_resolved(
        self,
        field_plan: FieldPlan,
        details: FieldDetailsList,
        parent_type: GraphQLObjectType,
        path: Path,
        result: Any,
    ) -> Any:
        """graphql-core's completion of a resolved value, with the info it would build."""
        field_def = field_plan.field_def
        assert field_def is not None
        return_type = field_def.type
        info = self.build_resolve_info(field_def, field_plan.field_nodes, parent_type, path)
        try:
            if self.is_awaitable(result):
                return self.complete_awaitable_value(return_type, details, info, path, result, None)
            completed = self.complete_value(return_type, details, info, path, result, None)
            if self.is_awaitable(completed):
                return self._await_completed(completed, return_type, details, path)
        except Exception as raw_error:
            self.handle_field_error(raw_error, return_type, details, path)
            return None
        return completed

    def _arguments(self, field_plan: FieldPlan, details: FieldDetailsList) -> dict[str, Any]:
        if field_plan.static_args is not None:
            return field_plan.static_args
        if not field_plan.has_args:
            return {}
        key = id(field_plan)  # plans live as long as the document plan: ids stay unique
        args = self._request_args.get(key)
        if args is None:
            first = details[0]
            args = get_argument_values(
                field_plan.field_def,  # type: ignore[arg-type]
                first.node,
                self.variable_values,
                first.fragment_variable_values,
                self.hide_suggestions,
            )
            if first.fragment_variable_values is None and shareable(args):
                self._request_args[key] = args
        return args

    async def _await_completed(
        self,
        completed: Awaitable[Any],
        return_type: GraphQLOutputType,
        details: FieldDetailsList,
        path: Path,
    ) -> Any:
        try:
            return await completed
        except Exception as raw_error:
            self.handle_field_error(raw_error, return_type, details, path)
            return None

    async def _gather_fields(self, results: dict[str, Any], awaitable_fields: list[str]) -> Any:
        # As graphql-core's execute_fields: one awaitable is awaited, several gathered.
        if len(awaitable_fields) == 1:
            field = awaitable_fields[0]
            results[field] = await results[field]
        else:
            awaited = await gather_with_cancel(*(results[field] for field in awaitable_fields))
            results.update(zip(awaitable_fields, awaited, strict=True))
        return results

    async def _gather_items(self, completed: list[Any], awaitable_indices: list[int]) -> Any:
        # As graphql-core's complete_iterable_value: one awaited, several gathered.
        if len(awaitable_indices) == 1:
            index = awaitable_indices[0]
            completed[index] = await completed[index]
        else:
            awaited = await gather_with_cancel(*(completed[i] for i in awaitable_indices))
            for index, value in zip(awaitable_indices, awaited, strict=True):
                completed[index] = value
        return completed
