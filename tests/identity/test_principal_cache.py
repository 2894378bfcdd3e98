"""Resolved principals are cached (no statement for a credential seen lately), and every
kind of revocation still reaches every API process at once: two apps share Postgres and
Redis here, as two processes would; a change made through one is seen by the other on its
next request, with entries otherwise trusted for a minute, so only the invalidation can
explain it."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from httpx_ws import aconnect_ws
from httpx_ws.transport import ASGIWebSocketTransport
from starlette.applications import Starlette

from app.auth import RequestMeta, WorkspaceAccess
from app.http.graphql_view import GraphQLView
from app.models import User
from app.permissions import Role
from tests.api.test_query_counts import count_statements
from tests.conftest import Servers, make_settings, running_app
from tests.helpers import (
    PASSWORD,
    Account,
    GraphQLWebSocket,
    bearer,
    create_workspace,
    gql,
    register,
)
from tests.teams import (
    REMOVE,
    REVOKE_KEY,
    UPDATE_ROLE,
    WORKSPACE,
    create_key,
    join,
    state_of,
    uid,
)

TYPENAME = "{ __typename }"
ME = "{ me { id email } }"


def cache_of(app: Starlette) -> Any:
    for route in app.routes:
        endpoint = getattr(route, "endpoint", None) or getattr(route, "app", None)
        if isinstance(endpoint, GraphQLView):
            return endpoint.principals
    raise AssertionError("no GraphQL view")


@asynccontextmanager
async def two_processes(
    servers: Servers, **settings: Any
) -> AsyncIterator[tuple[httpx.AsyncClient, httpx.AsyncClient, Starlette, Starlette]]:
    values: dict[str, Any] = {"principal_cache_seconds": 60, **settings}
    async with (
        running_app(make_settings(servers, **values)) as one,
        running_app(make_settings(servers, **values)) as two,
        httpx.AsyncClient(transport=httpx.ASGITransport(app=one), base_url="http://a") as a,
        httpx.AsyncClient(transport=httpx.ASGITransport(app=two), base_url="http://b") as b,
    ):
        for app in (one, two):  # both listening, as after start-up
            await _until(lambda app=app: _live(app), "invalidation channel live")
        yield a, b, one, two


async def _live(app: Starlette) -> bool:
    return bool(cache_of(app).live)


async def _until(check: Callable[[], Awaitable[bool]], what: str, seconds: float = 3.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while not await check():
        if loop.time() > deadline:
            raise AssertionError(f"not within {seconds} s: {what}")
        await asyncio.sleep(0.02)


async def _code(client: httpx.AsyncClient, query: str, headers: dict[str, str], **v: Any) -> Any:
    """The first error's code (None: none), whatever the status (401 included)."""
    response = await client.post("/graphql", json={"query": query, "variables": v}, headers=headers)
    errors = response.json().get("errors") or []
    return errors[0]["extensions"]["code"] if errors else None


async def _seen_by(client: httpx.AsyncClient, headers: dict[str, str]) -> None:
    """The other process has the principal cached (its request succeeded)."""
    assert await _code(client, ME, headers) is None


async def test_a_seen_credential_costs_no_statement(
    app: Starlette, client: httpx.AsyncClient
) -> None:
    account = await register(client)
    workspace = await create_workspace(client, account)
    key = await create_key(client, account, workspace, "VIEWER")
    for headers in (account.headers, bearer(key["secret"])):
        with count_statements(app) as first:
            assert (await gql(client, TYPENAME, headers=headers))["data"] is not None
        with count_statements(app) as again:
            for _ in range(5):
                assert (await gql(client, TYPENAME, headers=headers))["data"] is not None
        assert len(first) >= 1 and again == []
    # Anonymous requests never needed one; a rejected credential is never cached.
    with count_statements(app) as anonymous:
        await gql(client, TYPENAME)
    assert anonymous == []
    assert await _code(client, TYPENAME, bearer("sk_nope_nope")) == "UNAUTHENTICATED"


