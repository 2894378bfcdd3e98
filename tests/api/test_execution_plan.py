"""The cached execution plan (schema.execution) answers exactly as graphql-core does.

A differential test: a corpus of queries (written here to cover fragments, aliases,
variables, `@include`/`@skip`, lists, nulls, abstract types and errors, plus documents
hypothesis-graphql generates over the committed schema) runs over HTTP through the ASGI
app, against a seeded workspace in the real Postgres, once on graphql-core's own executor
(Strawberry's execution context) and twice on the plan (the first request builds it, the
second runs on the cached one); the response bodies must be the same bytes.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis_graphql import Mode
from hypothesis_graphql import strategies as gql
from starlette.applications import Starlette
from starlette.routing import Route
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

from schema.execution.executor import PlannedExecutor
from schema.schema import SmartContentSchema, schema_sdl
from tests.api.test_fuzz import SCALARS
from tests.helpers import Account, create_workspace, register

GENERATED = 60


@dataclass(frozen=True)
class Seeded:
    account: Account
    workspace: str
    contents: list[str]
    campaign: str


def _schema_of(app: Starlette) -> SmartContentSchema:
    for route in app.routes:
        if isinstance(route, Route) and route.path == "/graphql":
            schema = route.endpoint.schema  # type: ignore[attr-defined]
            assert isinstance(schema, SmartContentSchema)
            return schema
    raise AssertionError("no /graphql route")


@contextmanager
def stock_execution(schema: SmartContentSchema) -> Iterator[None]:
    """graphql-core's own executor (as Strawberry runs it) for the duration."""
    assert schema.execution_context_class is PlannedExecutor
    schema.execution_context_class = StrawberryGraphQLCoreExecutionContext
    try:
        yield
    finally:
        schema.execution_context_class = PlannedExecutor


async def _post(
    client: httpx.AsyncClient, headers: dict[str, str], body: dict[str, Any], n: int
) -> bytes:
    # A fixed request id: errors carry it, and the two answers must be comparable bytes.
    response = await client.post(
        "/graphql", json=body, headers={**headers, "X-Request-ID": f"execution-plan-{n}"}
    )
    return response.content


async def _mutation(
    client: httpx.AsyncClient, account: Account, query: str, **variables: Any
) -> Any:
    response = await client.post(
        "/graphql", json={"query": query, "variables": variables}, headers=account.headers
    )
    body = response.json()
    assert "errors" not in body, body
    payload = next(iter(body["data"].values()))
    assert payload["errors"] == [], payload
    return payload


@pytest.fixture
async def seeded(client: httpx.AsyncClient) -> Seeded:
    account = await register(client)
    workspace = await create_workspace(client, account)
    campaign = await _mutation(
        client,
        account,
        'mutation($ws: ID!) { createCampaign(workspaceId: $ws, name: "Spring")'
        " { campaign { id } errors { code } } }",
        ws=workspace,
    )
    contents: list[str] = []
    for i in range(6):
        item: dict[str, Any] = {"workspaceId": workspace, "title": f"Item {i}", "body": f"Body {i}"}
        if i % 2 == 0:  # the others have no campaign: null objects in the list
            item["campaignId"] = campaign["campaign"]["id"]
        if i % 3 == 0:
            item["tags"] = ["a", f"t{i}"]
        created = await _mutation(
            client,
            account,
            "mutation($i: CreateContentInput!) { createContent(input: $i)"
            " { content { id } errors { code } } }",
            i=item,
        )
        content_id = created["content"]["id"]
        contents.append(content_id)
        for platform in ("LINKEDIN", "X")[: i % 3]:
            await _mutation(
                client,
                account,
                "mutation($id: ID!, $p: Platform!) { createVariation(contentId: $id,"
                " platform: $p) { errors { code } } }",
                id=content_id,
                p=platform,
            )
        if i % 2:
            await _mutation(
                client,
                account,
                'mutation($id: ID!) { addComment(contentId: $id, body: "Nice")'
                " { errors { code } } }",
                id=content_id,
            )
    return Seeded(account, workspace, contents, campaign["campaign"]["id"])


PAGE_FIELDS = """
fragment Item on Content {
  id title body status createdAt tags deletedAt version embedded
  author { name ...Who } campaign { name id }
  variations { platform body ... on ContentVariation { id } }
  commentCount
}
fragment Who on User { id email }
"""


