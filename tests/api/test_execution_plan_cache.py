"""The plan cache (schema.execution.plan): bounded, keyed by the operation node and the
values of the variables its `@include`/`@skip` read, never shared between documents."""

from __future__ import annotations

from typing import Any

import pytest
from graphql import FragmentDefinitionNode, OperationDefinitionNode, parse

from schema.execution.plan import PLANS_PER_OPERATION, DocumentPlan, PlanCache
from schema.schema import build_schema

pytestmark = pytest.mark.no_db
SCHEMA = build_schema()._schema


def _operation(
    text: str,
) -> tuple[OperationDefinitionNode, dict[str, FragmentDefinitionNode]]:
    document = parse(text)
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    fragments = {
        d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
    }
    return operations[0], fragments


def _plan(cache: PlanCache, text_or_node: Any, variables: dict[str, Any] | None = None) -> Any:
    operation, fragments = (
        _operation(text_or_node) if isinstance(text_or_node, str) else text_or_node
    )
    return cache.plan(SCHEMA, operation, fragments, variables or {})


def test_same_operation_node_reuses_its_plan() -> None:
    cache = PlanCache(8)
    node = _operation("{ me { id } }")
    first = _plan(cache, node)
    assert isinstance(first, DocumentPlan)
    assert _plan(cache, node) is first


def test_a_different_document_never_reuses_a_plan() -> None:
    cache = PlanCache(8)
    # The same text parsed twice is two documents: each gets its own plan.
    first = _plan(cache, "{ me { id } }")
    second = _plan(cache, "{ me { id } }")
    assert first is not second
    # Another schema executing the same operation gets its own plan too.
    node = _operation("{ me { id } }")
    mine = _plan(cache, node)
    other_schema = build_schema()._schema
    assert cache.plan(other_schema, node[0], node[1], {}) is not mine


def test_the_cache_is_bounded_and_evicts_the_least_recent() -> None:
    cache = PlanCache(2)
    a, b, c = (_operation("{ me { id } }") for _ in range(3))
    plan_a = _plan(cache, a)
    _plan(cache, b)
    assert _plan(cache, a) is plan_a  # a is now the most recent
    _plan(cache, c)  # evicts b
    assert len(cache) == 2
    assert _plan(cache, a) is plan_a
    # b's plan was dropped: a new one is built (and the node kept, so its id stays its own).
    assert len(cache) == 2


def test_plans_are_kept_per_value_of_the_directive_variables() -> None:
    cache = PlanCache(8)
    node = _operation(
        "query($a: Boolean!, $b: Boolean = false, $n: Int) {"
        " me { id name @include(if: $a) ...F } workspaces(first: $n) { edges { cursor } } }"
        " fragment F on User { email @skip(if: $b) }"
    )
    on = _plan(cache, node, {"a": True, "b": False, "n": 1})
    off = _plan(cache, node, {"a": False, "b": False, "n": 1})
    assert on is not off
    # A variable no directive reads does not split the plan.
    assert _plan(cache, node, {"a": True, "b": False, "n": 7}) is on
    assert _plan(cache, node, {"a": True, "b": True, "n": 1}) not in (on, off)


def test_directive_values_per_operation_are_bounded() -> None:
    cache = PlanCache(8)
    node = _operation("query($n: Int) { me { id @include(if: $n) } }")
    plans = [_plan(cache, node, {"n": i}) for i in range(PLANS_PER_OPERATION + 1)]
    assert len({id(plan) for plan in plans}) == PLANS_PER_OPERATION + 1
    # The first value was evicted: planning it again gives a new plan.
    assert _plan(cache, node, {"n": 0}) is not plans[0]
    assert _plan(cache, node, {"n": PLANS_PER_OPERATION}) is plans[-1]


def test_subscriptions_and_fragment_variables_are_not_planned() -> None:
    cache = PlanCache(8)
    assert _plan(cache, 'subscription { jobEvents(id: "x") { __typename } }') is None
    # Fragment arguments (an experimental parser option): arguments depend on the spread.
    document = parse(
        "{ me { ...F(x: 1) } } fragment F($x: Int) on User { id }",
        experimental_fragment_arguments=True,
    )
    operation, fragment = document.definitions
    assert isinstance(operation, OperationDefinitionNode)
    assert isinstance(fragment, FragmentDefinitionNode)
    assert cache.plan(SCHEMA, operation, {"F": fragment}, {}) is None