async def test_websocket_operations_check_the_credential_without_a_statement(
    app: Starlette, client: httpx.AsyncClient
) -> None:
    """Each operation on an open socket re-checks its credential through the cache: no
    statement for that, and a revocation between two operations is still seen."""
    owner = await register(client)
    workspace = await create_workspace(client, owner)
    key = await create_key(client, owner, workspace, "VIEWER")
    async with (
        httpx.AsyncClient(transport=ASGIWebSocketTransport(app), base_url="http://t") as c,
        aconnect_ws("http://t/graphql", c, subprotocols=["graphql-transport-ws"]) as raw,
    ):
        ws = GraphQLWebSocket(raw)
        await ws.init({"authorization": f"Bearer {key['secret']}"})
        with count_statements(app) as statements:
            for _ in range(3):
                [result] = await ws.collect(await ws.subscribe(TYPENAME))
                assert result == {"data": {"__typename": "Query"}}
        assert statements == []
        revoked = await gql(client, REVOKE_KEY, {"id": key["apiKey"]["id"]}, headers=owner.headers)
        assert revoked["data"]["revokeApiKey"]["apiKey"]["revokedAt"]
        [refused] = await ws.collect(await ws.subscribe(TYPENAME))
        assert refused["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


async def test_password_change_ends_the_old_token_in_the_other_process(servers: Servers) -> None:
    async with two_processes(servers) as (a, b, _, _):
        account = await register(a)
        await _seen_by(b, account.headers)
        changed = await gql(
            a,
            "mutation($i: ChangePasswordInput!) { changePassword(input: $i) { accessToken } }",
            {"i": {"currentPassword": PASSWORD, "newPassword": PASSWORD + " new"}},
            headers=account.headers,
        )
        assert changed["data"]["changePassword"]["accessToken"]
        await _until(
            lambda: _is(b, ME, account.headers, "UNAUTHENTICATED"), "old token refused on b"
        )


async def _is(client: httpx.AsyncClient, query: str, headers: dict[str, str], code: Any) -> bool:
    return bool(await _code(client, query, headers) == code)


async def test_account_deletion_is_seen_by_the_other_process(servers: Servers) -> None:
    async with two_processes(servers) as (a, b, _, _):
        account = await register(a)
        await _seen_by(b, account.headers)
        deleted = await gql(
            a,
            "mutation($p: String!) { deleteAccount(password: $p) { success } }",
            {"p": PASSWORD},
            headers=account.headers,
        )
        assert deleted["data"]["deleteAccount"]["success"] is True
        await _until(lambda: _is(b, ME, account.headers, "UNAUTHENTICATED"), "deleted on b")


async def test_api_key_revocation_is_seen_by_the_other_process(servers: Servers) -> None:
    async with two_processes(servers) as (a, b, _, _):
        owner = await register(a)
        workspace = await create_workspace(a, owner)
        key = await create_key(a, owner, workspace, "VIEWER")
        headers = bearer(key["secret"])
        assert await _code(b, WORKSPACE, headers, id=workspace) is None
        revoked = await gql(a, REVOKE_KEY, {"id": key["apiKey"]["id"]}, headers=owner.headers)
        assert revoked["data"]["revokeApiKey"]["errors"] == []
        await _until(lambda: _is(b, TYPENAME, headers, "UNAUTHENTICATED"), "key refused on b")


async def _role_on(client: httpx.AsyncClient, account: Account, workspace: str) -> Any:
    body = await gql(client, WORKSPACE, {"id": workspace}, headers=account.headers)
    return (body["data"]["workspace"] or {}).get("viewerRole")


async def test_role_change_and_removal_are_seen_by_the_other_process(servers: Servers) -> None:
    async with two_processes(servers) as (a, b, _, _):
        owner = await register(a)
        workspace = await create_workspace(a, owner)
        member = await join(a, owner, workspace, "VIEWER")
        assert await _role_on(b, member, workspace) == "VIEWER"
        me = (await gql(a, ME, headers=member.headers))["data"]["me"]["id"]
        changed = await gql(
            a, UPDATE_ROLE, {"ws": workspace, "u": me, "r": "ADMIN"}, headers=owner.headers
        )
        assert changed["data"]["updateMemberRole"]["errors"] == []

        async def admin() -> bool:
            return await _role_on(b, member, workspace) == "ADMIN"

        await _until(admin, "the new role on b")
        removed = await gql(a, REMOVE, {"ws": workspace, "u": me}, headers=owner.headers)
        assert removed["data"]["removeMember"]["errors"] == []

        async def gone() -> bool:
            body = await gql(b, WORKSPACE, {"id": workspace}, headers=member.headers)
            return body["data"] is None or body["data"]["workspace"] is None

        await _until(gone, "the removal on b")


async def test_a_workspace_two_factor_requirement_is_seen_by_the_other_process(
    servers: Servers,
) -> None:
    async with two_processes(servers) as (a, b, one, _):
        owner = await register(a)
        workspace = await create_workspace(a, owner)
        member = await join(a, owner, workspace, "MEMBER")
        contents = "query($ws: ID!) { contents(workspaceId: $ws, first: 1) { edges { cursor } } }"
        assert await _code(b, contents, member.headers, ws=workspace) is None
        async with state_of(one).session_factory() as session, session.begin():
            user = await session.get(User, uid(owner.user_id))
            assert user is not None
            user.totp_enabled = True  # (as confirmTwoFactor does) so the owner may require it
        required = await gql(
            a,
            "mutation($id: ID!) { updateWorkspace(id: $id, input: {requireTwoFactor: true}) "
            "{ errors { code } } }",
            {"id": workspace},
            headers=owner.headers,
        )
        assert required["data"]["updateWorkspace"]["errors"] == []

        async def refused() -> bool:
            body = await gql(b, contents, {"ws": workspace}, headers=member.headers)
            errors = body.get("errors") or []
            return bool(errors) and errors[0]["extensions"].get("reason") == "TWO_FACTOR_REQUIRED"

        await _until(refused, "the requirement on b")


async def test_without_the_channel_entries_are_trusted_only_briefly(servers: Servers) -> None:
    async with two_processes(servers, principal_cache_offline_seconds=0.5) as (a, b, _, two):
        owner = await register(a)
        workspace = await create_workspace(a, owner)
        key = await create_key(a, owner, workspace, "VIEWER")
        headers = bearer(key["secret"])
        cache = cache_of(two)
        # b stops hearing invalidations (as when its Redis subscription is down).
        assert cache._task is not None
        cache._task.cancel()
        await _until(lambda: _not_live(two), "b's channel down")
        assert await _code(b, TYPENAME, headers) is None
        await gql(a, REVOKE_KEY, {"id": key["apiKey"]["id"]}, headers=owner.headers)
        assert await _code(b, TYPENAME, headers) is None  # still trusted, for the bound
        await _until(
            lambda: _is(b, TYPENAME, headers, "UNAUTHENTICATED"), "expired on b", seconds=1.5
        )


async def _not_live(app: Starlette) -> bool:
    return not cache_of(app).live


@pytest.mark.parametrize("seconds", [0])
async def test_the_cache_can_be_turned_off(servers: Servers, seconds: float) -> None:
    settings = make_settings(servers, principal_cache_seconds=seconds)
    async with (
        running_app(settings) as app,
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client,
    ):
        account = await register(client)
        await gql(client, TYPENAME, headers=account.headers)
        with count_statements(app) as statements:
            await gql(client, TYPENAME, headers=account.headers)
        assert len(statements) == 1


async def test_what_an_operation_adds_to_its_principal_stays_out_of_the_cache(
    app: Starlette, client: httpx.AsyncClient
) -> None:
    account = await register(client)
    cache = cache_of(app)
    authorization = account.headers["Authorization"]
    first = await cache.authenticate(authorization, RequestMeta(ip="192.0.2.1"))
    first.access[uuid.uuid4()] = WorkspaceAccess(Role.OWNER, False)  # as teams.joined does
    again = await cache.authenticate(authorization, RequestMeta(ip="192.0.2.2"))
    assert again.access == {} and again.meta.ip == "192.0.2.2"
