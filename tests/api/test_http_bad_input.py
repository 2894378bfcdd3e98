"""Bodies that cannot be GraphQL requests: each gets a 400 with a GraphQL error body saying
what is wrong (never a raw 500, never a misleading message), and the server keeps serving.
Also the CSRF rule for bodies a cross-site form could send (multipart, urlencoded, text)."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from tests.helpers import create_workspace, gql, register

PREFLIGHT = {"Apollo-Require-Preflight": "true"}
UPLOAD = """
mutation($ws: ID!, $file: Upload!) {
  uploadMedia(workspaceId: $ws, file: $file) { media { id } errors { code message } }
}
"""
WS = "V29ya3NwYWNlOjAwMDAwMDAwLTAwMDAtMDAwMC0wMDAwLTAwMDAwMDAwMDAwMA=="


def refusal(response: httpx.Response, status: int = 400) -> str:
    """The one error of a refused request: GraphQL-shaped, with a code and request id."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body: dict[str, Any] = response.json()
    assert "data" not in body
    [error] = body["errors"]
    assert error["extensions"]["code"] == "BAD_REQUEST"
    assert error["extensions"]["requestId"] == response.headers["x-request-id"]
    message: str = error["message"]
    return message


async def still_serving(client: httpx.AsyncClient) -> None:
    body = await gql(client, "{ __typename }")
    assert body == {"data": {"__typename": "Query"}}


async def post_json(client: httpx.AsyncClient, raw: bytes) -> httpx.Response:
    return await client.post("/graphql", content=raw, headers={"content-type": "application/json"})


@pytest.mark.parametrize(
    ("raw", "described"),
    [(b"123", "a number"), (b"null", "null"), (b'"x"', "a string"), (b"true", "a boolean")],
)
async def test_json_bodies_that_are_not_objects(
    client: httpx.AsyncClient, raw: bytes, described: str
) -> None:
    message = refusal(await post_json(client, raw))
    assert message.startswith("The request body must be a JSON object")
    assert message.endswith(f"not {described}.")
    await still_serving(client)


@pytest.mark.parametrize("raw", [b"[]", b'[{"query": "{ __typename }"}]'])
async def test_batches_are_refused_as_unsupported(client: httpx.AsyncClient, raw: bytes) -> None:
    assert "Batched requests" in refusal(await post_json(client, raw))


async def test_deeply_nested_json_is_refused(client: httpx.AsyncClient) -> None:
    # The body limit bounds the work; the depth is refused before it exhausts the stack.
    for raw in (b"[" * 100_000, b'{"query": "{ __typename }", "variables": ' + b'{"a":' * 100_000):
        assert "nested too deeply" in refusal(await post_json(client, raw))
    await still_serving(client)


async def test_invalid_utf8_is_refused(client: httpx.AsyncClient) -> None:
    message = refusal(await post_json(client, b'{"query": "{ \xff\xfe }"}'))
    assert message == "The request body is not valid UTF-8 (byte 13 is not)."
    await still_serving(client)


async def test_a_websocket_message_nested_too_deeply_closes_cleanly(app: Any) -> None:
    from httpx_ws import WebSocketDisconnect, aconnect_ws
    from httpx_ws.transport import ASGIWebSocketTransport

    async with (
        httpx.AsyncClient(transport=ASGIWebSocketTransport(app), base_url="http://t") as c,
        aconnect_ws("http://t/graphql", c, subprotocols=["graphql-transport-ws"]) as ws,
    ):
        await ws.send_text("[" * 100_000)
        with pytest.raises(WebSocketDisconnect) as closed:
            await ws.receive_json(timeout=5)
        assert closed.value.code == 4400


# Multipart (https://github.com/jaydenseric/graphql-multipart-request-spec)


