"""Identity rules: passwords, tokens, refresh rotation and reuse, throttling, 2FA, API keys,
audit entries, GDPR export and deletion, rate limits.

Longer than 400 lines because registration, profile and password flows share one account
fixture set.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import jwt
import pyotp
import pytest
from sqlalchemy import func, select
from starlette.applications import Starlette

from app.models import ApiKey, AuditEntry, Membership, RefreshToken, User, Workspace
from app.security.tokens import token_hash
from tests.conftest import Servers, make_settings, running_app
from tests.helpers import PASSWORD, REGISTER, Account, bearer, create_workspace, gql, register

LOGIN = """
mutation($i: LoginInput!) {
  login(input: $i) { accessToken refreshToken twoFactorRequired user { id } errors { field code message } }
}
"""
REFRESH = "mutation($t: String!) { refreshToken(refreshToken: $t) { accessToken refreshToken errors { code } } }"
ME = "{ me { id email name twoFactorEnabled } }"


def _uuid(global_id: str) -> uuid.UUID:
    return uuid.UUID(base64.b64decode(global_id).decode().split(":", 1)[1])


async def _login(
    client: httpx.AsyncClient, email: str, password: str = PASSWORD, **extra: str
) -> dict[str, Any]:
    body = await gql(client, LOGIN, {"i": {"email": email, "password": password, **extra}})
    if body.get("errors"):
        return {"graphql_errors": body["errors"]}
    payload: dict[str, Any] = body["data"]["login"]
    return payload


async def _audit_actions(app: Starlette, **where: Any) -> list[str]:
    async with app.state.smartcontent.session_factory() as session:
        query = select(AuditEntry.action).order_by(AuditEntry.id)
        for key, value in where.items():
            query = query.where(getattr(AuditEntry, key) == value)
        return list((await session.scalars(query)).all())


# Passwords -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("password", "code"),
    [("short pass", "TOO_SHORT"), ("password1234", "TOO_COMMON"), ("aaaaaaaaaaaaaa", "TOO_COMMON")],
)
async def test_weak_passwords_are_refused(
    client: httpx.AsyncClient, password: str, code: str
) -> None:
    body = await gql(
        client,
        REGISTER,
        {"input": {"email": "weak@example.com", "password": password, "name": "W"}},
    )
    assert [e["code"] for e in body["data"]["register"]["errors"]] == [code]


async def test_password_containing_the_email_name_is_refused(client: httpx.AsyncClient) -> None:
    body = await gql(
        client,
        REGISTER,
        {
            "input": {
                "email": "margaret@example.com",
                "password": "margaret-rocks-2026",
                "name": "M",
            }
        },
    )
    assert body["data"]["register"]["errors"][0]["code"] == "CONTAINS_EMAIL"


async def test_passwords_are_stored_as_argon2id(app: Starlette, client: httpx.AsyncClient) -> None:
    account = await register(client)
    async with app.state.smartcontent.session_factory() as session:
        user = await session.get(User, _uuid(account.user_id))
    assert user is not None and user.password_hash.startswith("$argon2id$")
    assert PASSWORD not in user.password_hash


async def test_duplicate_email_and_bad_email(client: httpx.AsyncClient) -> None:
    account = await register(client)
    again = await gql(
        client,
        REGISTER,
        {"input": {"email": account.email.upper(), "password": PASSWORD, "name": "X"}},
    )
    assert again["data"]["register"]["errors"][0]["code"] == "TAKEN"
    bad = await gql(
        client, REGISTER, {"input": {"email": "not-an-email", "password": PASSWORD, "name": "X"}}
    )
    assert bad["data"]["register"]["errors"][0]["field"] == "email"


async def test_unknown_email_and_wrong_password_look_the_same(client: httpx.AsyncClient) -> None:
    account = await register(client)
    timings = {}
    results = {}
    for name, email, password in (
        ("wrong", account.email, "not the right password"),
        ("unknown", "nobody@example.com", PASSWORD),
    ):
        started = time.perf_counter()
        results[name] = await _login(client, email, password)
        timings[name] = time.perf_counter() - started
    assert results["wrong"]["errors"] == results["unknown"]["errors"]
    assert results["wrong"]["errors"][0]["code"] == "INVALID_CREDENTIALS"
    # Both pay for an argon2 verification (tens of ms): no fast path for unknown emails.
    assert min(timings.values()) > 0.01
    assert max(timings.values()) < 4 * min(timings.values())


# Access tokens ---------------------------------------------------------------------------

SECRET = make_settings(Servers("postgresql://x@h/db", "redis://h/0")).secret_key.get_secret_value()  # type: ignore[union-attr]


def _claims(account: Account) -> dict[str, Any]:
    claims: dict[str, Any] = jwt.decode(account.access_token, options={"verify_signature": False})
    return claims


async def test_access_token_claims_and_lifetime(client: httpx.AsyncClient) -> None:
    account = await register(client)
    claims = _claims(account)
    assert {"exp", "iat", "jti", "sub"} <= set(claims)
    assert claims["exp"] - claims["iat"] == 15 * 60
    assert jwt.get_unverified_header(account.access_token)["alg"] == "HS256"
    me = await gql(client, ME, headers=account.headers)
    assert me["data"]["me"]["id"] == account.user_id


def _forge(claims: dict[str, Any], *, key: str = SECRET, algorithm: str = "HS256") -> str:
    return jwt.encode(claims, key, algorithm=algorithm)


def _alg_none(claims: dict[str, Any]) -> str:
    def part(data: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")

    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}."


@pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")
async def test_bad_tokens_are_rejected(client: httpx.AsyncClient) -> None:
    account = await register(client)
    claims = _claims(account)
    now = int(datetime.now(UTC).timestamp())
    header, payload, signature = account.access_token.split(".")
    flipped = payload[:-2] + ("A" if payload[-2] != "A" else "B") + payload[-1]
    cases = {
        "expired": _forge({**claims, "iat": now - 3600, "exp": now - 60}),
        "tampered": f"{header}.{flipped}.{signature}",
        "alg none": _alg_none(claims),
        "other secret": _forge(claims, key="another-secret-that-is-long-enough-123456"),
        "HS512": _forge(claims, algorithm="HS512"),
        "garbage": "not.a.jwt",
    }
    for name, token in cases.items():
        response = await client.post("/graphql", json={"query": ME}, headers=bearer(token))
        assert response.status_code == 401, name
        assert response.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED", name
    malformed = await client.post(
        "/graphql", json={"query": ME}, headers={"Authorization": "Token abc"}
    )
    assert malformed.status_code == 401
    anonymous = await gql(client, ME)
    assert anonymous["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


# Refresh tokens and sessions ---------------------------------------------------------------


async def test_refresh_rotates_and_reuse_revokes_the_family(
    app: Starlette, client: httpx.AsyncClient
) -> None:
    account = await register(client)
    first = (await gql(client, REFRESH, {"t": account.refresh_token}))["data"]["refreshToken"]
    assert first["errors"] == [] and first["refreshToken"] != account.refresh_token
    second = (await gql(client, REFRESH, {"t": first["refreshToken"]}))["data"]["refreshToken"]
    assert second["errors"] == []
    # The first (rotated) token comes back: theft. The newest token of the family dies too.
    reused = (await gql(client, REFRESH, {"t": account.refresh_token}))["data"]["refreshToken"]
    assert reused["errors"][0]["code"] == "INVALID_REFRESH_TOKEN"
    newest = (await gql(client, REFRESH, {"t": second["refreshToken"]}))["data"]["refreshToken"]
    assert newest["errors"][0]["code"] == "INVALID_REFRESH_TOKEN"
    assert "session.reuse_detected" in await _audit_actions(app)
    # Other sessions (other families) are untouched.
    other = await _login(client, account.email)
    assert (await gql(client, REFRESH, {"t": other["refreshToken"]}))["data"]["refreshToken"][
        "errors"
    ] == []


async def test_logout_and_password_change_revoke_sessions(client: httpx.AsyncClient) -> None:
    account = await register(client)
    laptop = await _login(client, account.email)
    logout = await gql(
        client,
        "mutation($t: String!) { logout(refreshToken: $t) { success errors { code } } }",
        {"t": laptop["refreshToken"]},
        headers=bearer(laptop["accessToken"]),
    )
    assert logout["data"]["logout"]["success"] is True
    assert (await gql(client, REFRESH, {"t": laptop["refreshToken"]}))["data"]["refreshToken"][
        "errors"
    ]
    phone = await _login(client, account.email)
    change = """mutation($i: ChangePasswordInput!) { changePassword(input: $i) { accessToken refreshToken errors { code } } }"""
    wrong = await gql(
        client,
        change,
        {"i": {"currentPassword": "nope nope nope", "newPassword": "a brand new passphrase 7"}},
        headers=account.headers,
    )
    assert wrong["data"]["changePassword"]["errors"][0]["code"] == "INVALID_CREDENTIALS"
    changed = await gql(
        client,
        change,
        {"i": {"currentPassword": PASSWORD, "newPassword": "a brand new passphrase 7"}},
        headers=account.headers,
    )
    fresh = changed["data"]["changePassword"]
    assert fresh["errors"] == []
    # Every earlier session ends: access tokens fail now, refresh tokens are revoked.
    for token in (account.access_token, phone["accessToken"]):
        assert (
            await client.post("/graphql", json={"query": ME}, headers=bearer(token))
        ).status_code == 401
    assert (await gql(client, REFRESH, {"t": phone["refreshToken"]}))["data"]["refreshToken"][
        "errors"
    ]
    assert (await gql(client, ME, headers=bearer(fresh["accessToken"])))["data"]["me"][
        "id"
    ] == account.user_id
    assert (await _login(client, account.email))["errors"][0]["code"] == "INVALID_CREDENTIALS"
    assert (await _login(client, account.email, "a brand new passphrase 7"))["errors"] == []


async def test_password_reset_flow(app: Starlette, client: httpx.AsyncClient) -> None:
    account = await register(client)
    mailer = app.state.smartcontent.mailer
    mailer.outbox.clear()
    request = (
        "mutation($e: String!) { requestPasswordReset(email: $e) { success errors { code } } }"
    )
    unknown = await gql(client, request, {"e": "nobody@example.com"})
    assert unknown["data"]["requestPasswordReset"]["success"] is True and mailer.outbox == []
    await gql(client, request, {"e": account.email})
    [mail] = mailer.outbox
    assert mail.to == account.email
    token = mail.body.split("Token: ", 1)[1].split()[0]
    reset = (
        "mutation($i: ResetPasswordInput!) { resetPassword(input: $i) { success errors { code } } }"
    )
    done = await gql(
        client, reset, {"i": {"token": token, "newPassword": "reset to something new 9"}}
    )
    assert done["data"]["resetPassword"]["success"] is True
    again = await gql(
        client, reset, {"i": {"token": token, "newPassword": "and once more please 10"}}
    )
    assert again["data"]["resetPassword"]["errors"][0]["code"] == "INVALID_TOKEN"
    assert (
        await client.post("/graphql", json={"query": ME}, headers=account.headers)
    ).status_code == 401
    assert (await gql(client, REFRESH, {"t": account.refresh_token}))["data"]["refreshToken"][
        "errors"
    ]
    assert (await _login(client, account.email, "reset to something new 9"))["errors"] == []


# Login throttling ----------------------------------------------------------------------------


async def test_login_throttling_per_account_and_per_ip(servers: Servers) -> None:
    settings = make_settings(servers, login_max_failures=3, login_lock_seconds=30)
    async with (
        running_app(settings) as app,
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client,
    ):
        account = await register(client)
        for _ in range(3):
            assert (await _login(client, account.email, "wrong password here"))["errors"][0][
                "code"
            ] == "INVALID_CREDENTIALS"
        locked = await _login(client, account.email)  # right password, but locked
        error = locked["graphql_errors"][0]
        assert error["extensions"]["code"] == "RATE_LIMITED"
        assert error["extensions"]["retryAfter"] > 0
        # Per IP: failures spread over many accounts from one address lock the address.
        others = [await register(client) for _ in range(5)]
        for person in others:
            for _ in range(2):
                await _login(client, person.email, "wrong password here")
        victim = await register(client)
        blocked = await _login(client, victim.email)
        assert blocked["graphql_errors"][0]["extensions"]["code"] == "RATE_LIMITED"


async def test_success_resets_the_account_counter(servers: Servers) -> None:
    settings = make_settings(servers, login_max_failures=3)
    async with (
        running_app(settings) as app,
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client,
    ):
        account = await register(client)
        for _ in range(2):
            await _login(client, account.email, "wrong password here")
        assert (await _login(client, account.email))["errors"] == []
        for _ in range(2):
            await _login(client, account.email, "wrong password here")
        assert (await _login(client, account.email))["errors"] == [], (
            "counter was reset by the success"
        )


# Two-factor authentication ---------------------------------------------------------------------


async def _enable_2fa(
    app: Starlette, client: httpx.AsyncClient, account: Account
) -> tuple[pyotp.TOTP, list[str]]:
    enabled = await gql(
        client,
        "mutation { enableTwoFactor { secret provisioningUri errors { code } } }",
        headers=account.headers,
    )
    payload = enabled["data"]["enableTwoFactor"]
    assert payload["provisioningUri"].startswith("otpauth://totp/")
    totp = pyotp.TOTP(payload["secret"])
    async with app.state.smartcontent.session_factory() as session:
        user = await session.get(User, _uuid(account.user_id))
    assert user is not None and user.totp_secret != payload["secret"], "stored encrypted"
    assert app.state.smartcontent.keys.box.decrypt(user.totp_secret) == payload["secret"]
    confirm = (
        "mutation($c: String!) { confirmTwoFactor(code: $c) { recoveryCodes errors { code } } }"
    )
    wrong = await gql(
        client,
        confirm,
        {"c": "000000" if totp.now() != "000000" else "111111"},
        headers=account.headers,
    )
    assert wrong["data"]["confirmTwoFactor"]["errors"][0]["code"] == "INVALID_CODE"
    ok = await gql(client, confirm, {"c": totp.now()}, headers=account.headers)
    codes = ok["data"]["confirmTwoFactor"]["recoveryCodes"]
    assert len(codes) == 10
    return totp, codes


def _next_code(totp: pyotp.TOTP) -> str:
    return totp.at(datetime.now(UTC) + timedelta(seconds=30))


async def test_two_factor_login_replay_and_recovery_codes(
    app: Starlette, client: httpx.AsyncClient
) -> None:
    account = await register(client)
    totp, codes = await _enable_2fa(app, client, account)
    first = await _login(client, account.email)
    assert first["twoFactorRequired"] is True and first["accessToken"] is None
    code = _next_code(totp)  # the confirmation used the current step
    signed_in = await _login(client, account.email, twoFactorCode=code)
    assert signed_in["accessToken"] and signed_in["errors"] == []
    replay = await _login(client, account.email, twoFactorCode=code)
    assert replay["errors"][0]["code"] == "INVALID_CODE", "a code works once"
    recovered = await _login(client, account.email, recoveryCode=codes[0])
    assert recovered["accessToken"]
    used = await _login(client, account.email, recoveryCode=codes[0])
    assert used["errors"][0]["code"] == "INVALID_CODE"
    disable = "mutation($p: String!, $c: String!) { disableTwoFactor(password: $p, code: $c) { success errors { code } } }"
    no_password = await gql(
        client,
        disable,
        {"p": "wrong password", "c": codes[1]},
        headers=bearer(recovered["accessToken"]),
    )
    assert no_password["data"]["disableTwoFactor"]["errors"][0]["code"] == "INVALID_CREDENTIALS"
    off = await gql(
        client, disable, {"p": PASSWORD, "c": codes[1]}, headers=bearer(recovered["accessToken"])
    )
    assert off["data"]["disableTwoFactor"]["success"] is True
    assert (await _login(client, account.email))["twoFactorRequired"] is False


async def test_workspace_can_require_two_factor(app: Starlette, client: httpx.AsyncClient) -> None:
    owner = await register(client)
    ws = await create_workspace(client, owner)
    require = "mutation($id: ID!) { updateWorkspace(id: $id, input: {requireTwoFactor: true}) { errors { code } } }"
    refused = await gql(client, require, {"id": ws}, headers=owner.headers)
    assert refused["data"]["updateWorkspace"]["errors"][0]["code"] == "TWO_FACTOR_REQUIRED"
    await _enable_2fa(app, client, owner)
    assert (await gql(client, require, {"id": ws}, headers=owner.headers))["data"][
        "updateWorkspace"
    ]["errors"] == []
    member = await register(client)
    async with app.state.smartcontent.session_factory() as session, session.begin():
        session.add(
            Membership(workspace_id=_uuid(ws), user_id=_uuid(member.user_id), role="MEMBER")
        )
    blocked = await gql(
        client,
        "query($id: ID!) { workspace(id: $id) { name } }",
        {"id": ws},
        headers=member.headers,
    )
    assert blocked["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert blocked["errors"][0]["extensions"]["reason"] == "TWO_FACTOR_REQUIRED"
    await _enable_2fa(app, client, member)
    allowed = await gql(
        client,
        "query($id: ID!) { workspace(id: $id) { name } }",
        {"id": ws},
        headers=member.headers,
    )
    assert allowed["data"]["workspace"]["name"] == "Acme"


# API keys ------------------------------------------------------------------------------------


async def _api_key(
    client: httpx.AsyncClient, owner: Account, ws: str, role: str, **extra: Any
) -> dict[str, Any]:
    body = await gql(
        client,
        'mutation($ws: ID!, $r: Role!, $e: DateTime) { createApiKey(workspaceId: $ws, name: "partner", role: $r, expiresAt: $e)'
        " { apiKey { id prefix role } secret errors { field code } } }",
        {"ws": ws, "r": role, "e": extra.get("expires_at")},
        headers=owner.headers,
    )
    payload: dict[str, Any] = body["data"]["createApiKey"]
    return payload


async def test_api_key_is_scoped_to_its_workspace_and_role(
    app: Starlette, client: httpx.AsyncClient
) -> None:
    owner = await register(client)
    ws_a = await create_workspace(client, owner, "A")
    ws_b = await create_workspace(client, owner, "B")
    created = await _api_key(client, owner, ws_a, "MEMBER")
    secret = created["secret"]
    assert secret.startswith(f"sk_{created['apiKey']['prefix']}_")
    async with app.state.smartcontent.session_factory() as session:
        stored = await session.get(ApiKey, _uuid(created["apiKey"]["id"]))
    assert (
        stored is not None
        and stored.secret_hash == token_hash(secret)
        and secret not in stored.secret_hash
    )
    key = bearer(secret)
    assert (
        await gql(
            client, "query($id: ID!) { workspace(id: $id) { name } }", {"id": ws_a}, headers=key
        )
    )["data"]["workspace"]["name"] == "A"
    job = await gql(
        client,
        "mutation($ws: ID!) { ping(workspaceId: $ws) { job { id } errors { code } } }",
        {"ws": ws_a},
        headers=key,
    )
    assert job["data"]["ping"]["errors"] == []
    for query, variables in (
        ("query($id: ID!) { workspace(id: $id) { name } }", {"id": ws_b}),
        ("mutation($ws: ID!) { ping(workspaceId: $ws) { errors { code } } }", {"ws": ws_b}),
        ("query($ws: ID!) { auditLog(workspaceId: $ws) { edges { cursor } } }", {"ws": ws_b}),
        (
            'mutation($ws: ID!) { createApiKey(workspaceId: $ws, name: "x", role: VIEWER) { errors { code } } }',
            {"ws": ws_b},
        ),
    ):
        denied = await gql(client, query, variables, headers=key)
        assert denied["errors"][0]["extensions"]["code"] == "FORBIDDEN", query
    assert (await gql(client, ME, headers=key))["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    # Revocation takes effect at once.
    revoked = await gql(
        client,
        "mutation($id: ID!) { revokeApiKey(id: $id) { apiKey { revokedAt } errors { code } } }",
        {"id": created["apiKey"]["id"]},
        headers=owner.headers,
    )
    assert revoked["data"]["revokeApiKey"]["apiKey"]["revokedAt"] is not None
    after = await client.post(
        "/graphql", json={"query": "{ workspaces { edges { cursor } } }"}, headers=key
    )
    assert after.status_code == 401


async def test_expired_and_malformed_keys_fail(client: httpx.AsyncClient) -> None:
    owner = await register(client)
    ws = await create_workspace(client, owner)
    past = (datetime.now(UTC) - timedelta(days=1)).isoformat()
    refused = await _api_key(client, owner, ws, "VIEWER", expires_at=past)
    assert refused["errors"] == [{"field": "expiresAt", "code": "IN_THE_PAST"}]
    too_high = await _api_key(client, owner, ws, "OWNER")
    assert too_high["errors"][0]["code"] == "NOT_ALLOWED"
    for value in ("sk_", "sk_nope_nope", "sk_" + "x" * 40):
        response = await client.post(
            "/graphql", json={"query": "{ workspaces { edges { cursor } } }"}, headers=bearer(value)
        )
        assert response.status_code == 401


# Audit log and GDPR -------------------------------------------------------------------------------


async def test_mutations_write_audit_entries_with_ip_and_request_id(
    app: Starlette, client: httpx.AsyncClient
) -> None:
    owner = await register(client)
    ws = await create_workspace(client, owner)
    await gql(
        client,
        'mutation($id: ID!) { updateWorkspace(id: $id, input: {name: "Renamed"}) { errors { code } } }',
        {"id": ws},
        headers={**owner.headers, "X-Request-ID": "trace-audit-0001"},
    )
    log = await gql(
        client,
        "query($ws: ID!) { auditLog(workspaceId: $ws, first: 10) { edges { node { action actorLabel targetType ip requestId details } } } }",
        {"ws": ws},
        headers=owner.headers,
    )
    entries = [e["node"] for e in log["data"]["auditLog"]["edges"]]
    assert [e["action"] for e in entries] == ["updateWorkspace", "createWorkspace"]
    latest = entries[0]
    assert latest["actorLabel"] == owner.email and latest["targetType"] == "Workspace"
    assert latest["requestId"] == "trace-audit-0001" and latest["ip"]
    assert latest["details"] == {"name": "Renamed"}
    filtered = await gql(
        client,
        'query($ws: ID!) { auditLog(workspaceId: $ws, filter: {action: "createWorkspace"}) { edges { node { action } } } }',
        {"ws": ws},
        headers=owner.headers,
    )
    assert [e["node"]["action"] for e in filtered["data"]["auditLog"]["edges"]] == [
        "createWorkspace"
    ]


async def test_export_my_data_contains_my_data(client: httpx.AsyncClient) -> None:
    account = await register(client, name="Ada Export")
    await create_workspace(client, account, "Exported WS")
    body = await gql(
        client, "mutation { exportMyData { data errors { code } } }", headers=account.headers
    )
    data = body["data"]["exportMyData"]["data"]
    assert data["profile"]["email"] == account.email and data["profile"]["name"] == "Ada Export"
    assert [m["workspace_name"] for m in data["memberships"]] == ["Exported WS"]
    assert data["sessions"] and {"register", "createWorkspace"} <= {
        a["action"] for a in data["activity"]
    }


async def test_delete_account_transfers_or_deletes_workspaces(
    app: Starlette, client: httpx.AsyncClient
) -> None:
    owner = await register(client)
    shared = await create_workspace(client, owner, "Shared")
    solo = await create_workspace(client, owner, "Solo")
    admin, member = await register(client), await register(client)
    async with app.state.smartcontent.session_factory() as session, session.begin():
        session.add(
            Membership(workspace_id=_uuid(shared), user_id=_uuid(member.user_id), role="MEMBER")
        )
        await session.flush()
        session.add(
            Membership(workspace_id=_uuid(shared), user_id=_uuid(admin.user_id), role="ADMIN")
        )
    delete = "mutation($p: String!) { deleteAccount(password: $p) { success errors { code } } }"
    wrong = await gql(client, delete, {"p": "not my password"}, headers=owner.headers)
    assert wrong["data"]["deleteAccount"]["errors"][0]["code"] == "INVALID_CREDENTIALS"
    done = await gql(client, delete, {"p": PASSWORD}, headers=owner.headers)
    assert done["data"]["deleteAccount"]["success"] is True
    state = app.state.smartcontent
    async with state.session_factory() as session:
        assert await session.get(User, _uuid(owner.user_id)) is None
        assert await session.get(Workspace, _uuid(solo)) is None, "alone in it: deleted"
        roles = dict(
            (
                await session.execute(
                    select(Membership.user_id, Membership.role).where(
                        Membership.workspace_id == _uuid(shared)
                    )
                )
            ).all()
        )
        assert roles == {_uuid(admin.user_id): "OWNER", _uuid(member.user_id): "MEMBER"}, (
            "admin inherits"
        )
        tokens = await session.scalar(
            select(func.count())
            .select_from(RefreshToken)
            .where(RefreshToken.user_id == _uuid(owner.user_id))
        )
        assert tokens == 0
        trail = (
            await session.execute(
                select(AuditEntry.actor_user_id, AuditEntry.actor_label, AuditEntry.ip).where(
                    AuditEntry.workspace_id == _uuid(shared)
                )
            )
        ).all()
        assert trail and all(
            row.actor_user_id is None or row.actor_user_id != _uuid(owner.user_id) for row in trail
        )
        assert all(row.actor_label != owner.email for row in trail)
    assert (
        await client.post("/graphql", json={"query": ME}, headers=owner.headers)
    ).status_code == 401


# Rate limits ---------------------------------------------------------------------------------------


async def test_rate_limits_per_principal_with_headers(servers: Servers) -> None:
    settings = make_settings(servers, rate_limit_free=4, rate_limit_anonymous=4)
    async with (
        running_app(settings) as app,
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client,
    ):
        alice = await register(client)  # anonymous operation 1
        bob = await register(client)  # 2
        first = await client.post("/graphql", json={"query": "{ health { version } }"})  # 3
        assert first.headers["x-ratelimit-limit"] == "4"
        assert int(first.headers["x-ratelimit-remaining"]) == 1
        assert int(first.headers["x-ratelimit-reset"]) >= int(time.time())
        await client.post("/graphql", json={"query": "{ health { version } }"})  # 4
        limited = await client.post("/graphql", json={"query": "{ health { version } }"})
        assert limited.status_code == 429
        assert int(limited.headers["retry-after"]) >= 1
        error = limited.json()["errors"][0]
        assert (
            error["extensions"]["code"] == "RATE_LIMITED" and error["extensions"]["retryAfter"] >= 1
        )
        # Each signed-in user has a bucket of their own (free tier: 4 per minute).
        for _ in range(4):
            assert (
                await client.post("/graphql", json={"query": ME}, headers=alice.headers)
            ).status_code == 200
        assert (
            await client.post("/graphql", json={"query": ME}, headers=alice.headers)
        ).status_code == 429
        assert (
            await client.post("/graphql", json={"query": ME}, headers=bob.headers)
        ).status_code == 200
        assert app is not None


async def test_new_workspace_reports_the_creator_as_owner(client: httpx.AsyncClient) -> None:
    owner = await register(client)
    made = await gql(
        client,
        'mutation { createWorkspace(input: {name: "Fresh"}) { workspace { viewerRole memberCount } } }',
        headers=owner.headers,
    )
    assert made["data"]["createWorkspace"]["workspace"] == {"viewerRole": "OWNER", "memberCount": 1}
