"""GraphQL over HTTP (https://graphql.github.io/graphql-over-http/draft/): one test per
server audit of graphql-http (its ids in the names), plus the status codes the spec asks for
(405 + Allow, 406, 415) and the `application/graphql-response+json` media type.

Longer than 400 lines because it has one test per graphql-http audit item, named by
the audit's id, so the list can be read against the audit.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from tests.conftest import Servers, make_settings, running_app

GQL = "application/graphql-response+json"
JSON_TYPE = "application/json"


async def post(
    client: httpx.AsyncClient,
    body: object | None = None,
    *,
    accept: str | None = None,
    content_type: str | None = JSON_TYPE,
    raw: bytes | None = None,
) -> httpx.Response:
    headers = {}
    if accept is not None:
        headers["accept"] = accept
    if content_type is not None:
        headers["content-type"] = content_type
    content = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    return await client.post("/graphql", content=content, headers=headers)


def media(response: httpx.Response) -> str:
    return response.headers["content-type"].split(";")[0].strip()


def errors_of(response: httpx.Response) -> list[dict[str, Any]]:
    body: dict[str, Any] = response.json()
    return list(body["errors"])


# Media types


async def test_22EB_accepts_graphql_response_json_and_matches_it(client: httpx.AsyncClient) -> None:
    response = await post(client, {"query": "{ __typename }"}, accept=GQL)
    assert response.status_code == 200
    assert response.headers["content-type"] == f"{GQL}; charset=utf-8"
    assert response.json() == {"data": {"__typename": "Query"}}


async def test_4655_accepts_application_json_and_matches_it(client: httpx.AsyncClient) -> None:
    response = await post(client, {"query": "{ __typename }"}, accept=JSON_TYPE)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json; charset=utf-8"


async def test_47DE_star_star_gets_application_json(client: httpx.AsyncClient) -> None:
    response = await post(client, {"query": "{ __typename }"}, accept="*/*")
    assert response.status_code == 200
    assert media(response) == JSON_TYPE


async def test_80D8_no_accept_means_application_json(client: httpx.AsyncClient) -> None:
    response = await post(client, {"query": "{ __typename }"})
    assert response.status_code == 200
    assert media(response) == JSON_TYPE


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        (f"{GQL}, application/json;q=0.9", GQL),
        (f"application/json, {GQL};q=0.5", JSON_TYPE),
        (f"application/json;q=0.2, {GQL};q=0.8", GQL),
        ("application/*", JSON_TYPE),
        (f"text/html;q=1, {GQL};q=0.1", GQL),
    ],
)
async def test_the_highest_priority_supported_type_wins(
    client: httpx.AsyncClient, accept: str, expected: str
) -> None:
    response = await post(client, {"query": "{ __typename }"}, accept=accept)
    assert response.status_code == 200
    assert media(response) == expected


async def test_an_accept_header_allowing_no_json_type_gets_406(client: httpx.AsyncClient) -> None:
    response = await post(client, {"query": "{ __typename }"}, accept="text/csv")
    assert response.status_code == 406
    assert media(response) == JSON_TYPE
    assert GQL in errors_of(response)[0]["message"]


async def test_82A3_BF61_78D5_utf8_in_and_out(client: httpx.AsyncClient) -> None:
    response = await post(
        client,
        {"query": '{ __type(name: "Run🏃Swim🏊") { name } }'},
        content_type="application/json; charset=utf-8",
    )
    assert response.status_code == 200
    response.content.decode("utf-8")
    assert response.headers["content-type"].endswith("charset=utf-8")
    assert response.json() == {"data": {"__type": None}}


async def test_a_json_body_in_another_charset_is_415(client: httpx.AsyncClient) -> None:
    response = await post(
        client, {"query": "{ __typename }"}, content_type="application/json; charset=latin-1"
    )
    assert response.status_code == 415
    assert "UTF-8" in errors_of(response)[0]["message"]


# Request


async def test_2C94_03D4_accepts_json_posts(client: httpx.AsyncClient) -> None:
    response = await post(client, {"query": "{ __typename }"})
    assert response.status_code == 200


async def test_9ABE_post_without_content_type_is_415(client: httpx.AsyncClient) -> None:
    response = await post(client, {"query": "{ __typename }"}, content_type=None)
    assert response.status_code == 415
    assert "Content-Type" in errors_of(response)[0]["message"]


@pytest.mark.parametrize("content_type", ["application/graphql", "application/xml", "image/png"])
async def test_unsupported_content_types_are_415(
    client: httpx.AsyncClient, content_type: str
) -> None:
    response = await post(client, {"query": "{ __typename }"}, content_type=content_type)
    assert response.status_code == 415
    assert "application/json" in errors_of(response)[0]["message"]


async def test_A5BF_post_without_body_is_400(client: httpx.AsyncClient) -> None:
    response = await post(client, None)
    assert response.status_code == 400
    assert errors_of(response)[0]["extensions"]["code"] == "BAD_REQUEST"


@pytest.mark.parametrize("method", ["PUT", "PATCH", "DELETE"])
async def test_unsupported_methods_are_405_with_allow(
    client: httpx.AsyncClient, method: str
) -> None:
    response = await client.request(method, "/graphql", json={"query": "{ __typename }"})
    assert response.status_code == 405
    assert response.headers["allow"] == "GET, POST"
    assert errors_of(response)[0]["extensions"]["code"] == "BAD_REQUEST"


async def test_get_is_405_allow_post_while_get_queries_are_off(client: httpx.AsyncClient) -> None:
    response = await client.get("/graphql", params={"query": "{ __typename }"})
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"
    assert "ALLOW_GET_QUERIES" in errors_of(response)[0]["message"]


@pytest.fixture
async def get_client(servers: Servers) -> Any:
    async with (
        running_app(make_settings(servers, allow_get_queries=True)) as app,
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client,
    ):
        yield client


async def test_5A70_get_queries_when_enabled(get_client: httpx.AsyncClient) -> None:
    response = await get_client.get("/graphql", params={"query": "{ __typename }"})
    assert response.status_code == 200
    assert response.json() == {"data": {"__typename": "Query"}}


async def test_9C48_mutations_over_get_are_405_allow_post(get_client: httpx.AsyncClient) -> None:
    response = await get_client.get(
        "/graphql",
        params={"query": 'mutation { requestPasswordReset(email: "a@example.com") { success } }'},
        headers={"accept": GQL},
    )
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"
    assert "POST" in errors_of(response)[0]["message"]


@pytest.mark.parametrize("accept", [GQL, JSON_TYPE])
async def test_D6D5_6A70_url_encoded_variables_in_gets(
    get_client: httpx.AsyncClient, accept: str
) -> None:
    response = await get_client.get(
        "/graphql",
        params={
            "query": "query Type($name: String!) { __type(name: $name) { name } }",
            "variables": json.dumps({"name": "sometype"}),
        },
        headers={"accept": accept},
    )
    assert response.status_code == 200
    assert "errors" not in response.json()


async def test_get_with_variables_that_are_not_json_is_400(get_client: httpx.AsyncClient) -> None:
    response = await get_client.get(
        "/graphql", params={"query": "{ __typename }", "variables": "{nope"}
    )
    assert response.status_code == 400
    assert '"variables" parameter is not valid JSON' in errors_of(response)[0]["message"]


# Request parameters


@pytest.mark.parametrize("accept", [GQL, None])
async def test_423L_8764_3E3A_missing_query_is_400(
    client: httpx.AsyncClient, accept: str | None
) -> None:
    response = await post(client, {"qeury": "{ __typename }"}, accept=accept)
    assert response.status_code == 400
    assert '"query"' in errors_of(response)[0]["message"]


@pytest.mark.parametrize("invalid", [{"obj": "ect"}, 0, False, ["array"]])
async def test_LKJ0_3_non_string_query_is_400(client: httpx.AsyncClient, invalid: object) -> None:
    response = await post(client, {"query": invalid})
    assert response.status_code == 400
    assert errors_of(response)[0]["message"].startswith('"query" must be a string')


@pytest.mark.parametrize("accept", [GQL, JSON_TYPE])
async def test_34A2_13EE_string_query(client: httpx.AsyncClient, accept: str) -> None:
    response = await post(client, {"query": "{ __typename }"}, accept=accept)
    assert response.status_code == 200
    assert "errors" not in response.json()


@pytest.mark.parametrize("invalid", [{"obj": "ect"}, 0, False, ["array"]])
async def test_6C00_3_non_string_operation_name_is_400(
    client: httpx.AsyncClient, invalid: object
) -> None:
    response = await post(client, {"query": "{ __typename }", "operationName": invalid})
    assert response.status_code == 400
    assert '"operationName" must be a string or null' in errors_of(response)[0]["message"]


@pytest.mark.parametrize("accept", [GQL, JSON_TYPE])
async def test_8161_B8B3_string_operation_name(client: httpx.AsyncClient, accept: str) -> None:
    response = await post(
        client, {"query": "query Query { __typename }", "operationName": "Query"}, accept=accept
    )
    assert response.status_code == 200
    assert "errors" not in response.json()


@pytest.mark.parametrize("accept", [GQL, JSON_TYPE])
async def test_operation_name_matching_no_operation_is_400(
    client: httpx.AsyncClient, accept: str
) -> None:
    response = await post(
        client, {"query": "query A { __typename }", "operationName": "B"}, accept=accept
    )
    assert response.status_code == 400
    assert errors_of(response)[0]["message"] == 'The document has no operation named "B".'


async def test_several_operations_without_operation_name_is_400(
    client: httpx.AsyncClient,
) -> None:
    response = await post(client, {"query": "query A { __typename } query B { __typename }"})
    assert response.status_code == 400
    assert "operationName" in errors_of(response)[0]["message"]


@pytest.mark.parametrize("accept", [GQL, JSON_TYPE])
@pytest.mark.parametrize("parameter", ["variables", "operationName", "extensions"])
async def test_94B0_2_0220_2_null_parameters_are_allowed(
    client: httpx.AsyncClient, accept: str, parameter: str
) -> None:
    response = await post(client, {"query": "{ __typename }", parameter: None}, accept=accept)
    assert response.status_code == 200
    assert "errors" not in response.json()


@pytest.mark.parametrize("parameter", ["variables", "extensions"])
@pytest.mark.parametrize("invalid", ["string", 0, False, ["array"]])
async def test_4760_3_58B0_3_non_object_variables_or_extensions_are_400(
    client: httpx.AsyncClient, parameter: str, invalid: object
) -> None:
    response = await post(client, {"query": "{ __typename }", parameter: invalid})
    assert response.status_code == 400
    assert f'"{parameter}" must be an object or null' in errors_of(response)[0]["message"]


@pytest.mark.parametrize("accept", [GQL, JSON_TYPE])
async def test_2EA1_28B9_map_variables(client: httpx.AsyncClient, accept: str) -> None:
    response = await post(
        client,
        {
            "query": "query Type($name: String!) { __type(name: $name) { name } }",
            "variables": {"name": "sometype"},
        },
        accept=accept,
    )
    assert response.status_code == 200
    assert "errors" not in response.json()


@pytest.mark.parametrize("accept", [GQL, JSON_TYPE])
async def test_428F_1B7A_map_extensions(client: httpx.AsyncClient, accept: str) -> None:
    response = await post(
        client, {"query": "{ __typename }", "extensions": {"some": "value"}}, accept=accept
    )
    assert response.status_code == 200
    assert "errors" not in response.json()


@pytest.mark.parametrize("accept", [GQL, JSON_TYPE])
async def test_B6DC_BCF8_B7N8_json_parsing_failure_is_400(
    client: httpx.AsyncClient, accept: str
) -> None:
    response = await post(client, raw=b'{ "not a JSON', accept=accept)
    assert response.status_code == 400
    assert media(response) == accept
    assert "not valid JSON" in errors_of(response)[0]["message"]


# Response with application/json: GraphQL errors keep status 200


async def test_572B_document_parsing_failure_is_200_with_json(client: httpx.AsyncClient) -> None:
    response = await post(client, {"query": "{"}, accept=JSON_TYPE)
    assert response.status_code == 200
    assert errors_of(response)[0]["extensions"]["code"] == "GRAPHQL_PARSE_FAILED"


async def test_FDE2_validation_failure_is_200_with_json(client: httpx.AsyncClient) -> None:
    response = await post(
        client, {"query": "{ 8f31403dfe404bccbb0e835f2629c6a7 }"}, accept=JSON_TYPE
    )
    assert response.status_code == 200
    # The audit's field name starts with a digit: graphql-js and graphql-core stop parsing.
    assert errors_of(response)[0]["extensions"]["code"] == "GRAPHQL_PARSE_FAILED"
    unknown = await post(client, {"query": "{ nope }"}, accept=JSON_TYPE)
    assert unknown.status_code == 200
    assert errors_of(unknown)[0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"


async def test_7B9B_variable_coercion_failure_is_200_with_json(client: httpx.AsyncClient) -> None:
    response = await post(
        client,
        {"query": "query CoerceFailure($id: ID!){ __typename }", "variables": {"id": None}},
        accept=JSON_TYPE,
    )
    assert response.status_code == 200
    assert response.json()["errors"]


# Response with application/graphql-response+json: 400 and no data entry


async def test_865D_556A_D586_document_parsing_failure_is_400_without_data(
    client: httpx.AsyncClient,
) -> None:
    response = await post(client, {"query": "{"}, accept=GQL)
    assert response.status_code == 400
    assert media(response) == GQL
    body = response.json()
    assert "data" not in body
    assert body["errors"][0]["extensions"]["code"] == "GRAPHQL_PARSE_FAILED"


async def test_51FE_74FF_5E5B_validation_failure_is_400_without_data(
    client: httpx.AsyncClient,
) -> None:
    response = await post(client, {"query": "{ 8f31403dfe404bccbb0e835f2629c6a7 }"}, accept=GQL)
    assert response.status_code == 400
    assert "data" not in response.json()
    unknown = await post(client, {"query": "{ nope }"}, accept=GQL)
    assert unknown.status_code == 400
    body = unknown.json()
    assert "data" not in body
    assert body["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"


async def test_86EE_variable_coercion_failure_is_400(client: httpx.AsyncClient) -> None:
    response = await post(
        client,
        {"query": "query CoerceFailure($id: ID!){ __typename }", "variables": {"id": None}},
        accept=GQL,
    )
    assert response.status_code == 400
    assert "data" not in response.json()


async def test_limits_are_request_errors_too(client: httpx.AsyncClient) -> None:
    fields = " ".join(f"a{i}: __typename" for i in range(40))
    response = await post(client, {"query": "{ " + fields + " }"}, accept=GQL)
    assert response.status_code == 400
    assert errors_of(response)[0]["extensions"]["code"] == "QUERY_TOO_COMPLEX"


async def test_field_errors_during_execution_stay_200(client: httpx.AsyncClient) -> None:
    # Executed, so not a request error: 200 with the data entry, whatever the media type.
    response = await post(
        client, {"query": 'query { node(id: "not-a-global-id") { id } }'}, accept=GQL
    )
    assert response.status_code == 200
    body = response.json()
    assert "data" in body
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


async def test_subscriptions_over_http_are_refused_with_a_pointer_to_websockets(
    client: httpx.AsyncClient,
) -> None:
    response = await post(client, {"query": 'subscription { jobEvents(id: "x") { sequence } }'})
    assert response.status_code == 400
    assert "websocket" in errors_of(response)[0]["message"]