async def multipart(
    client: httpx.AsyncClient,
    data: dict[str, str],
    files: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    return await client.post(
        "/graphql",
        data=data,
        files={"0": ("x.png", b"\x89PNG", "image/png")} if files is None else files,
        headers=PREFLIGHT if headers is None else headers,
    )


def operations(variables: dict[str, Any] | None = None) -> str:
    return json.dumps({"query": UPLOAD, "variables": variables or {"ws": WS, "file": None}})


FILE_MAP = json.dumps({"0": ["variables.file"]})


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"operations": "5", "map": FILE_MAP}, 'The "operations" field must be a JSON object'),
        ({"operations": "[]", "map": FILE_MAP}, "Batched requests"),
        ({"operations": "{nope", "map": FILE_MAP}, 'The "operations" field is not valid JSON'),
        ({"map": FILE_MAP}, 'needs an "operations" field'),
        ({"operations": operations()}, 'needs an "map" field'),
        ({"operations": operations(), "map": "[1]"}, 'The "map" field must be a JSON object'),
        ({"operations": operations(), "map": '{"0": "variables.file"}'}, "must be a JSON object"),
        ({"operations": operations(), "map": '{"0": []}'}, "must be a JSON object"),
        ({"operations": operations(), "map": '{"9": ["variables.file"]}'}, "no such part"),
        (
            {"operations": operations(), "map": '{"0": ["variables.nope"]}'},
            'path "variables.nope" does not lead to a null placeholder',
        ),
        (
            {"operations": operations(), "map": '{"0": ["variables.ws"]}'},
            'path "variables.ws" does not lead to a null placeholder',
        ),
        (
            {"operations": operations(), "map": '{"0": ["variables.file.x.y"]}'},
            "does not lead to a null placeholder",
        ),
        (
            {"operations": json.dumps({"variables": {"file": None}}), "map": FILE_MAP},
            'The request has no "query"',
        ),
    ],
)
async def test_malformed_multipart_requests(
    client: httpx.AsyncClient, data: dict[str, str], expected: str
) -> None:
    message = refusal(await multipart(client, data))
    assert expected in message, message
    assert "File(s) missing" not in message
    await still_serving(client)


def raw_multipart(parts: list[tuple[str, str]]) -> bytes:
    """A multipart body with the given (Content-Disposition parameters, value) parts."""
    out = b""
    for disposition, value in parts:
        out += f"--x\r\nContent-Disposition: form-data; {disposition}\r\n\r\n{value}\r\n".encode()
    return out + b"--x--\r\n"


async def test_a_map_naming_a_text_field_is_refused(client: httpx.AsyncClient) -> None:
    body = raw_multipart(
        [('name="operations"', operations()), ('name="map"', FILE_MAP), ('name="0"', "text")]
    )
    response = await client.post(
        "/graphql",
        content=body,
        headers={"content-type": "multipart/form-data; boundary=x", **PREFLIGHT},
    )
    assert 'The part "0" must be a file' in refusal(response)


async def test_an_empty_filename_is_refused(client: httpx.AsyncClient) -> None:
    # What a browser sends for a file input left empty.
    body = raw_multipart(
        [
            ('name="operations"', operations()),
            ('name="map"', FILE_MAP),
            ('name="0"; filename=""', "\x89PNG"),
        ]
    )
    response = await client.post(
        "/graphql",
        content=body,
        headers={"content-type": "multipart/form-data; boundary=x", **PREFLIGHT},
    )
    assert refusal(response) == 'The file part "0" has an empty filename.'


async def test_operations_sent_as_a_file_is_refused(client: httpx.AsyncClient) -> None:
    response = await multipart(
        client,
        {"map": FILE_MAP},
        files={"operations": ("o.json", operations().encode(), "application/json")},
    )
    assert 'The "operations" field must be a text field' in refusal(response)


async def test_an_unparsable_multipart_body_is_a_graphql_400(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/graphql",
        content=b"--x\r\nContent-Disposition: form-data\r\n\r\nabc\r\n--x--\r\n",
        headers={"content-type": "multipart/form-data; boundary=x", **PREFLIGHT},
    )
    assert refusal(response).startswith("The multipart body could not be parsed")
    no_boundary = await client.post(
        "/graphql", content=b"abc", headers={"content-type": "multipart/form-data", **PREFLIGHT}
    )
    assert refusal(no_boundary).startswith("The multipart body could not be parsed")