def _corpus(s: Seeded) -> list[dict[str, Any]]:
    ws, first, campaign = s.workspace, s.contents[0], s.campaign
    page = (
        "query($ws: ID!) { contents(workspaceId: $ws, first: 50) { edges { node { ...Item } } } }"
    )
    directives = """query($ws: ID!, $withBody: Boolean!, $skipAuthor: Boolean = false) {
      contents(workspaceId: $ws) { edges { cursor node {
        id t: title body @include(if: $withBody)
        author @skip(if: $skipAuthor) { name }
        ... on Content @include(if: $withBody) { again: body status }
        ...Item @skip(if: true)
      } } pageInfo { hasNextPage endCursor } } }"""
    bodies: list[dict[str, Any]] = [
        {"query": "{ __typename }"},
        {"query": "query Me { me { id email name __typename } }"},
        {"query": page + PAGE_FIELDS, "variables": {"ws": ws}},
        {"query": PAGE_FIELDS + page, "variables": {"ws": ws}, "operationName": None},
        {
            "query": """query($ws: ID!, $n: Int!) {
              a: contents(workspaceId: $ws, first: $n, orderBy: CREATED_ASC) {
                edges { node { id title } } }
              b: contents(workspaceId: $ws, first: 2) { edges { node { id title: body } } }
              w: workspace(id: $ws) { id name __typename } }""",
            "variables": {"ws": ws, "n": 3},
        },
        *(
            {"query": directives + PAGE_FIELDS, "variables": {"ws": ws, **values}}
            for values in (
                {"withBody": True},
                {"withBody": False},
                {"withBody": True, "skipAuthor": True},
                {"withBody": False, "skipAuthor": None},
            )
        ),
        {
            "query": """query($id: ID!, $c: ID!) {
              node(id: $id) { __typename id ... on Content { title campaign { name } } }
              other: node(id: $c) { __typename ... on Campaign { name } ... on Content { title } }
            }""",
            "variables": {"id": first, "c": campaign},
        },
        {
            "query": """query($id: ID!) { content(id: $id) { id title
              comments { body author { name } } versions { version title }
              variations { platform body } warnings { __typename } media { id } } }""",
            "variables": {"id": first},
        },
        # Errors: a bad id (the root's non-null field nulls the data), a missing item, an
        # unknown workspace inside a list of aliases, a non-null root beside a good one.
        {"query": '{ content(id: "nope") { id } }'},
        {
            "query": "query($id: ID!) { content(id: $id) { id } }",
            "variables": {"id": "Q29udGVudDox"},
        },
        {
            "query": """query($ws: ID!) { ok: contents(workspaceId: $ws, first: 1) {
              edges { node { id } } } bad: workspace(id: "V29ya3NwYWNlOjE=") { id } }""",
            "variables": {"ws": ws},
        },
        {
            "query": """query($ws: ID!) { workspaces { edges { node { id name } } }
              me { id } nodeish: node(id: $ws) { id } }""",
            "variables": {"ws": ws},
        },
        {
            "query": 'query($f: Int!) { contents(workspaceId: "x", first: $f) { edges { cursor } } }',
            "variables": {"f": 1},
        },
        {
            "query": """query($ws: ID!, $p: Platform) { contents(workspaceId: $ws, first: 3) {
              edges { node { id predictedEngagement(platform: $p) { __typename } } } } }""",
            "variables": {"ws": ws, "p": "LINKEDIN"},
        },
        # Literal arguments (coerced once per document), an input object among them.
        {
            "query": f"""{{ contents(workspaceId: "{ws}", first: 4, filter: {{tags: ["a"]}})
              {{ edges {{ node {{ id tags predictedEngagement(platform: X) {{ __typename }}
              }} }} }} }}"""
        },
        # A mutation refused with a user error writes nothing: the serial root path.
        {
            "query": """mutation($id: ID!) { updateContent(id: $id, input: {title: "T"},
              expectedVersion: 99) { content { id } errors { code field } } }""",
            "variables": {"id": first},
        },
        # Variables that fail to coerce: graphql-core's request errors.
        {"query": page + PAGE_FIELDS, "variables": {"ws": 5}},
    ]
    return bodies


async def _compare(
    client: httpx.AsyncClient,
    schema: SmartContentSchema,
    headers: dict[str, str],
    bodies: list[dict[str, Any]],
) -> None:
    for n, body in enumerate(bodies):
        with stock_execution(schema):
            expected = await _post(client, headers, body, n)
        cold = await _post(client, headers, body, n)
        warm = await _post(client, headers, body, n)
        assert cold == expected, (body, expected, cold)
        assert warm == expected, (body, expected, warm)


async def test_plan_answers_the_corpus_as_graphql_core(
    app: Starlette, client: httpx.AsyncClient, seeded: Seeded
) -> None:
    schema = _schema_of(app)
    bodies = _corpus(seeded)
    await _compare(client, schema, seeded.account.headers, bodies)
    # The plans were used: the page's operation has one, with its fields planned.
    cached = sum(len(entry.by_values) for entry in PlannedExecutor.plans._entries.values())
    assert cached >= len(bodies) - 4


@pytest.mark.parametrize("mode", [Mode.POSITIVE, Mode.NEGATIVE])
async def test_plan_answers_generated_queries_as_graphql_core(
    app: Starlette, client: httpx.AsyncClient, seeded: Seeded, mode: Mode
) -> None:
    strategy = gql.queries(schema_sdl(), custom_scalars=SCALARS, mode=mode)
    documents: list[str] = []

    @settings(
        max_examples=GENERATED,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        derandomize=True,
        database=None,
    )
    @given(document=strategy)
    def collect(document: str) -> None:
        documents.append(document)

    collect()
    assert len(documents) >= GENERATED // 2
    bodies = [{"query": document} for document in documents]
    await _compare(client, _schema_of(app), seeded.account.headers, bodies)
