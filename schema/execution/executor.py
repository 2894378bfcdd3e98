"""graphql-core's executor, running each operation on its cached plan (schema.execution.plan).

Per field graphql-core looks the definition up, builds a `GraphQLResolveInfo`, coerces the
arguments and completes the value through the generic `complete_value` (non-null, list,
leaf, abstract, object), for every item of every list. Here, per field of a planned
operation:
- the definition, field nodes and literal arguments come from the plan (arguments that
  read variables are coerced once per request, not once per item);
- a resolver-less Strawberry field is read the way its resolver reads it (the configured
  default resolver, `getattr`, on its Python name), with no info built (that resolver
  ignores it) and no response path unless it fails;
- a leaf value that a resolver returned as it is (not awaitable, not None, not an
  exception) is coerced directly, as `complete_leaf_value` does; every other value (and a
  leaf whose coercion gives nothing) goes through graphql-core's own completion with the
  same info, path and error handling, so answers and errors are graphql-core's;
- an object value (a field's or a list item's) goes to `complete_object_value` directly.
The same resolvers run in the same order. Subscriptions and operations with fragment
variables are executed exactly as graphql-core does (no plan).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, ClassVar

from graphql import (
    GraphQLEnumType,
    GraphQLField,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLScalarType,
    Undefined,
)
from graphql.execution.collect_fields import FieldDetailsList, GroupedFieldSet
from graphql.execution.executor import to_nodes
from graphql.execution.values import get_argument_values
from graphql.pyutils import Path, gather_with_cancel
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext
from strawberry.schema.schema_converter import GraphQLCoreConverter
from strawberry.types.field import StrawberryField

from schema.execution.plan import (
    DocumentPlan,
    FieldPlan,
    PlanCache,
    has_variables,
    leaf_of,
    shareable,
)

# Bounded like the parser and validation caches (schema.schema's CACHE_SIZE): distinct
# operations come from clients.
PLAN_CACHE_SIZE = 512

# One selection set's fields, in order: (response name, field details, plan, fast).
Step = tuple[str, FieldDetailsList, FieldPlan, bool]


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
            read = _attribute_read(field_def)
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
            fast = (
                field_plan.read is not None
                and field_plan.leaf is not None
                and not field_plan.has_args
            )
            steps.append((name, details, field_plan, fast))
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
            for name, details, field_plan, fast in self._steps(
                plan, parent_type, grouped_field_set
            ):
                if fast and direct:
                    result = self._resolve_leaf(
                        field_plan, details, parent_type, source_value, path, name
                    )
                else:
                    result = self.execute_field(
                        parent_type, source_value, details, Path(path, name, type_name), None
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
            if read is not None:
                result = read[0](source, read[1])
            else:
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
            elif not self.is_awaitable(result) and not isinstance(result, Exception):
                coerced = field_plan.leaf.coerce_output_value(result)
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
