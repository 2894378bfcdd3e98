"""GraphQL over HTTP: health, errors with codes, limits, masking, GraphiQL, CORS."""

from __future__ import annotations

import asyncio
import base64
import json

import httpx
import pytest

from app.services.ops import health
from tests.helpers import create_workspace, gql, ping, register


async def _still_serving(client: httpx.AsyncClient) -> None:
    body = await gql(client, "{ health { database redis version } }")
    assert body["data"]["health"]["database"] == "OK"


async def test_health_reports_both_dependencies_ok(client: httpx.AsyncClient) -> None:
    body = await gql(client, "{ health { database redis version } }")
    assert body == {"data": {"health": {"database": "OK", "redis": "OK", "version": "0.1.0"}}}


async def test_request_id_is_echoed_and_generated(client: httpx.AsyncClient) -> None:
    mine = await client.post(
        "/graphql",
        json={"query": "{ health { version } }"},
        headers={"X-Request-ID": "req-12345678"},
    )
    assert mine.headers["x-request-id"] == "req-12345678"
    generated = await client.post("/graphql", json={"query": "{ health { version } }"})
    assert len(generated.headers["x-request-id"]) == 32
    # A hostile id (header injection, huge) is replaced, not echoed.
    hostile = await client.post(
        "/graphql",
        json={"query": "{ health { version } }"},
        headers={"X-Request-ID": "a b<script>"},
    )
    assert hostile.headers["x-request-id"] != "a b<script>"


