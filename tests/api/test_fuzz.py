"""Fuzzing the schema's inputs: generated queries and mutations, valid and invalid, never get
an internal error or a 5xx (issue 9's acceptance: a bounded number of cases per run).

Documents come from hypothesis-graphql over the committed schema; custom scalars get values
of their own shape, and some of junk. Each runs as a signed-in member of a workspace, over
HTTP through the ASGI app, with the real Postgres and Redis.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis_graphql import Mode, nodes
from hypothesis_graphql import strategies as gql

from schema.schema import schema_sdl
from tests.helpers import create_workspace, register

SCHEMA = schema_sdl()
EXAMPLES = 60  # per strategy; the whole file stays well under a minute

_text = st.text(max_size=40)
SCALARS = {
    "DateTime": st.one_of(st.datetimes().map(lambda d: d.isoformat()), _text).map(nodes.String),
    "Date": st.one_of(st.dates().map(str), _text).map(nodes.String),
    "Decimal": st.one_of(st.decimals(allow_nan=False).map(str), _text).map(nodes.String),
    "JSON": _text.map(nodes.String),
    "Upload": st.just(nodes.Null),
    "UUID": st.one_of(st.uuids().map(str), _text).map(nodes.String),
}


def _check(response: httpx.Response) -> None:
    assert response.status_code < 500, response.text
    if not response.content:
        return
    body: dict[str, Any] = response.json()
    codes = [(e.get("extensions") or {}).get("code") for e in body.get("errors") or []]
    assert "INTERNAL_SERVER_ERROR" not in codes, (response.request.content, body)


@pytest.fixture
async def member(client: httpx.AsyncClient) -> dict[str, str]:
    account = await register(client)
    await create_workspace(client, account)
    return account.headers


@pytest.mark.parametrize(
    "kind, mode",
    [("query", Mode.POSITIVE), ("query", Mode.NEGATIVE), ("mutation", Mode.POSITIVE)],
)
async def test_generated_operations_never_fail_internally(
    client: httpx.AsyncClient, member: dict[str, str], kind: str, mode: Mode
) -> None:
    make = gql.queries if kind == "query" else gql.mutations
    strategy = make(SCHEMA, custom_scalars=SCALARS, mode=mode)
    documents: list[str] = []

    # Hypothesis draws the documents (synchronously); the async client then sends each.
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        derandomize=True,
        database=None,
    )
    @given(document=strategy)
    def collect(document: str) -> None:
        documents.append(document)

    collect()
    assert len(documents) >= EXAMPLES // 2, "the strategy must produce cases"
    for document in documents:
        _check(await client.post("/graphql", json={"query": document}, headers=member))
