"""NUL characters and unpaired surrogates in any string input are refused at the edge.

One check (schema.extensions.Validation) covers every operation and transport, variables
and literals, nested input objects and lists: BAD_USER_INPUT naming the argument or
variable, never the value. Bodies are written by hand where JSON must carry a lone
surrogate (`"\\ud800"`): Python's encoder would never produce one.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from httpx_ws import aconnect_ws
from httpx_ws.transport import ASGIWebSocketTransport
from sqlalchemy import text
from starlette.applications import Starlette

from tests.helpers import Account, bearer, create_workspace, gql, register

LEAK = "leakcheck7f3a"  # next to the bad character: must never come back or reach a log
PLACEHOLDER = "@@BAD@@"
# How a bad character is written inside a JSON string: a variable's value, or (doubly
# escaped) a GraphQL string literal inside the JSON `query`.
JSON_ESCAPE = {"nul": "\\u0000", "surrogate": "\\ud800"}
# A literal's NUL is the GraphQL escape `\u0000` (a raw NUL does not lex); a literal's
# surrogate is the raw character that JSON's `\ud800` decodes to.
INLINE_ESCAPE = {"nul": "\\\\u0000", "surrogate": "\\ud800"}
WHAT = {"nul": "a NUL character", "surrogate": "an unpaired surrogate"}


@dataclass(frozen=True)
class Case:
    name: str
    query: str  # with variables; PLACEHOLDER inside the variables
    variables: dict[str, Any]
    variable: str  # the path the error names
    inline: str  # the same with a literal holding PLACEHOLDER
    argument: str
    field: str
    needs: str = "nothing"  # "account" or "workspace"
    websocket: bool = False


BAD = f"{LEAK}{PLACEHOLDER}tail"
CASES = [
    Case(
        "login",
        "mutation($i: LoginInput!) { login(input: $i) { accessToken errors { code } } }",
        {"i": {"email": f"{BAD}@example.com", "password": "pw-secret-123"}},
        "i.email",
        f'mutation {{ login(input: {{email: "{BAD}@example.com", password: "pw"}}) '
        "{ accessToken } }",
        "input.email",
        "login",
    ),
    Case(
        "requestPasswordReset",
        "mutation($e: String!) { requestPasswordReset(email: $e) { success } }",
        {"e": BAD},
        "e",
        f'mutation {{ requestPasswordReset(email: "{BAD}") {{ success }} }}',
        "email",
        "requestPasswordReset",
    ),
    Case(
        "updateProfile",
        "mutation($i: UpdateProfileInput!) { updateProfile(input: $i) { user { name } } }",
        {"i": {"name": BAD}},
        "i.name",
        f'mutation {{ updateProfile(input: {{name: "{BAD}"}}) {{ user {{ name }} }} }}',
        "input.name",
        "updateProfile",
        needs="account",
    ),
    Case(
        "createWorkspace",
        "mutation($i: CreateWorkspaceInput!) { createWorkspace(input: $i) { workspace { id } } }",
        {"i": {"name": "Acme", "brandVoice": {"keywords": ["fine", BAD]}}},
        "i.brandVoice.keywords[1]",
        'mutation { createWorkspace(input: {name: "Acme", brandVoice: '
        f'{{keywords: ["fine", "{BAD}"]}}}}) {{ workspace {{ id }} }} }}',
        "input.brandVoice.keywords[1]",
        "createWorkspace",
        needs="account",
    ),
    Case(
        "createContent",
        "mutation($i: CreateContentInput!) { createContent(input: $i) { content { id } } }",
        {"i": {"workspaceId": "@@WS@@", "title": "Title", "body": BAD}},
        "i.body",
        'mutation { createContent(input: {workspaceId: "@@WS@@", title: "Title", '
        f'body: "{BAD}"}}) {{ content {{ id }} }} }}',
        "input.body",
        "createContent",
        needs="workspace",
    ),
    Case(
        "jobEvents subscription",
        "subscription($id: ID!) { jobEvents(id: $id) { sequence } }",
        {"id": BAD},
        "id",
        f'subscription {{ jobEvents(id: "{BAD}") {{ sequence }} }}',
        "id",
        "jobEvents",
        needs="account",
        websocket=True,
    ),
]


def _body(query: str, variables: dict[str, Any], escape: str, workspace: str | None) -> str:
    """The JSON text of a request, each PLACEHOLDER replaced by `escape` as written."""
    raw = json.dumps({"query": query, "variables": variables})
    if workspace is not None:
        raw = raw.replace("@@WS@@", workspace)
    assert PLACEHOLDER in raw
    return raw.replace(PLACEHOLDER, escape)


@asynccontextmanager
async def _socket(app: Starlette, account: Account) -> AsyncIterator[Any]:
    async with (
        httpx.AsyncClient(
            transport=ASGIWebSocketTransport(app), base_url="http://testserver"
        ) as client,
        aconnect_ws(
            "http://testserver/graphql", client, subprotocols=["graphql-transport-ws"]
        ) as ws,
    ):
        await ws.send_json(
            {
                "type": "connection_init",
                "payload": {"authorization": f"Bearer {account.access_token}"},
            }
        )
        assert (await ws.receive_json(timeout=5))["type"] == "connection_ack"
        yield ws


async def _send(
    app: Starlette, client: httpx.AsyncClient, case: Case, raw: str, account: Account | None
) -> tuple[list[dict[str, Any]], str]:
    """The errors of one request (HTTP or websocket), and the raw text of the answer."""
    if case.websocket:
        assert account is not None
        async with _socket(app, account) as ws:
            await ws.send_text('{"id": "1", "type": "subscribe", "payload": ' + raw + "}")
            answer = await ws.receive_text(timeout=10)
        message = json.loads(answer)
        assert message["id"] == "1"
        if message["type"] == "error":
            return message["payload"], answer
        assert message["type"] == "next", message
        return message["payload"]["errors"], answer
    headers = {"content-type": "application/json"}
    if account is not None:
        headers.update(bearer(account.access_token))
    response = await client.post("/graphql", content=raw.encode(), headers=headers)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body.get("data") is None, body
    return body["errors"], response.text


async def _prepare(client: httpx.AsyncClient, case: Case) -> tuple[Account | None, str | None]:
    if case.needs == "nothing":
        return None, None
    account = await register(client)
    workspace = await create_workspace(client, account) if case.needs == "workspace" else None
    return account, workspace


@pytest.mark.parametrize("bad", ["nul", "surrogate"])
@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
async def test_bad_characters_in_variables_are_refused(
    app: Starlette, client: httpx.AsyncClient, case: Case, bad: str
) -> None:
    account, workspace = await _prepare(client, case)
    raw = _body(case.query, case.variables, JSON_ESCAPE[bad], workspace)
    errors, answer = await _send(app, client, case, raw, account)
    assert [e["extensions"]["code"] for e in errors] == ["BAD_USER_INPUT"]
    message = errors[0]["message"]
    assert f'Variable "${case.variable}" contains {WHAT[bad]}' in message
    assert errors[0]["extensions"]["variable"] == case.variable
    assert LEAK not in answer
    assert "INTERNAL_SERVER_ERROR" not in answer


@pytest.mark.parametrize("bad", ["nul", "surrogate"])
@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
async def test_bad_characters_in_literals_are_refused(
    app: Starlette, client: httpx.AsyncClient, case: Case, bad: str
) -> None:
    account, workspace = await _prepare(client, case)
    raw = _body(case.inline, {}, INLINE_ESCAPE[bad], workspace)
    errors, answer = await _send(app, client, case, raw, account)
    assert [e["extensions"]["code"] for e in errors] == ["BAD_USER_INPUT"]
    if bad == "nul":  # the document parses: the error names the argument
        expected = f'Argument "{case.argument}" of field "{case.field}" contains a NUL character'
        assert expected in errors[0]["message"]
    else:  # a lone surrogate does not even lex: the error points at it
        assert "Invalid character within String: U+D800" in errors[0]["message"]
        assert errors[0]["locations"]
    assert LEAK not in answer
    assert "INTERNAL_SERVER_ERROR" not in answer


@pytest.mark.parametrize(
    "literal",
    ["\\\\ud800", "\\\\udc00x", "\\\\u{0}", "\\\\u{D800}"],
    ids=["escaped-high-surrogate", "escaped-low-surrogate", "braced-nul", "braced-surrogate"],
)
async def test_every_escape_of_a_bad_character_is_refused(
    client: httpx.AsyncClient, literal: str
) -> None:
    query = f'mutation {{ requestPasswordReset(email: "{LEAK}{PLACEHOLDER}") {{ success }} }}'
    raw = json.dumps({"query": query}).replace(PLACEHOLDER, literal)
    response = await client.post(
        "/graphql", content=raw.encode(), headers={"content-type": "application/json"}
    )
    errors = response.json()["errors"]
    assert [e["extensions"]["code"] for e in errors] == ["BAD_USER_INPUT"], errors
    assert LEAK not in response.text


async def test_bad_characters_are_found_in_keys_defaults_and_directives(
    client: httpx.AsyncClient,
) -> None:
    account = await register(client)
    # An object key of a variable.
    raw = json.dumps(
        {
            "query": "mutation($i: UpdateProfileInput!) { updateProfile(input: $i) { user { id } } }",
            "variables": {"i": {f"na{PLACEHOLDER}me": "x"}},
        }
    ).replace(PLACEHOLDER, "\\u0000")
    response = await client.post(
        "/graphql",
        content=raw.encode(),
        headers={"content-type": "application/json", **account.headers},
    )
    [error] = response.json()["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert 'A key of variable "$i" contains a NUL character' in error["message"]
    # Found past text that only looks like an escaped NUL, deep in a long list.
    keywords = ["back\\u0000slash"] * 5000 + ["x\x00"] + ["fine"] * 5000
    body = await gql(
        client,
        "mutation($i: CreateWorkspaceInput!) { createWorkspace(input: $i) { workspace { id } } }",
        {"i": {"name": "Acme", "brandVoice": {"keywords": keywords}}},
        headers=account.headers,
    )
    [error] = body["errors"]
    assert 'Variable "$i.brandVoice.keywords[5000]" contains a NUL' in error["message"]
    # A variable's default value, and a directive's argument.
    body = await gql(
        client,
        'mutation($e: String = "a\\u0000b") { requestPasswordReset(email: $e) { success } }',
    )
    assert 'The default value of variable "$e" contains' in body["errors"][0]["message"]
    body = await gql(client, '{ health @deprecated(reason: "x\\u0000") { version } }')
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert 'Argument "reason" of directive "@deprecated"' in body["errors"][0]["message"]


async def test_valid_text_that_looks_close_is_accepted(client: httpx.AsyncClient) -> None:
    account = await register(client)
    query = "mutation($i: UpdateProfileInput!) { updateProfile(input: $i) { user { name } } }"
    # A surrogate pair (one astral character), and a backslash followed by "u0000".
    for name in ["Ada \U0001f600", "back\\u0000slash"]:
        body = await gql(client, query, {"i": {"name": name}}, headers=account.headers)
        assert body["data"]["updateProfile"]["user"]["name"] == name
    # The same as literals: an escaped pair, and an escaped backslash before "u0000".
    for literal, name in [("Ada \\ud83d\\ude00", "Ada \U0001f600"), ("a\\\\u0000", "a\\u0000")]:
        body = await gql(
            client,
            f'mutation {{ updateProfile(input: {{name: "{literal}"}}) {{ user {{ name }} }} }}',
            headers=account.headers,
        )
        assert body["data"]["updateProfile"]["user"]["name"] == name, body


@pytest.fixture
def records(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG)
    return caplog


def _log_lines(caplog: pytest.LogCaptureFixture) -> str:
    """The log lines as the service writes them (its own formatter on the root handler)."""
    formatter = logging.getLogger().handlers[0].formatter
    assert formatter is not None
    return "\n".join(formatter.format(record) for record in caplog.records)


async def test_failing_login_logs_neither_email_nor_password(
    client: httpx.AsyncClient, records: pytest.LogCaptureFixture
) -> None:
    await register(client, email="ada@example.com")
    password = "pw-secret-5b2e9c"
    raw = _body(
        CASES[0].query,
        {"i": {"email": f"ada{PLACEHOLDER}@example.com", "password": password}},
        "\\u0000",
        None,
    )
    records.clear()
    response = await client.post(
        "/graphql", content=raw.encode(), headers={"content-type": "application/json"}
    )
    assert response.json()["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    lines = _log_lines(records)
    assert "example.com" not in lines
    assert password not in lines


async def test_database_errors_are_logged_without_the_values(
    app: Starlette, records: pytest.LogCaptureFixture
) -> None:
    """Whatever reaches the database and fails there: the log keeps the statement and the
    SQLSTATE, not the parameters or the server's echo of them."""
    from app.logging import get_logger

    state = app.state.smartcontent
    async with state.session_factory() as session:
        for statement, value in [
            # Postgres echoes the value: invalid input syntax for type integer: "secret..."
            ("SELECT CAST(CAST(:v AS text) AS integer)", "secret-9d41@example.com"),
            # asyncpg quotes it: invalid input for query argument $1: 'secret...'
            ("SELECT CAST(:v AS integer)", "secret-9d41@example.com"),
            ("SELECT :v", "nul\x00secret-9d41@example.com"),  # refused by Postgres's encoding
        ]:
            try:
                await session.execute(text(statement), {"v": value})
            except Exception as exc:  # the point is what gets logged
                get_logger("test").error("resolver_error", exc_info=exc)
                await session.rollback()
            else:
                pytest.fail("the statement should fail")
    lines = _log_lines(records)
    assert "resolver_error" in lines
    assert "secret-9d41" not in lines
    # What helps to debug stays: the statement, the error classes, the SQLSTATEs.
    assert "[SQL: SELECT CAST(CAST($1 AS text) AS integer)]" in lines
    assert "asyncpg.exceptions.InvalidTextRepresentationError: sqlstate=22P02" in lines
    assert "asyncpg.exceptions.DataError" in lines
    assert "asyncpg.exceptions.CharacterNotInRepertoireError: sqlstate=22021" in lines


@pytest.mark.usefixtures("app")  # logging configured as the service does
async def test_access_log_lines_leave_out_query_strings(records: pytest.LogCaptureFixture) -> None:
    """GET operations carry their variables in the query string: uvicorn logs the path only."""
    access = logging.getLogger("uvicorn.access")
    access.info(
        '%s - "%s %s HTTP/%s" %d',
        "127.0.0.1:5000",
        "GET",
        "/graphql?query=%7Bme%7D&variables=%7B%22token%22%3A%22tok-6e1d%22%7D",
        "1.1",
        200,
    )
    lines = _log_lines(records)
    assert '"GET /graphql HTTP/1.1" 200' in lines
    assert "tok-6e1d" not in lines