async def test_malformed_json_is_a_clear_400(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/graphql", content=b'{"query": "{ health', headers={"content-type": "application/json"}
    )
    assert response.status_code == 400
    error = response.json()["errors"][0]
    assert "JSON" in error["message"]
    assert error["extensions"]["code"] == "BAD_REQUEST"
    assert error["extensions"]["requestId"] == response.headers["x-request-id"]
    await _still_serving(client)


async def test_unknown_operation_name_is_rejected(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/graphql",
        json={"query": "query A { health { version } }", "operationName": "Nope"},
    )
    assert response.status_code == 400
    assert "Nope" in response.json()["errors"][0]["message"]
    await _still_serving(client)


async def test_unknown_field_is_a_validation_error(client: httpx.AsyncClient) -> None:
    body = await gql(client, "{ health { nope } }")
    error = body["errors"][0]
    assert "nope" in error["message"]
    assert error["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"


async def test_syntax_error_is_a_parse_error(client: httpx.AsyncClient) -> None:
    body = await gql(client, "{ health { ")
    assert body["errors"][0]["extensions"]["code"] == "GRAPHQL_PARSE_FAILED"


async def test_twenty_level_deep_query_is_refused(client: httpx.AsyncClient) -> None:
    # Introspection types nest without end: the classic depth attack. 20 levels deep.
    query = "query Deep { __schema { types { fields { type { " + "ofType { " * 16
    query += "name" + " }" * 16 + " } } } } }"
    body = await gql(client, query)
    assert body.get("data") is None
    assert [e["extensions"]["code"] for e in body["errors"]] == ["QUERY_TOO_COMPLEX"]
    assert "depth" in body["errors"][0]["message"]
    await _still_serving(client)


async def test_graphiql_introspection_query_fits_the_limits(client: httpx.AsyncClient) -> None:
    from graphql import get_introspection_query

    body = await gql(client, get_introspection_query(descriptions=True))
    assert "errors" not in body
    assert body["data"]["__schema"]["queryType"]["name"] == "Query"


async def test_huge_token_count_is_refused(client: httpx.AsyncClient) -> None:
    body = await gql(client, "{ health { " + "version " * 5000 + "} }")
    assert [e["extensions"]["code"] for e in body["errors"]] == ["QUERY_TOO_COMPLEX"]


async def test_one_thousand_aliases_are_refused(client: httpx.AsyncClient) -> None:
    fields = " ".join(f"a{i}: health {{ version }}" for i in range(1000))
    body = await gql(client, "{ " + fields + " }")
    assert body.get("data") is None
    assert {e["extensions"]["code"] for e in body["errors"]} == {"QUERY_TOO_COMPLEX"}
    await _still_serving(client)


async def test_alias_limit_applies_below_the_token_limit(client: httpx.AsyncClient) -> None:
    fields = " ".join(f"a{i}: health {{ version }}" for i in range(40))
    body = await gql(client, "{ " + fields + " }")
    assert [e["extensions"]["code"] for e in body["errors"]] == ["QUERY_TOO_COMPLEX"]
    assert "aliases" in body["errors"][0]["message"]


async def test_five_megabyte_body_is_refused_with_413(client: httpx.AsyncClient) -> None:
    payload = json.dumps({"query": "{ health { version } }", "variables": {"pad": "x" * 5_000_000}})
    response = await client.post(
        "/graphql", content=payload.encode(), headers={"content-type": "application/json"}
    )
    assert response.status_code == 413
    assert response.json()["errors"][0]["extensions"]["code"] == "PAYLOAD_TOO_LARGE"
    await _still_serving(client)


async def test_streamed_body_without_length_is_also_capped(client: httpx.AsyncClient) -> None:
    async def chunks():  # type: ignore[no-untyped-def]
        for _ in range(50):
            yield b"x" * 100_000

    response = await client.post(
        "/graphql", content=chunks(), headers={"content-type": "application/json"}
    )
    assert response.status_code == 413
    await _still_serving(client)


async def test_too_many_errors_are_capped(client: httpx.AsyncClient) -> None:
    fields = " ".join(f"f{i}: nope{i}" for i in range(25))
    body = await gql(client, "{ " + fields + " }")
    assert len(body["errors"]) == 21  # 20 plus one saying how many were left out
    assert "more not shown" in body["errors"][-1]["message"]


async def test_internal_errors_are_masked_with_request_id(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(*_args: object) -> None:
        raise RuntimeError("SELECT secret FROM passwords -- at /srv/app.py line 3")

    monkeypatch.setattr(health, "check", broken)
    response = await client.post("/graphql", json={"query": "{ health { version } }"})
    text = response.text
    assert "secret" not in text and "Traceback" not in text and "app.py" not in text
    error = response.json()["errors"][0]
    assert error["extensions"]["code"] == "INTERNAL_SERVER_ERROR"
    assert error["extensions"]["requestId"] == response.headers["x-request-id"]


async def test_slow_operation_hits_execution_timeout(
    app: object, client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def slow(*_args: object) -> None:
        await asyncio.sleep(5)

    monkeypatch.setattr(health, "check", slow)
    monkeypatch.setattr(app.state.schema, "execution_timeout", 0.2)  # type: ignore[attr-defined]
    body = await gql(client, "{ health { version } }")
    assert body["data"] is None
    assert body["errors"][0]["extensions"]["code"] == "TIMEOUT"


async def test_get_queries_are_off_by_default(client: httpx.AsyncClient) -> None:
    response = await client.get(
        "/graphql",
        params={"query": "{ health { version } }"},
        headers={"accept": "application/json"},
    )
    assert response.status_code in (400, 405)
    assert response.json()["errors"][0]["extensions"]["code"] == "BAD_REQUEST"


async def test_graphiql_is_served_to_browsers(client: httpx.AsyncClient) -> None:
    response = await client.get("/graphql", headers={"accept": "text/html"})
    assert response.status_code == 200
    assert "graphiql" in response.text.lower()


async def test_cors_allows_only_listed_origins(client: httpx.AsyncClient) -> None:
    preflight = {
        "access-control-request-method": "POST",
        "access-control-request-headers": "content-type,authorization",
    }
    ok = await client.options(
        "/graphql", headers={"origin": "https://app.example.com", **preflight}
    )
    assert ok.status_code == 200
    assert ok.headers["access-control-allow-origin"] == "https://app.example.com"
    bad = await client.options("/graphql", headers={"origin": "https://evil.example", **preflight})
    assert "access-control-allow-origin" not in bad.headers


async def test_node_resolves_a_job_and_reports_bad_ids(client: httpx.AsyncClient) -> None:
    owner = await register(client)
    workspace_id = await create_workspace(client, owner)
    job = (await ping(client, owner, workspace_id))["job"]
    assert job["kind"] == "ping"
    body = await gql(
        client,
        "query($id: ID!) { node(id: $id) { id ... on Job { kind status } } }",
        {"id": job["id"]},
        headers=owner.headers,
    )
    assert body["data"]["node"] == {"id": job["id"], "kind": "ping", "status": "QUEUED"}
    stranger = await register(client)
    hidden = await gql(
        client,
        "query($id: ID!) { node(id: $id) { id } }",
        {"id": job["id"]},
        headers=stranger.headers,
    )
    assert hidden["data"]["node"] is None, "another tenant's job does not exist for you"
    missing = await gql(
        client,
        'query { node(id: "Sm9iOjAwMDAwMDAwLTAwMDAtMDAwMC0wMDAwLTAwMDAwMDAwMDAwMA==") { id } }',
    )
    assert missing["data"]["node"] is None
    malformed = await gql(client, 'query { node(id: "not-a-global-id") { id } }')
    assert malformed["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    unknown_type = base64.b64encode(b"Nope:1").decode()
    wrong = await gql(client, "query($id: ID!) { node(id: $id) { id } }", {"id": unknown_type})
    assert wrong["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


async def test_ping_validates_input_as_user_errors(client: httpx.AsyncClient) -> None:
    owner = await register(client)
    workspace_id = await create_workspace(client, owner)
    payload = await ping(client, owner, workspace_id, message="x" * 501, delay_ms=999999)
    assert payload["job"] is None
    assert {(e["field"], e["code"]) for e in payload["errors"]} == {
        ("message", "TOO_LONG"),
        ("delayMs", "OUT_OF_RANGE"),
    }
