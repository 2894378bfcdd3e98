"""The plan's in-place completion of objects and lists of objects (schema.execution.executor)
answers as graphql-core does, errors and their order included, on a schema made to fail.

The application's schema rarely returns a null where it may not, an object of the wrong
type, or an awaitable list item: this one does all of that at several depths, in plain
(resolver-less) fields, which the plan completes itself, and in async resolvers, which it
leaves to graphql-core. Each query runs on graphql-core's executor (Strawberry's execution
context) and twice on the plan (built, then cached); data and errors must be equal.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import strawberry
from strawberry import relay
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

from schema.execution.executor import PlannedExecutor
from schema.lookahead import Later


class Boom(Exception):
    pass


async def _value(value: Any) -> Any:
    await asyncio.sleep(0)
    return value


async def _fail(message: str) -> Any:
    await asyncio.sleep(0)
    raise Boom(message)


@strawberry.interface
class Named:
    name: str


@strawberry.type
class Leaf(Named):  # an interface: Strawberry gives Leaf an is_type_of (an isinstance check)
    maybe: str | None = None

    @strawberry.field
    async def later(self, fail: bool = False) -> str:
        if fail:
            raise Boom(f"later of {self.name}")
        await asyncio.sleep(0)
        return self.name.upper()


@strawberry.type
class Other:
    name: str


@strawberry.type
class Node:
    name: str
    # Plain fields: completed in place by the plan.
    child: Leaf | None = None
    required: Leaf = strawberry.field(default_factory=lambda: Leaf(name="r"))
    items: list[Leaf | None] = strawberry.field(default_factory=list)
    strict_items: list[Leaf] = strawberry.field(default_factory=list)
    maybe_items: list[Leaf] | None = None
    # An awaitable in a plain field (schema.lookahead.Later): graphql-core awaits it.
    pending: Leaf | None = None
    pending_items: list[Leaf | None] = strawberry.field(default_factory=list)
    below: Node | None = None

    @strawberry.field
    async def deep(self, fail: bool = False) -> Node | None:
        await asyncio.sleep(0)
        if fail:
            raise Boom(f"deep of {self.name}")
        return self.below

    @strawberry.field
    async def deep_required(self) -> Node:
        await asyncio.sleep(0)
        return self.below  # type: ignore[return-value]  # may be None: non-null propagation


def _tree() -> Node:
    """Objects with nulls where allowed and where not, wrong types and awaitables."""
    wrong: Any = Other(name="wrong")
    none: Any = None
    leaf = Leaf(name="a", maybe="m")
    bottom = Node(
        name="bottom",
        child=leaf,
        required=none,  # non-null: nulls `below`
        items=[leaf, None, wrong],
        strict_items=[leaf],
    )
    middle = Node(
        name="middle",
        child=wrong,  # is_type_of fails: an error, null
        items=[Leaf(name="b"), None],
        strict_items=[Leaf(name="c"), none],  # a null item in [Leaf!]!: the list's parent
        maybe_items=[Leaf(name="d"), none],  # ... nulls this nullable list only
        pending=Later(lambda: _value(Leaf(name="p"))),  # type: ignore[arg-type]
        pending_items=[
            Later(lambda: _value(Leaf(name="q"))),  # type: ignore[list-item]
            None,
            Later(lambda: _fail("item q2")),  # type: ignore[list-item]
        ],
        below=bottom,
    )
    return Node(name="top", child=leaf, items=[leaf, leaf], strict_items=[leaf], below=middle)


@strawberry.type
class Query:
    @strawberry.field
    def tree(self) -> Node:
        return _tree()

    @strawberry.field
    def trees(self) -> list[Node | None]:
        return [_tree(), None, _tree()]

    @strawberry.field
    async def async_tree(self) -> Node | None:
        await asyncio.sleep(0)
        return _tree()

    @strawberry.field
    def many(self, n: int = 50) -> list[Leaf]:
        return [Leaf(name=f"l{i}") for i in range(n)]


LEAF = "name maybe"
NODE = f"""name child {{ {LEAF} }} items {{ {LEAF} }} maybeItems {{ name }}
  pending {{ name later }} pendingItems {{ name later }}"""

QUERIES = [
    f"{{ tree {{ {NODE} below {{ {NODE} }} }} }}",
    # Non-null propagation: Node.required (null at the bottom) and strictItems.
    f"{{ tree {{ {NODE} below {{ strictItems {{ name }} below {{ required {{ name }} }} }} }} }}",
    f"{{ tree {{ below {{ below {{ {NODE} strictItems {{ name }} }} }} }} }}",
    # Errors raised in async resolvers at several depths, beside plain completions.
    f"""{{ asyncTree {{ {NODE}
        deep {{ name items {{ name later(fail: true) }} deep(fail: true) {{ name }} }}
        below {{ deep {{ name required {{ name }} }} deepRequired {{ {NODE} }} }}
        deepRequired {{ deepRequired {{ deepRequired {{ name }} }} }} }} }}""",
    # Lists of objects holding nulls, wrong types, awaitables and failures.
    f"{{ trees {{ {NODE} below {{ {NODE} below {{ items {{ name later }} }} }} }} }}",
    "{ trees { below { pendingItems { later(fail: true) } strictItems { name } } } }",
    # Aliases and fragments over in-place fields.
    """{ tree { a: child { name } b: child { ...L } items { ...L x: later }
         ... on Node { below { c: child { name } } } } }
       fragment L on Leaf { name later }""",
]


async def _both(schema: strawberry.Schema, query: str) -> list[Any]:
    answers: list[Any] = []
    for executor in (StrawberryGraphQLCoreExecutionContext, PlannedExecutor, PlannedExecutor):
        schema.execution_context_class = executor
        result = await schema.execute(query)
        errors = [error.formatted for error in result.errors or []]
        answers.append((result.data, errors))
    return answers


@pytest.mark.parametrize("query", QUERIES)
async def test_in_place_completion_answers_as_graphql_core(query: str) -> None:
    schema = strawberry.Schema(query=Query)
    stock, cold, warm = await _both(schema, query)
    assert cold == stock
    assert warm == stock


async def test_queries_meet_the_cases() -> None:
    """The corpus reaches what it is written for (a guard against a schema that fails
    nowhere): errors with paths, null propagation to a parent, awaited plain fields."""
    schema = strawberry.Schema(query=Query)
    found: list[str] = []
    for query in QUERIES:
        (data, errors), _, _ = await _both(schema, query)
        found.extend(str(error["message"]) for error in errors)
        assert data is not None
    text = "\n".join(found)
    assert "Cannot return null for non-nullable field Node.required." in text
    assert "Expected value of type 'Leaf' but got" in text
    assert "item q2" in text and "later of" in text and "deep of" in text
    assert "Cannot return null for non-nullable field Query.deepRequired" not in text


async def test_plan_builds_no_resolve_info_for_plain_objects(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """50 objects in a plain list with plain fields: graphql-core builds a resolve info for
    the list and one per item's completion; the plan completes them with none."""
    schema = strawberry.Schema(query=Query, execution_context_class=PlannedExecutor)
    built: list[str] = []
    original = PlannedExecutor.build_resolve_info

    def counting(self: Any, field_def: Any, field_nodes: Any, parent_type: Any, path: Any) -> Any:
        built.append(f"{parent_type.name}.{field_nodes[0].name.value}")
        return original(self, field_def, field_nodes, parent_type, path)

    monkeypatch.setattr(PlannedExecutor, "build_resolve_info", counting)
    query = "{ many { name maybe } tree { child { name } items { name } strictItems { name } } }"
    for _ in range(2):
        built.clear()
        result = await schema.execute(query)
        assert result.errors is None and result.data is not None
        assert len(result.data["many"]) == 50
        assert built == ["Query.many", "Query.tree"]  # the resolvers; plain objects: none