@pytest.mark.parametrize("value", ["a string", {"filename": "x.png"}, 5])
async def test_a_file_given_as_a_json_value_is_bad_user_input(
    client: httpx.AsyncClient, value: object
) -> None:
    response = await client.post(
        "/graphql", json={"query": UPLOAD, "variables": {"ws": WS, "file": value}}
    )
    assert response.status_code == 200
    body = response.json()
    assert "data" not in body
    [error] = body["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert error["message"].startswith('Variable "$file" must be a file')
    # The same in a multipart request whose "operations" carries the value itself.
    response = await multipart(
        client, {"operations": operations({"ws": WS, "file": value}), "map": "{}"}
    )
    assert response.json()["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


# CSRF: what a cross-site form can send must carry a header that needs a CORS preflight


FORGEABLE = [
    ("multipart/form-data", None),
    ("application/x-www-form-urlencoded", b"query=mutation%7B__typename%7D"),
    ("text/plain", b'{"query": "mutation { __typename }"}'),
]


@pytest.mark.parametrize(("content_type", "raw"), FORGEABLE)
async def test_simple_requests_without_a_preflight_header_are_refused(
    client: httpx.AsyncClient, content_type: str, raw: bytes | None
) -> None:
    request_password_reset = (
        'mutation { requestPasswordReset(email: "victim@example.com") { success } }'
    )
    if raw is None:  # what a cross-site <form enctype="multipart/form-data"> posts
        response = await multipart(
            client,
            {"operations": json.dumps({"query": request_password_reset}), "map": "{}"},
            headers={"Origin": "https://evil.example"},
        )
    else:
        response = await client.post(
            "/graphql",
            content=raw,
            headers={"content-type": content_type, "Origin": "https://evil.example"},
        )
    message = refusal(response)
    assert "cross-site request forgery" in message
    assert "Apollo-Require-Preflight" in message


async def test_the_password_reset_is_not_sent_from_a_forged_form(
    client: httpx.AsyncClient, app: Any
) -> None:
    mailer = app.state.smartcontent.mailer
    sent_before = len(mailer.outbox)
    document = 'mutation { requestPasswordReset(email: "victim@example.com") { success } }'
    response = await multipart(
        client, {"operations": json.dumps({"query": document}), "map": "{}"}, headers={}
    )
    assert response.status_code == 400
    assert len(mailer.outbox) == sent_before


@pytest.mark.parametrize(
    "header",
    [
        "Apollo-Require-Preflight",
        "X-Requested-With",
        "GraphQL-Preflight",
        "X-Apollo-Operation-Name",
    ],
)
async def test_a_preflighted_header_lets_multipart_through(
    client: httpx.AsyncClient, header: str
) -> None:
    response = await multipart(
        client,
        {"operations": json.dumps({"query": "{ __typename }"}), "map": "{}"},
        headers={header: "1"},
    )
    assert response.status_code == 200, response.text
    assert response.json() == {"data": {"__typename": "Query"}}


@pytest.mark.parametrize(("content_type", "raw"), FORGEABLE[1:])
async def test_other_simple_types_with_the_header_are_unsupported(
    client: httpx.AsyncClient, content_type: str, raw: bytes
) -> None:
    response = await client.post(
        "/graphql", content=raw, headers={"content-type": content_type, **PREFLIGHT}
    )
    assert "Unsupported Content-Type" in refusal(response, 415)


async def test_an_empty_preflight_header_does_not_count(client: httpx.AsyncClient) -> None:
    response = await multipart(
        client,
        {"operations": json.dumps({"query": "{ __typename }"}), "map": "{}"},
        headers={"Apollo-Require-Preflight": ""},
    )
    assert "cross-site request forgery" in refusal(response)


async def test_browsers_may_send_the_preflight_headers(client: httpx.AsyncClient) -> None:
    preflight = await client.options(
        "/graphql",
        headers={
            "origin": "https://app.example.com",
            "access-control-request-method": "POST",
            "access-control-request-headers": "apollo-require-preflight,x-requested-with",
        },
    )
    assert preflight.status_code == 200
    allowed = preflight.headers["access-control-allow-headers"].lower()
    assert "apollo-require-preflight" in allowed and "x-requested-with" in allowed


@pytest.mark.parametrize("literal", ['"x"', "1", "[1]", '{a: "b"}'])
async def test_an_inline_file_literal_is_refused_before_the_resolver(
    client: httpx.AsyncClient, literal: str
) -> None:
    """`uploadMedia(file: "x")` used to reach the service with a string for a file (an
    internal error); a file can only be a multipart part, so a literal fails validation."""
    owner = await register(client)
    ws = await create_workspace(client, owner)
    query = (
        f'mutation {{ uploadMedia(workspaceId: "{ws}", file: {literal}) {{ errors {{ code }} }} }}'
    )
    response = await client.post("/graphql", json={"query": query}, headers=owner.headers)
    body = response.json()
    codes = [e["extensions"]["code"] for e in body["errors"]]
    assert codes == ["GRAPHQL_VALIDATION_FAILED"], body
    assert "multipart" in body["errors"][0]["message"]