@strawberry.type
class PlainNode(relay.Node):
    code: relay.NodeID[str]


@strawberry.type
class OwnIdNode(relay.Node):
    code: relay.NodeID[str]

    @classmethod
    def resolve_id(cls, root: OwnIdNode, *, info: strawberry.Info) -> str:
        return f"own-{root.code}"


@strawberry.type
class NodeQuery:
    @strawberry.field
    def nodes(self) -> list[relay.Node | None]:
        return [PlainNode(code="1"), OwnIdNode(code="2"), PlainNode(code="3")]

    @strawberry.field
    def plain(self) -> list[PlainNode]:
        return [PlainNode(code=str(i)) for i in range(3)]

    @strawberry.field
    def own(self) -> OwnIdNode:
        return OwnIdNode(code="x")


async def test_relay_ids_as_their_resolver_gives_them() -> None:
    """The plan reads Strawberry's relay id itself, except for a node class with its own
    resolve_id (whose resolver then runs): the same ids either way."""
    schema = strawberry.Schema(query=NodeQuery)
    query = "{ nodes { id __typename } plain { id } own { id } }"
    stock, cold, warm = await _both(schema, query)
    assert cold == stock and warm == stock
    data, errors = stock
    assert errors == []
    assert relay.GlobalID.from_id(data["own"]["id"]).node_id == "own-x"
    assert relay.GlobalID.from_id(data["plain"][1]["id"]) == relay.GlobalID("PlainNode", "1")
