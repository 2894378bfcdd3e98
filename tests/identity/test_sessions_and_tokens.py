"""Identity as a client sees it, in depth: registration rules, login, access JWTs, refresh
rotation and reuse, logout, password change and reset, login throttling, two-factor
authentication, a workspace's 2FA requirement, profile and API-key limits.

Longer than 400 lines because sign-in, tokens, refresh rotation and 2FA share one set of
fixtures and flows; each section below is headed.
"""

from __future__ import annotations

import asyncio
import base64
import hmac
import json
import statistics
import threading
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from hashlib import sha256
from typing import Any

import httpx
import jwt
import pyotp
import pytest
from argon2 import PasswordHasher
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from sqlalchemy import func, select, update
from starlette.applications import Starlette

from app.models import AuditEntry, PasswordResetToken, RefreshToken, User, Workspace
from app.security import passwords
from app.security.tokens import token_hash
from app.settings import Settings
from tests.conftest import Servers, make_settings, running_app
from tests.helpers import (
    PASSWORD,
    REGISTER,
    Account,
    bearer,
    create_workspace,
    gql,
    ping,
    register,
    unique,
)

# Operations --------------------------------------------------------------------------------

LOGIN = """
mutation($i: LoginInput!) {
  login(input: $i) {
    accessToken accessTokenExpiresAt refreshToken twoFactorRequired
    user { id email } errors { field code message }
  }
}
"""
REFRESH = """
mutation($t: String!) {
  refreshToken(refreshToken: $t) {
    accessToken refreshToken user { id } errors { field code message }
  }
}
"""
LOGOUT = "mutation($t: String!) { logout(refreshToken: $t) { success errors { field code } } }"
ME = "{ me { id email name twoFactorEnabled } }"
CHANGE_PASSWORD = """
mutation($i: ChangePasswordInput!) {
  changePassword(input: $i) { accessToken refreshToken user { id } errors { field code message } }
}
"""
REQUEST_RESET = (
    "mutation($e: String!) { requestPasswordReset(email: $e) { success errors { code } } }"
)
RESET = """
mutation($i: ResetPasswordInput!) {
  resetPassword(input: $i) { success errors { field code message } }
}
"""
UPDATE_PROFILE = """
mutation($i: UpdateProfileInput!) {
  updateProfile(input: $i) { user { id name } errors { field code message } }
}
"""
ENABLE_2FA = "mutation { enableTwoFactor { secret provisioningUri errors { field code } } }"
CONFIRM_2FA = (
    "mutation($c: String!) { confirmTwoFactor(code: $c) { recoveryCodes errors { field code } } }"
)
DISABLE_2FA = """
mutation($p: String!, $c: String!) {
  disableTwoFactor(password: $p, code: $c) { success errors { field code } }
}
"""
WORKSPACE = "query($id: ID!) { workspace(id: $id) { id name requireTwoFactor } }"
REQUIRE_2FA = """
mutation($id: ID!, $on: Boolean!) {
  updateWorkspace(id: $id, input: {requireTwoFactor: $on}) {
    workspace { requireTwoFactor } errors { field code message }
  }
}
"""
INVITE = """
mutation($ws: ID!, $e: String!, $r: Role!) {
  inviteMember(workspaceId: $ws, email: $e, role: $r) { invitationToken errors { code } }
}
"""
ACCEPT = (
    "mutation($t: String!) { acceptInvitation(token: $t) { workspace { id } errors { code } } }"
)
CREATE_KEY = """
mutation($ws: ID!, $r: Role!) {
  createApiKey(workspaceId: $ws, name: "partner", role: $r) { secret errors { field code } }
}
"""

NEW_PASSWORD = "a completely different passphrase 77"
WRONG_PASSWORD = "definitely not the password"


# Helpers ----------------------------------------------------------------------------------


def _uuid(global_id: str) -> uuid.UUID:
    return uuid.UUID(base64.b64decode(global_id).decode().split(":", 1)[1])


def _state(app: Starlette) -> Any:
    return app.state.smartcontent


async def _login(
    client: httpx.AsyncClient, email: str, password: str = PASSWORD, **extra: str
) -> dict[str, Any]:
    """The login payload, or {"graphql_errors": [...]} when the operation failed as a whole."""
    body = await gql(client, LOGIN, {"i": {"email": email, "password": password, **extra}})
    if body.get("errors"):
        assert body["data"] is None, body
        return {"graphql_errors": body["errors"]}
    payload: dict[str, Any] = body["data"]["login"]
    return payload


async def _refresh(client: httpx.AsyncClient, token: str) -> dict[str, Any]:
    payload: dict[str, Any] = (await gql(client, REFRESH, {"t": token}))["data"]["refreshToken"]
    return payload


def _codes(payload: dict[str, Any]) -> list[str]:
    return [e["code"] for e in payload["errors"]]


async def _me_status(client: httpx.AsyncClient, token: str) -> int:
    response = await client.post("/graphql", json={"query": ME}, headers=bearer(token))
    return response.status_code


async def _assert_me(client: httpx.AsyncClient, token: str, user_id: str) -> None:
    body = await gql(client, ME, headers=bearer(token))
    assert "errors" not in body, body
    assert body["data"]["me"]["id"] == user_id


async def _assert_rejected(client: httpx.AsyncClient, authorization: str, label: str) -> None:
    response = await client.post(
        "/graphql", json={"query": ME}, headers={"Authorization": authorization}
    )
    assert response.status_code == 401, (label, response.text)
    body = response.json()
    assert body["data"] is None, label
    assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED", label
    assert response.headers["www-authenticate"].startswith("Bearer"), label


async def _user_row(app: Starlette, account: Account) -> User:
    async with _state(app).session_factory() as session:
        user = await session.get(User, _uuid(account.user_id))
    assert user is not None
    return user


async def _audit(app: Starlette, action: str) -> list[AuditEntry]:
    async with _state(app).session_factory() as session:
        rows = await session.scalars(
            select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.id)
        )
        return list(rows.all())


async def _api_key(client: httpx.AsyncClient, owner: Account, ws: str, role: str) -> str:
    body = await gql(client, CREATE_KEY, {"ws": ws, "r": role}, headers=owner.headers)
    payload = body["data"]["createApiKey"]
    assert payload["errors"] == [], payload
    secret: str = payload["secret"]
    assert secret.startswith("sk_")
    return secret


async def _join(
    client: httpx.AsyncClient, owner: Account, ws: str, role: str = "MEMBER"
) -> Account:
    """A new account that joins `ws` through an invitation."""
    member = await register(client)
    invited = await gql(
        client, INVITE, {"ws": ws, "e": member.email, "r": role}, headers=owner.headers
    )
    token = invited["data"]["inviteMember"]["invitationToken"]
    assert token, invited
    accepted = await gql(client, ACCEPT, {"t": token}, headers=member.headers)
    assert accepted["data"]["acceptInvitation"]["errors"] == [], accepted
    return member


@asynccontextmanager
async def _dedicated(
    servers: Servers, **overrides: Any
) -> AsyncIterator[tuple[Starlette, httpx.AsyncClient]]:
    """An app of its own (e.g. with lower login limits) and a client of it at 127.0.0.1."""
    async with (
        running_app(make_settings(servers, **overrides)) as app,
        _client_at(app, "127.0.0.1") as client,
    ):
        yield app, client


def _client_at(app: Starlette, ip: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app, client=(ip, 40001)), base_url="http://testserver"
    )


# Passwords and registration ---------------------------------------------------------------


async def test_register_signs_in_and_normalises_the_email(client: httpx.AsyncClient) -> None:
    local = unique("Ada.Lovelace")
    body = await gql(
        client,
        REGISTER,
        {"input": {"email": f"  {local}@Example.COM ", "password": PASSWORD, "name": "  Ada  "}},
    )
    payload = body["data"]["register"]
    assert payload["errors"] == []
    assert payload["user"]["email"] == f"{local.lower()}@example.com"
    assert payload["user"]["name"] == "Ada"
    assert payload["accessToken"] and payload["refreshToken"].startswith("rt_")
    me = await gql(client, ME, headers=bearer(payload["accessToken"]))
    assert me["data"]["me"] == {
        "id": payload["user"]["id"],
        "email": f"{local.lower()}@example.com",
        "name": "Ada",
        "twoFactorEnabled": False,
    }
    # The account signs in with the email spelled any way.
    assert (await _login(client, f"{local.upper()}@EXAMPLE.com"))["errors"] == []


@pytest.mark.parametrize(
    ("password", "code"),
    [
        ("elevenchars", "TOO_SHORT"),  # 11 characters
        ("", "TOO_SHORT"),
        ("password1234", "TOO_COMMON"),
        ("PassWord1234", "TOO_COMMON"),  # the list is matched case-insensitively
        ("qwertyuiop123", "TOO_COMMON"),
        ("abababababababab", "TOO_COMMON"),  # two distinct characters
        ("x" * 257, "TOO_LONG"),
        # The local part of the email ("grace.hopper") inside the password.
        ("my-GRACE.HOPPER-pass!", "CONTAINS_EMAIL"),
    ],
)
async def test_weak_passwords_are_refused_and_create_nothing(
    app: Starlette, client: httpx.AsyncClient, password: str, code: str
) -> None:
    body = await gql(
        client,
        REGISTER,
        {"input": {"email": "grace.hopper@example.com", "password": password, "name": "Grace"}},
    )
    payload = body["data"]["register"]
    assert [(e["field"], e["code"]) for e in payload["errors"]] == [("password", code)]
    assert payload["accessToken"] is None and payload["refreshToken"] is None
    assert payload["user"] is None
    async with _state(app).session_factory() as session:
        assert await session.scalar(select(func.count()).select_from(User)) == 0


async def test_a_password_with_the_email_name_says_so(client: httpx.AsyncClient) -> None:
    body = await gql(
        client,
        REGISTER,
        {
            "input": {
                "email": "grace.hopper@example.com",
                "password": "x" + "GraceHopper" + "!2",
                "name": "G",
            }
        },
    )
    assert body["data"]["register"]["errors"] == []  # "gracehopper" is not "grace.hopper"
    body = await gql(
        client,
        REGISTER,
        {"input": {"email": "ada.l@example.com", "password": "zz-Ada.L-2026-zz", "name": "A"}},
    )
    [error] = body["data"]["register"]["errors"]
    assert error["code"] == "CONTAINS_EMAIL" and "email" in error["message"]


async def test_twelve_characters_is_enough(client: httpx.AsyncClient) -> None:
    body = await gql(
        client,
        REGISTER,
        {"input": {"email": "grace.hopper@example.com", "password": "k7#Rq!v2Lp9z", "name": "G"}},
    )
    assert body["data"]["register"]["errors"] == []


@pytest.mark.parametrize(
    "email", ["not-an-email", "user@", "@example.com", "two@@example.com", "a b@example.com", ""]
)
async def test_invalid_emails_are_refused(client: httpx.AsyncClient, email: str) -> None:
    body = await gql(
        client, REGISTER, {"input": {"email": email, "password": PASSWORD, "name": "X"}}
    )
    payload = body["data"]["register"]
    assert [(e["field"], e["code"]) for e in payload["errors"]] == [("email", "INVALID")]
    assert payload["accessToken"] is None


async def test_duplicate_email_is_taken_in_any_spelling(
    app: Starlette, client: httpx.AsyncClient
) -> None:
    account = await register(client, email="taken@example.com")
    for spelling in ("TAKEN@Example.com", "  taken@EXAMPLE.COM  "):
        body = await gql(
            client,
            REGISTER,
            {"input": {"email": spelling, "password": NEW_PASSWORD, "name": "Other"}},
        )
        payload = body["data"]["register"]
        assert [(e["field"], e["code"]) for e in payload["errors"]] == [("email", "TAKEN")]
        assert payload["accessToken"] is None
    async with _state(app).session_factory() as session:
        assert await session.scalar(select(func.count()).select_from(User)) == 1
    # The original account keeps its password.
    assert (await _login(client, account.email))["errors"] == []


async def test_concurrent_registrations_of_one_email_give_taken_not_a_crash(
    app: Starlette, client: httpx.AsyncClient
) -> None:
    variables = {"input": {"email": "race@example.com", "password": PASSWORD, "name": "R"}}
    bodies = await asyncio.gather(*(gql(client, REGISTER, variables) for _ in range(3)))
    assert all("errors" not in b for b in bodies), bodies
    payloads = [b["data"]["register"] for b in bodies]
    assert sum(1 for p in payloads if p["errors"] == []) == 1, payloads
    assert sorted(_codes(p) for p in payloads if p["errors"]) == [["TAKEN"]] * 2
    async with _state(app).session_factory() as session:
        assert await session.scalar(select(func.count()).select_from(User)) == 1


async def test_passwords_are_stored_as_argon2id(app: Starlette, client: httpx.AsyncClient) -> None:
    account = await register(client)
    user = await _user_row(app, account)
    # argon2-cffi's default: RFC 9106's low-memory argon2id profile.
    assert user.password_hash.startswith("$argon2id$v=19$m=65536,t=3,p=4$")
    assert PASSWORD not in user.password_hash
    hasher = PasswordHasher()
    assert hasher.verify(user.password_hash, PASSWORD)
    other = await register(client)
    assert (await _user_row(app, other)).password_hash != user.password_hash, "salted"


# Login ------------------------------------------------------------------------------------


async def test_login_returns_a_working_session(app: Starlette, client: httpx.AsyncClient) -> None:
    account = await register(client)
    before = datetime.now(UTC)
    payload = await _login(client, account.email)
    assert payload["errors"] == [] and payload["twoFactorRequired"] is False
    assert payload["user"] == {"id": account.user_id, "email": account.email}
    assert payload["refreshToken"].startswith("rt_")
    assert payload["refreshToken"] != account.refresh_token
    expires = datetime.fromisoformat(payload["accessTokenExpiresAt"])
    assert timedelta(minutes=14, seconds=50) < expires - before < timedelta(minutes=15, seconds=5)
    await _assert_me(client, payload["accessToken"], account.user_id)
    user = await _user_row(app, account)
    assert user.last_login_at is not None and user.last_login_at >= before - timedelta(seconds=1)
    # Refresh tokens are stored only as hashes.
    async with _state(app).session_factory() as session:
        stored = await session.scalar(
            select(RefreshToken).where(
                RefreshToken.token_hash == token_hash(payload["refreshToken"])
            )
        )
        assert stored is not None and stored.user_id == _uuid(account.user_id)
        assert stored.ip == "127.0.0.1"
        assert (
            await session.scalar(
                select(func.count())
                .select_from(RefreshToken)
                .where(RefreshToken.token_hash == payload["refreshToken"])
            )
            == 0
        )
    [entry] = await _audit(app, "login")
    assert entry.actor_user_id == _uuid(account.user_id) and entry.ip == "127.0.0.1"


async def test_unknown_email_and_wrong_password_are_indistinguishable(
    client: httpx.AsyncClient,
) -> None:
    account = await register(client)
    attempts = {
        "wrong password": (account.email, WRONG_PASSWORD),
        "unknown email": (f"{unique('nobody')}@example.com", PASSWORD),
    }
    timings: dict[str, list[float]] = {name: [] for name in attempts}
    payloads: dict[str, dict[str, Any]] = {}
    for _ in range(3):  # interleaved, so drift in machine load hits both alike
        for name, (email, password) in attempts.items():
            started = time.perf_counter()
            payloads[name] = await _login(client, email, password)
            timings[name].append(time.perf_counter() - started)
    wrong, unknown = payloads["wrong password"], payloads["unknown email"]
    assert wrong == unknown, "same payload: same field, code and message, no tokens"
    assert wrong["errors"] == [
        {"field": None, "code": "INVALID_CREDENTIALS", "message": "Email or password is incorrect."}
    ]
    assert wrong["accessToken"] is None and wrong["user"] is None
    medians = {name: statistics.median(values) for name, values in timings.items()}
    # Both pay for an argon2id verification (tens of ms): no fast path for unknown emails.
    assert min(medians.values()) > 0.010, medians
    assert max(medians.values()) < 3 * min(medians.values()), medians
    # An empty password is just another wrong password.
    assert await _login(client, account.email, "") == wrong


# Access tokens -----------------------------------------------------------------------------


def _claims(token: str) -> dict[str, Any]:
    claims: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    return claims


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unsigned(header: dict[str, Any], claims: dict[str, Any], signature: str = "") -> str:
    return f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}.{signature}"


@pytest.fixture
def secret(app: Starlette, settings: Settings) -> str:
    assert settings.secret_key is not None
    value = settings.secret_key.get_secret_value()
    assert value == _state(app).keys.signing_secret, "the app signs with the test secret"
    return value


async def test_access_token_claims_and_fifteen_minute_lifetime(
    client: httpx.AsyncClient, secret: str
) -> None:
    account = await register(client)
    header = jwt.get_unverified_header(account.access_token)
    assert header["alg"] == "HS256"
    claims = _claims(account.access_token)
    assert {"exp", "iat", "jti", "sub"} <= set(claims)
    assert claims["sub"] == str(_uuid(account.user_id))
    assert claims["exp"] - claims["iat"] == 15 * 60
    assert abs(claims["iat"] - time.time()) < 30
    # Verifies with the pinned algorithm and the test secret.
    jwt.decode(
        account.access_token,
        secret,
        algorithms=["HS256"],
        audience=claims["aud"],
        issuer=claims["iss"],
    )
    again = await _refresh(client, account.refresh_token)
    assert _claims(again["accessToken"])["jti"] != claims["jti"], "every token has its own jti"


async def test_a_token_signed_with_the_test_secret_is_accepted(
    client: httpx.AsyncClient, secret: str
) -> None:
    """The forging helpers below are sound: a correctly signed token passes."""
    account = await register(client)
    claims = _claims(account.access_token)
    now = int(time.time())
    forged = jwt.encode(
        {**claims, "iat": now, "exp": now + 60, "jti": uuid.uuid4().hex}, secret, "HS256"
    )
    await _assert_me(client, forged, account.user_id)


@pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")
async def test_bad_access_tokens_are_401_unauthenticated(
    client: httpx.AsyncClient, secret: str
) -> None:
    account = await register(client)
    claims = _claims(account.access_token)
    now = int(time.time())
    header, payload, signature = account.access_token.split(".")
    # Flip one character in the middle of the payload (base64url stays valid).
    mid = len(payload) // 2
    flipped = payload[:mid] + ("A" if payload[mid] != "A" else "B") + payload[mid + 1 :]
    sig_flipped = signature[:5] + ("A" if signature[5] != "A" else "B") + signature[6:]
    private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public_pem = private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )

    def signed(changes: dict[str, Any], drop: tuple[str, ...] = ()) -> str:
        data = {k: v for k, v in {**claims, **changes}.items() if k not in drop}
        return jwt.encode(data, secret, algorithm="HS256")

    # An attacker's token for the same user, with a hand-made HS256 signature over the
    # public key (the RS/HS confusion attack).
    confused_header = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    confused_body = _b64(json.dumps({**claims, "jti": uuid.uuid4().hex}).encode())
    confused_sig = _b64(
        hmac.new(public_pem, f"{confused_header}.{confused_body}".encode(), sha256).digest()
    )
    cases = {
        "expired": signed({"iat": now - 3600, "exp": now - 60}),
        "tampered payload": f"{header}.{flipped}.{signature}",
        "tampered signature": f"{header}.{payload}.{sig_flipped}",
        "no signature": f"{header}.{payload}.",
        "alg none": _unsigned({"alg": "none", "typ": "JWT"}, claims),
        "alg None": _unsigned({"alg": "None", "typ": "JWT"}, claims),
        "alg none with old signature": _unsigned({"alg": "none"}, claims, signature),
        "other secret": jwt.encode(claims, "another-secret-that-is-long-enough-42", "HS256"),
        "HS512 with the right secret": jwt.encode(claims, secret, algorithm="HS512"),
        "RS256": jwt.encode(claims, private_key, algorithm="RS256"),
        "HS256 keyed with an RSA public key": f"{confused_header}.{confused_body}.{confused_sig}",
        "wrong audience": signed({"aud": "someone-else"}),
        "wrong issuer": signed({"iss": "evil"}),
        "not an access token": signed({"typ": "refresh"}),
        "no exp": signed({}, drop=("exp",)),
        "no jti": signed({}, drop=("jti",)),
        "no sub": signed({}, drop=("sub",)),
        "no iat": signed({}, drop=("iat",)),
        "sub not a uuid": signed({"sub": "admin"}),
        "unknown user": signed({"sub": str(uuid.uuid4())}),
        "old token version": signed({"ver": claims["ver"] + 1}),
        "issued in the future": signed({"iat": now + 3600, "exp": now + 4000}),
        "garbage": "not.a.jwt",
        "two parts": f"{header}.{payload}",
    }
    for label, token in cases.items():
        await _assert_rejected(client, f"Bearer {token}", label)
    # The genuine token still works: the rejections were about the tokens.
    await _assert_me(client, account.access_token, account.user_id)


async def test_malformed_authorization_headers_are_401(client: httpx.AsyncClient) -> None:
    account = await register(client)
    for value in (
        f"Token {account.access_token}",
        f"Basic {base64.b64encode(b'user:pass').decode()}",
        "Bearer",
        f"Bearer{account.access_token}",
        account.access_token,
        "Bearer sk_",
        "Bearer sk_nope_nothing",
    ):
        await _assert_rejected(client, value, value[:20])
    # A bad credential fails the whole request, even for a public field.
    response = await client.post(
        "/graphql", json={"query": "{ health { version } }"}, headers=bearer("garbage")
    )
    assert response.status_code == 401
    # The scheme is case-insensitive (RFC 9110); no header at all is anonymous.
    await _assert_me(client, account.access_token, account.user_id)
    lower = await gql(client, ME, headers={"Authorization": f"bearer {account.access_token}"})
    assert lower["data"]["me"]["id"] == account.user_id
    anonymous = await gql(client, ME)
    assert anonymous["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


# Refresh tokens ----------------------------------------------------------------------------


async def test_refresh_rotates_to_a_new_pair_every_time(client: httpx.AsyncClient) -> None:
    account = await register(client)
    seen_refresh = {account.refresh_token}
    seen_jti = {_claims(account.access_token)["jti"]}
    current = account.refresh_token
    for _ in range(3):
        pair = await _refresh(client, current)
        assert pair["errors"] == [] and pair["user"]["id"] == account.user_id
        assert pair["refreshToken"] not in seen_refresh
        assert _claims(pair["accessToken"])["jti"] not in seen_jti
        seen_refresh.add(pair["refreshToken"])
        seen_jti.add(_claims(pair["accessToken"])["jti"])
        await _assert_me(client, pair["accessToken"], account.user_id)
        current = pair["refreshToken"]


async def test_bogus_and_expired_refresh_tokens_fail(
    app: Starlette, client: httpx.AsyncClient
) -> None:
    account = await register(client)
    for bogus in ("", "rt_nope", account.access_token):
        failed = await _refresh(client, bogus)
        assert [(e["field"], e["code"]) for e in failed["errors"]] == [
            ("refreshToken", "INVALID_REFRESH_TOKEN")
        ]
        assert failed["accessToken"] is None and failed["refreshToken"] is None
    async with _state(app).session_factory() as session, session.begin():
        await session.execute(
            update(RefreshToken)
            .where(RefreshToken.token_hash == token_hash(account.refresh_token))
            .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
    assert _codes(await _refresh(client, account.refresh_token)) == ["INVALID_REFRESH_TOKEN"]
    assert await _audit(app, "session.reuse_detected") == []


async def test_reusing_a_rotated_refresh_token_revokes_the_family(
    app: Starlette, client: httpx.AsyncClient
) -> None:
    account = await register(client)
    other_device = await _login(client, account.email)  # another family
    first = await _refresh(client, account.refresh_token)
    second = await _refresh(client, first["refreshToken"])
    assert first["errors"] == [] and second["errors"] == []
    # The thief (or the victim) presents the already-rotated first token.
    reused = await _refresh(client, account.refresh_token)
    assert _codes(reused) == ["INVALID_REFRESH_TOKEN"] and reused["accessToken"] is None
    # Even the newest token of that family is dead now.
    assert _codes(await _refresh(client, second["refreshToken"])) == ["INVALID_REFRESH_TOKEN"]
    [entry] = await _audit(app, "session.reuse_detected")
    assert entry.actor_user_id == _uuid(account.user_id)
    assert entry.target_id == str(_uuid(account.user_id))
    async with _state(app).session_factory() as session:
        family = uuid.UUID(entry.details["family_id"])
        rows = (
            await session.scalars(select(RefreshToken).where(RefreshToken.family_id == family))
        ).all()
    assert len(rows) == 3 and all(r.revoked_at is not None for r in rows)
    # The other device's session is a different family and survives.
    survivor = await _refresh(client, other_device["refreshToken"])
    assert survivor["errors"] == []


# Logout and password change -----------------------------------------------------------------


async def test_logout_revokes_that_session_only(app: Starlette, client: httpx.AsyncClient) -> None:
    account = await register(client)
    laptop = await _login(client, account.email)
    rotated = await _refresh(client, laptop["refreshToken"])
    out = await gql(
        client, LOGOUT, {"t": rotated["refreshToken"]}, headers=bearer(rotated["accessToken"])
    )
    assert out["data"]["logout"] == {"success": True, "errors": []}
    assert _codes(await _refresh(client, rotated["refreshToken"])) == ["INVALID_REFRESH_TOKEN"]
    async with _state(app).session_factory() as session:
        family = await session.scalar(
            select(RefreshToken.family_id).where(
                RefreshToken.token_hash == token_hash(laptop["refreshToken"])
            )
        )
        alive = await session.scalar(
            select(func.count())
            .select_from(RefreshToken)
            .where(RefreshToken.family_id == family, RefreshToken.revoked_at.is_(None))
        )
    assert alive == 0
    # The registration session (another family) is untouched.
    assert (await _refresh(client, account.refresh_token))["errors"] == []
    assert [e.action for e in await _audit(app, "logout")] == ["logout"]


async def test_logout_refuses_someone_elses_or_a_bogus_token(client: httpx.AsyncClient) -> None:
    alice = await register(client)
    bob = await register(client)
    theirs = await gql(client, LOGOUT, {"t": bob.refresh_token}, headers=alice.headers)
    assert theirs["data"]["logout"] == {
        "success": False,
        "errors": [{"field": "refreshToken", "code": "INVALID_REFRESH_TOKEN"}],
    }
    assert (await _refresh(client, bob.refresh_token))["errors"] == [], "bob still signed in"
    bogus = await gql(client, LOGOUT, {"t": "rt_bogus"})
    assert bogus["data"]["logout"]["success"] is False


async def test_change_password_ends_every_session_and_returns_a_fresh_one(
    client: httpx.AsyncClient,
) -> None:
    account = await register(client)
    phone = await _login(client, account.email)
    wrong = await gql(
        client,
        CHANGE_PASSWORD,
        {"i": {"currentPassword": WRONG_PASSWORD, "newPassword": NEW_PASSWORD}},
        headers=account.headers,
    )
    payload = wrong["data"]["changePassword"]
    assert [(e["field"], e["code"]) for e in payload["errors"]] == [
        ("currentPassword", "INVALID_CREDENTIALS")
    ]
    assert payload["accessToken"] is None
    weak = await gql(
        client,
        CHANGE_PASSWORD,
        {"i": {"currentPassword": PASSWORD, "newPassword": "short"}},
        headers=account.headers,
    )
    assert [(e["field"], e["code"]) for e in weak["data"]["changePassword"]["errors"]] == [
        ("newPassword", "TOO_SHORT")
    ]
    # Nothing changed so far.
    await _assert_me(client, phone["accessToken"], account.user_id)

    changed = await gql(
        client,
        CHANGE_PASSWORD,
        {"i": {"currentPassword": PASSWORD, "newPassword": NEW_PASSWORD}},
        headers=account.headers,
    )
    fresh = changed["data"]["changePassword"]
    assert fresh["errors"] == [] and fresh["user"]["id"] == account.user_id
    # Existing access tokens stop working at once (token version), refresh tokens are revoked.
    for token in (account.access_token, phone["accessToken"]):
        assert await _me_status(client, token) == 401
    for token in (account.refresh_token, phone["refreshToken"]):
        assert _codes(await _refresh(client, token)) == ["INVALID_REFRESH_TOKEN"]
    # The fresh pair works, including its refresh token.
    await _assert_me(client, fresh["accessToken"], account.user_id)
    rotated = await _refresh(client, fresh["refreshToken"])
    assert rotated["errors"] == []
    await _assert_me(client, rotated["accessToken"], account.user_id)
    assert _codes(await _login(client, account.email)) == ["INVALID_CREDENTIALS"]
    assert (await _login(client, account.email, NEW_PASSWORD))["errors"] == []


# Password reset ------------------------------------------------------------------------------


def _reset_token(mail: Any) -> str:
    token: str = mail.body.split("Token: ", 1)[1].split()[0]
    assert token.startswith("pr_")
    return token


async def _request_reset(client: httpx.AsyncClient, email: str) -> None:
    body = await gql(client, REQUEST_RESET, {"e": email})
    assert body["data"]["requestPasswordReset"] == {"success": True, "errors": []}


async def _reset(client: httpx.AsyncClient, token: str, password: str) -> dict[str, Any]:
    body = await gql(client, RESET, {"i": {"token": token, "newPassword": password}})
    payload: dict[str, Any] = body["data"]["resetPassword"]
    return payload


async def test_password_reset_by_mail_works_once_and_ends_sessions(
    app: Starlette, client: httpx.AsyncClient
) -> None:
    account = await register(client)
    second_session = await _login(client, account.email)
    outbox = _state(app).mailer.outbox
    outbox.clear()
    await _request_reset(client, f"{unique('nobody')}@example.com")
    assert outbox == [], "no mail for an unknown address, and the same answer"

    await _request_reset(client, account.email.upper())
    [mail] = outbox
    assert mail.to == account.email
    token = _reset_token(mail)
    assert f"reset-password?token={token}" in mail.body
    async with _state(app).session_factory() as session:
        row = await session.scalar(select(PasswordResetToken))
    assert row is not None and row.token_hash == token_hash(token), "stored hashed"

    # A weak new password is refused without using the token up.
    weak = await _reset(client, token, "password1234")
    assert [(e["field"], e["code"]) for e in weak["errors"]] == [("newPassword", "TOO_COMMON")]
    assert (await _login(client, account.email))["errors"] == []

    assert await _reset(client, token, NEW_PASSWORD) == {"success": True, "errors": []}
    again = await _reset(client, token, "yet another fine passphrase")
    assert again["success"] is False
    assert [(e["field"], e["code"]) for e in again["errors"]] == [("token", "INVALID_TOKEN")]
    assert _codes(await _login(client, account.email)) == ["INVALID_CREDENTIALS"]
    for access, refresh in (
        (account.access_token, account.refresh_token),
        (second_session["accessToken"], second_session["refreshToken"]),
    ):
        assert await _me_status(client, access) == 401
        assert _codes(await _refresh(client, refresh)) == ["INVALID_REFRESH_TOKEN"]
    assert (await _login(client, account.email, NEW_PASSWORD))["errors"] == []


async def test_reset_tokens_bogus_expired_or_superseded_are_invalid(
    app: Starlette, client: httpx.AsyncClient
) -> None:
    account = await register(client)
    outbox = _state(app).mailer.outbox
    outbox.clear()
    assert _codes(await _reset(client, "pr_bogus", NEW_PASSWORD)) == ["INVALID_TOKEN"]
    assert _codes(await _reset(client, "", NEW_PASSWORD)) == ["INVALID_TOKEN"]

    await _request_reset(client, account.email)
    expired = _reset_token(outbox[-1])
    async with _state(app).session_factory() as session, session.begin():
        await session.execute(
            update(PasswordResetToken)
            .where(PasswordResetToken.token_hash == token_hash(expired))
            .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
    assert _codes(await _reset(client, expired, NEW_PASSWORD)) == ["INVALID_TOKEN"]

    # Two outstanding tokens: once one has reset the password, the other is dead too
    # (an older mail must not allow a second, unnoticed reset).
    await _request_reset(client, account.email)
    await _request_reset(client, account.email)
    older, newer = _reset_token(outbox[-2]), _reset_token(outbox[-1])
    assert older != newer
    assert (await _reset(client, newer, NEW_PASSWORD))["success"] is True
    assert _codes(await _reset(client, older, "attacker chosen passphrase")) == ["INVALID_TOKEN"]
    assert (await _login(client, account.email, NEW_PASSWORD))["errors"] == []


async def test_a_password_change_voids_outstanding_reset_tokens(
    app: Starlette, client: httpx.AsyncClient
) -> None:
    account = await register(client)
    outbox = _state(app).mailer.outbox
    outbox.clear()
    await _request_reset(client, account.email)
    token = _reset_token(outbox[-1])
    changed = await gql(
        client,
        CHANGE_PASSWORD,
        {"i": {"currentPassword": PASSWORD, "newPassword": NEW_PASSWORD}},
        headers=account.headers,
    )
    assert changed["data"]["changePassword"]["errors"] == []
    assert _codes(await _reset(client, token, "attacker chosen passphrase")) == ["INVALID_TOKEN"]


async def test_sign_in_holds_no_database_connection_while_hashing(
    servers: Servers, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With one pooled connection, a request must not wait for a sign-in's password hash."""
    real_verify = passwords.verify_password_async
    hashing, release = asyncio.Event(), asyncio.Event()

    async def slow_verify(stored: str | None, password: str) -> bool:
        hashing.set()
        await release.wait()  # a hash that lasts until the health check is answered
        return await real_verify(stored, password)

    settings = make_settings(servers, db_pool_size=1, db_max_overflow=0)
    async with (
        running_app(settings) as app,
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c,
    ):
        account = await register(c)
        monkeypatch.setattr(passwords, "verify_password_async", slow_verify)
        login = asyncio.create_task(_login(c, account.email))
        await asyncio.wait_for(hashing.wait(), 5)
        try:
            # Needs the only pooled connection: it is answered only if the sign-in does not
            # hold it while hashing (else the pool timeout or this bound ends it).
            health = await asyncio.wait_for(gql(c, "{ health { database } }"), 30)
        finally:
            release.set()
        assert health["data"]["health"]["database"] == "OK"
        signed_in = await login
    assert signed_in["errors"] == [] and signed_in["accessToken"]


# Login throttling ----------------------------------------------------------------------------


def _rate_limited(result: dict[str, Any]) -> int:
    """retryAfter of a RATE_LIMITED login (asserting that is what it was)."""
    assert "graphql_errors" in result, result
    [error] = result["graphql_errors"]
    assert error["extensions"]["code"] == "RATE_LIMITED", error
    assert error["path"] == ["login"]
    retry_after: int = error["extensions"]["retryAfter"]
    assert f"{retry_after} s" in error["message"]
    return retry_after


async def test_five_failures_lock_the_account_even_for_the_right_password(
    client: httpx.AsyncClient,
) -> None:
    account = await register(client)
    for _ in range(5):
        assert _codes(await _login(client, account.email, WRONG_PASSWORD)) == [
            "INVALID_CREDENTIALS"
        ]
    retry_after = _rate_limited(await _login(client, account.email))
    assert 0 < retry_after <= 30
    # Any spelling of the email is the same account.
    _rate_limited(await _login(client, f"  {account.email.upper()} "))


async def test_lock_grows_with_further_failures_and_success_resets(servers: Servers) -> None:
    async with _dedicated(servers, login_max_failures=2, login_lock_seconds=1) as (_, client):
        account = await register(client)

        async def fails() -> list[str]:
            return _codes(await _login(client, account.email, WRONG_PASSWORD))

        assert await fails() == ["INVALID_CREDENTIALS"]
        assert (await _login(client, account.email))["errors"] == []
        # The success reset the counter: this is failure 1 again, so no lock follows it.
        assert await fails() == ["INVALID_CREDENTIALS"]
        assert await fails() == ["INVALID_CREDENTIALS"]
        # Two in a row lock the account for the base delay, even for the right password...
        assert _rate_limited(await _login(client, account.email)) == 1
        await asyncio.sleep(1.05)
        # ...and the next failure after the lock ends doubles it.
        assert await fails() == ["INVALID_CREDENTIALS"]
        assert _rate_limited(await _login(client, account.email)) == 2


async def test_failures_across_accounts_lock_the_ip(servers: Servers) -> None:
    # Limit 1 per account, so the IP's limit is 1 * IP_FACTOR = 4 failures.
    async with _dedicated(servers, login_max_failures=1, login_lock_seconds=30) as (app, client):
        victim = await register(client)
        strangers = [f"{unique('stranger')}@example.com" for _ in range(4)]
        for email in strangers[:3]:
            assert _codes(await _login(client, email, WRONG_PASSWORD)) == ["INVALID_CREDENTIALS"]
        # Three failures from this IP: below its limit, the victim signs in.
        assert (await _login(client, victim.email))["errors"] == []
        # Emails without an account are locked like real ones (else the lock would tell
        # which emails have accounts).
        assert _rate_limited(await _login(client, strangers[0], WRONG_PASSWORD)) > 0
        # The fourth, on yet another account, locks the IP: no account of its own is locked.
        assert _codes(await _login(client, strangers[3], WRONG_PASSWORD)) == ["INVALID_CREDENTIALS"]
        assert 0 < _rate_limited(await _login(client, victim.email)) <= 30
        # The same account from another address is fine: the lock is on the IP.
        async with _client_at(app, "10.9.8.7") as elsewhere:
            assert (await _login(elsewhere, victim.email))["errors"] == []


async def test_parallel_logins_get_no_more_guesses_than_the_limit(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """40 logins at once on one account (39 wrong, 1 right): each is counted before its
    password is checked, so at most LOGIN_MAX_FAILURES (5) passwords are verified."""
    account = await register(client)
    real_verify = passwords.verify_password_async
    release = asyncio.Event()
    verified = 0

    async def counting_verify(password_hash: str | None, password: str) -> bool:
        nonlocal verified
        verified += 1
        # Hold every verification until all 40 requests have got at least this far (or
        # been refused): the worst case for a check-then-count throttle.
        await release.wait()
        return await real_verify(password_hash, password)

    monkeypatch.setattr(passwords, "verify_password_async", counting_verify)
    guesses = [WRONG_PASSWORD + str(i) for i in range(39)]
    guesses.insert(17, PASSWORD)
    tasks = [asyncio.create_task(_login(client, account.email, guess)) for guess in guesses]
    for _ in range(3000):  # wait on the condition, not on a guess of time
        if verified + sum(t.done() for t in tasks) == len(tasks):
            break
        await asyncio.sleep(0.01)
    release.set()
    results = await asyncio.gather(*tasks)
    assert verified <= 5, f"{verified} passwords verified for 40 parallel attempts"
    refused = [r for r in results if "graphql_errors" in r]
    assert len(refused) == 40 - verified
    assert all(_rate_limited(r) > 0 for r in refused)
    checked = [r for r in results if "graphql_errors" not in r]
    assert all(r["errors"] == [] or _codes(r) == ["INVALID_CREDENTIALS"] for r in checked), checked


async def test_a_right_password_needing_its_code_is_not_counted(servers: Servers) -> None:
    """The first step of a 2FA sign-in (right password, no code) is refunded, so signing
    in often from one address does not lock it."""
    async with _dedicated(servers, login_max_failures=1, login_lock_seconds=30) as (app, client):
        account = await register(client)
        totp, _, _ = await _turn_on_2fa(app, client, account)
        for _ in range(6):  # above the IP's limit of 4
            assert (await _login(client, account.email))["twoFactorRequired"] is True
        signed_in = await _login(client, account.email, twoFactorCode=_code_at(totp, 1))
        assert signed_in["errors"] == [] and signed_in["accessToken"]


# Two-factor authentication -------------------------------------------------------------------


def _code_at(totp: pyotp.TOTP, offset_steps: int) -> str:
    return totp.at(datetime.now(UTC) + timedelta(seconds=30 * offset_steps))


def _invalid_code(totp: pyotp.TOTP) -> str:
    valid = {_code_at(totp, step) for step in (-1, 0, 1, 2)}
    return next(c for c in ("000000", "111111", "222222", "333333", "444444") if c not in valid)


async def _enable_2fa(app: Starlette, client: httpx.AsyncClient, account: Account) -> pyotp.TOTP:
    enabled = (await gql(client, ENABLE_2FA, headers=account.headers))["data"]["enableTwoFactor"]
    assert enabled["errors"] == []
    return pyotp.TOTP(enabled["secret"])


async def _confirm_2fa(client: httpx.AsyncClient, account: Account, code: str) -> dict[str, Any]:
    body = await gql(client, CONFIRM_2FA, {"c": code}, headers=account.headers)
    payload: dict[str, Any] = body["data"]["confirmTwoFactor"]
    return payload


async def _turn_on_2fa(
    app: Starlette, client: httpx.AsyncClient, account: Account
) -> tuple[pyotp.TOTP, str, list[str]]:
    """(totp, the code used to confirm, recovery codes)."""
    totp = await _enable_2fa(app, client, account)
    code = totp.now()
    confirmed = await _confirm_2fa(client, account, code)
    assert confirmed["errors"] == [], confirmed
    return totp, code, confirmed["recoveryCodes"]


async def test_enrolment_gives_a_uri_stores_the_secret_encrypted_and_needs_a_code(
    app: Starlette, client: httpx.AsyncClient
) -> None:
    account = await register(client)
    body = await gql(client, ENABLE_2FA, headers=account.headers)
    enabled = body["data"]["enableTwoFactor"]
    assert enabled["errors"] == []
    secret = enabled["secret"]
    uri = enabled["provisioningUri"]
    assert uri.startswith("otpauth://totp/SmartContent:")
    parsed = pyotp.parse_uri(uri)
    assert parsed.secret == secret and parsed.issuer == "SmartContent"
    assert parsed.name == account.email
    user = await _user_row(app, account)
    assert user.totp_secret is not None and user.totp_secret != secret
    assert secret not in user.totp_secret
    assert _state(app).keys.box.decrypt(user.totp_secret) == secret
    # Pending: not on until confirmed, and sign-in does not ask for a code yet.
    assert (await gql(client, ME, headers=account.headers))["data"]["me"][
        "twoFactorEnabled"
    ] is False
    assert (await _login(client, account.email))["twoFactorRequired"] is False

    totp = pyotp.TOTP(secret)
    wrong = await _confirm_2fa(client, account, _invalid_code(totp))
    assert [(e["field"], e["code"]) for e in wrong["errors"]] == [("code", "INVALID_CODE")]
    assert wrong["recoveryCodes"] == []
    assert (await _user_row(app, account)).totp_enabled is False

    ok = await _confirm_2fa(client, account, totp.now())
    assert ok["errors"] == []
    codes = ok["recoveryCodes"]
    assert len(codes) == 10 and len(set(codes)) == 10
    user = await _user_row(app, account)
    assert user.totp_enabled is True
    stored = json.dumps(user.recovery_codes)
    assert all(code not in stored for code in codes), "recovery codes are stored hashed"
    assert (await gql(client, ME, headers=account.headers))["data"]["me"][
        "twoFactorEnabled"
    ] is True
    # Enrolment cannot be restarted or confirmed again while on.
    again = (await gql(client, ENABLE_2FA, headers=account.headers))["data"]["enableTwoFactor"]
    assert _codes(again) == ["ALREADY_ENABLED"] and again["secret"] is None
    assert _codes(await _confirm_2fa(client, account, _code_at(totp, 1))) == ["NOT_PENDING"]


async def test_two_factor_login_codes_replay_and_recovery_codes(
    app: Starlette, client: httpx.AsyncClient
) -> None:
    account = await register(client)
    totp, confirm_code, recovery = await _turn_on_2fa(app, client, account)

    # A wrong password is still just a wrong password: nothing reveals 2FA is on.
    assert _codes(await _login(client, account.email, WRONG_PASSWORD)) == ["INVALID_CREDENTIALS"]
    step_one = await _login(client, account.email)
    assert step_one == {
        "accessToken": None,
        "accessTokenExpiresAt": None,
        "refreshToken": None,
        "twoFactorRequired": True,
        "user": None,
        "errors": [],
    }
    wrong = await _login(client, account.email, twoFactorCode=_invalid_code(totp))
    assert [(e["field"], e["code"]) for e in wrong["errors"]] == [("twoFactorCode", "INVALID_CODE")]
    assert wrong["accessToken"] is None
    # The code that confirmed enrolment has been used: it cannot sign in.
    assert _codes(await _login(client, account.email, twoFactorCode=confirm_code)) == [
        "INVALID_CODE"
    ]
    # A code for the next step (within the drift window) signs in...
    code = _code_at(totp, 1)
    signed_in = await _login(client, account.email, twoFactorCode=code)
    assert signed_in["errors"] == [] and signed_in["twoFactorRequired"] is False
    await _assert_me(client, signed_in["accessToken"], account.user_id)
    # ...once.
    assert _codes(await _login(client, account.email, twoFactorCode=code)) == ["INVALID_CODE"]
    # An earlier step's code is refused after a later one was used.
    assert _codes(await _login(client, account.email, twoFactorCode=totp.now())) == ["INVALID_CODE"]
    recovered = await _login(client, account.email, recoveryCode=recovery[0])
    assert recovered["errors"] == [] and recovered["accessToken"]
    assert _codes(await _login(client, account.email, recoveryCode=recovery[0])) == ["INVALID_CODE"]
    # Recovery codes are not case- or whitespace-sensitive; each still works once.
    spaced = f"  {recovery[1].upper()} "
    assert (await _login(client, account.email, recoveryCode=spaced))["errors"] == []
    assert _codes(await _login(client, account.email, recoveryCode=recovery[1])) == ["INVALID_CODE"]
    user = await _user_row(app, account)
    assert sum(1 for entry in user.recovery_codes if entry["used_at"] is None) == 8
    # A recovery code needs the password too.
    assert _codes(
        await _login(client, account.email, WRONG_PASSWORD, recoveryCode=recovery[2])
    ) == ["INVALID_CREDENTIALS"]
    assert (await _login(client, account.email, recoveryCode=recovery[2]))["errors"] == []


async def test_wrong_two_factor_codes_count_towards_the_lock(servers: Servers) -> None:
    """Six-digit codes must not be brute-forced behind a known password."""
    async with _dedicated(servers, login_max_failures=2, login_lock_seconds=30) as (app, client):
        account = await register(client)
        totp, _, _ = await _turn_on_2fa(app, client, account)
        bad = _invalid_code(totp)
        for _ in range(2):
            assert _codes(await _login(client, account.email, twoFactorCode=bad)) == [
                "INVALID_CODE"
            ]
        _rate_limited(await _login(client, account.email, twoFactorCode=_code_at(totp, 1)))


NON_ASCII_CODES = [
    "١٢٣٤٥٦",
    "12345é",
    "\uff11\uff12\uff13\uff14\uff15\uff16",
    "💥💥💥💥💥💥",
    "12 3\u00a045",
]


async def test_non_ascii_two_factor_codes_are_wrong_codes(
    app: Starlette, client: httpx.AsyncClient
) -> None:
    """compare_digest refuses non-ASCII text with a TypeError: such codes are INVALID_CODE
    in confirm, login and disable, never an internal error."""
    account = await register(client)
    await _enable_2fa(app, client, account)
    for code in NON_ASCII_CODES:
        wrong = await _confirm_2fa(client, account, code)
        assert [(e["field"], e["code"]) for e in wrong["errors"]] == [("code", "INVALID_CODE")]
    await _turn_on_2fa(app, client, account)
    for code in NON_ASCII_CODES[:2]:  # two: each wrong code counts towards the lock
        login = await _login(client, account.email, twoFactorCode=code)
        assert _codes(login) == ["INVALID_CODE"], login
    for code in NON_ASCII_CODES:
        body = await gql(client, DISABLE_2FA, {"p": PASSWORD, "c": code}, headers=account.headers)
        assert "errors" not in body, body
        disabled = body["data"]["disableTwoFactor"]
        assert [(e["field"], e["code"]) for e in disabled["errors"]] == [("code", "INVALID_CODE")]


async def test_disable_two_factor_needs_the_password_and_a_code(
    app: Starlette, client: httpx.AsyncClient
) -> None:
    account = await register(client)
    totp, confirm_code, recovery = await _turn_on_2fa(app, client, account)

    async def disable(password: str, code: str) -> dict[str, Any]:
        body = await gql(client, DISABLE_2FA, {"p": password, "c": code}, headers=account.headers)
        payload: dict[str, Any] = body["data"]["disableTwoFactor"]
        return payload

    no_password = await disable(WRONG_PASSWORD, _code_at(totp, 1))
    assert no_password["success"] is False
    assert [(e["field"], e["code"]) for e in no_password["errors"]] == [
        ("password", "INVALID_CREDENTIALS")
    ]
    assert _codes(await disable(PASSWORD, _invalid_code(totp))) == ["INVALID_CODE"]
    assert _codes(await disable(PASSWORD, confirm_code)) == ["INVALID_CODE"], "replayed code"
    assert (await _user_row(app, account)).totp_enabled is True
    assert await disable(PASSWORD, _code_at(totp, 1)) == {"success": True, "errors": []}
    user = await _user_row(app, account)
    assert user.totp_enabled is False and user.totp_secret is None
    assert user.recovery_codes == []
    assert (await _login(client, account.email))["twoFactorRequired"] is False
    assert _codes(await disable(PASSWORD, recovery[0])) == ["NOT_ENABLED"]


async def test_disable_two_factor_with_a_recovery_code(
    app: Starlette, client: httpx.AsyncClient
) -> None:
    account = await register(client)
    _, _, recovery = await _turn_on_2fa(app, client, account)
    body = await gql(
        client, DISABLE_2FA, {"p": PASSWORD, "c": recovery[3]}, headers=account.headers
    )
    assert body["data"]["disableTwoFactor"] == {"success": True, "errors": []}
    assert (await _user_row(app, account)).totp_enabled is False


# A workspace's two-factor requirement --------------------------------------------------------


async def test_workspace_two_factor_requirement(app: Starlette, client: httpx.AsyncClient) -> None:
    owner = await register(client)
    ws = await create_workspace(client, owner)
    member = await _join(client, owner, ws, "MEMBER")
    admin = await _join(client, owner, ws, "ADMIN")

    refused = (await gql(client, REQUIRE_2FA, {"id": ws, "on": True}, headers=owner.headers))[
        "data"
    ]["updateWorkspace"]
    assert [(e["field"], e["code"]) for e in refused["errors"]] == [
        ("requireTwoFactor", "TWO_FACTOR_REQUIRED")
    ]
    async with _state(app).session_factory() as session:
        workspace = await session.get(Workspace, _uuid(ws))
        assert workspace is not None and workspace.require_two_factor is False

    # Only the owner sets the policy, even an admin with 2FA cannot.
    await _turn_on_2fa(app, client, admin)
    by_admin = await gql(client, REQUIRE_2FA, {"id": ws, "on": True}, headers=admin.headers)
    assert by_admin["errors"][0]["extensions"]["code"] == "FORBIDDEN"

    await _turn_on_2fa(app, client, owner)
    on = (await gql(client, REQUIRE_2FA, {"id": ws, "on": True}, headers=owner.headers))["data"][
        "updateWorkspace"
    ]
    assert on == {"workspace": {"requireTwoFactor": True}, "errors": []}

    # The member without 2FA is shut out of the workspace's operations.
    read = await gql(client, WORKSPACE, {"id": ws}, headers=member.headers)
    assert read["data"] is None
    assert read["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert read["errors"][0]["extensions"]["reason"] == "TWO_FACTOR_REQUIRED"
    job = await gql(
        client,
        "mutation($ws: ID!) { ping(workspaceId: $ws) { job { id } errors { code } } }",
        {"ws": ws},
        headers=member.headers,
    )
    assert job["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert job["errors"][0]["extensions"]["reason"] == "TWO_FACTOR_REQUIRED"
    # Members with 2FA carry on.
    assert (await gql(client, WORKSPACE, {"id": ws}, headers=admin.headers))["data"]["workspace"][
        "requireTwoFactor"
    ] is True
    # Enabling 2FA lets the member in with the very same access token (read per request).
    await _turn_on_2fa(app, client, member)
    allowed = await gql(client, WORKSPACE, {"id": ws}, headers=member.headers)
    assert allowed["data"]["workspace"]["id"] == ws
    assert (await ping(client, member, ws))["errors"] == []

    # The owner can lift the requirement again.
    off = await gql(client, REQUIRE_2FA, {"id": ws, "on": False}, headers=owner.headers)
    assert off["data"]["updateWorkspace"]["workspace"] == {"requireTwoFactor": False}


async def test_requirement_applies_to_a_member_who_turns_two_factor_off(
    app: Starlette, client: httpx.AsyncClient
) -> None:
    owner = await register(client)
    ws = await create_workspace(client, owner)
    member = await _join(client, owner, ws, "MEMBER")
    await _turn_on_2fa(app, client, owner)
    totp, _, _ = await _turn_on_2fa(app, client, member)
    assert (await gql(client, REQUIRE_2FA, {"id": ws, "on": True}, headers=owner.headers))["data"][
        "updateWorkspace"
    ]["errors"] == []
    assert (await gql(client, WORKSPACE, {"id": ws}, headers=member.headers))["data"]["workspace"][
        "id"
    ] == ws
    off = await gql(
        client, DISABLE_2FA, {"p": PASSWORD, "c": _code_at(totp, 1)}, headers=member.headers
    )
    assert off["data"]["disableTwoFactor"]["success"] is True
    blocked = await gql(client, WORKSPACE, {"id": ws}, headers=member.headers)
    assert blocked["errors"][0]["extensions"]["reason"] == "TWO_FACTOR_REQUIRED"


# Profile and API keys ------------------------------------------------------------------------


async def test_update_profile(app: Starlette, client: httpx.AsyncClient) -> None:
    account = await register(client, name="Old Name")
    changed = await gql(
        client, UPDATE_PROFILE, {"i": {"name": "  New Name "}}, headers=account.headers
    )
    assert changed["data"]["updateProfile"] == {
        "user": {"id": account.user_id, "name": "New Name"},
        "errors": [],
    }
    assert (await gql(client, ME, headers=account.headers))["data"]["me"]["name"] == "New Name"
    for name, code in (("   ", "REQUIRED"), ("n" * 201, "TOO_LONG")):
        refused = await gql(client, UPDATE_PROFILE, {"i": {"name": name}}, headers=account.headers)
        payload = refused["data"]["updateProfile"]
        assert payload["user"] is None
        assert [(e["field"], e["code"]) for e in payload["errors"]] == [("name", code)]
    # Omitting the name changes nothing.
    same = await gql(client, UPDATE_PROFILE, {"i": {}}, headers=account.headers)
    assert same["data"]["updateProfile"]["user"]["name"] == "New Name"
    assert (await gql(client, ME, headers=account.headers))["data"]["me"]["name"] == "New Name"
    anonymous = await gql(client, UPDATE_PROFILE, {"i": {"name": "Nobody"}})
    assert anonymous["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert [e.details for e in await _audit(app, "updateProfile")] == [{"name": "New Name"}, {}]


async def test_an_api_key_cannot_act_as_a_user(client: httpx.AsyncClient) -> None:
    owner = await register(client)
    ws = await create_workspace(client, owner)
    key = await _api_key(client, owner, ws, "MEMBER")
    # The key itself is valid in its workspace...
    read = await gql(client, WORKSPACE, {"id": ws}, headers=bearer(key))
    assert read["data"]["workspace"]["id"] == ws
    # ...but account operations need a signed-in user.
    for query, variables in (
        (ME, {}),
        (UPDATE_PROFILE, {"i": {"name": "Key"}}),
        (CHANGE_PASSWORD, {"i": {"currentPassword": PASSWORD, "newPassword": NEW_PASSWORD}}),
        (ENABLE_2FA, {}),
        (CONFIRM_2FA, {"c": "123456"}),
        (DISABLE_2FA, {"p": PASSWORD, "c": "123456"}),
    ):
        body = await gql(client, query, variables, headers=bearer(key))
        assert body["data"] is None, query
        assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN", query
    # The owner's password was not changed through the key.
    assert (await _login(client, owner.email))["errors"] == []


# Password hashing and the event loop ------------------------------------------------------


async def test_password_hashing_does_not_stall_other_requests(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """argon2 costs a few hundred ms of CPU; done on the event loop it would stall every
    other request (and subscription) of the process for that long."""
    account = await register(client)
    real_verify = passwords.verify_password
    entered, gate = threading.Event(), threading.Event()
    released: list[bool] = []

    def blocking_verify(stored: str | None, password: str) -> bool:
        entered.set()
        # On the event loop this would block the health check below, which opens the gate:
        # the wait would then end by its timeout instead.
        released.append(gate.wait(10))
        return real_verify(stored, password)

    monkeypatch.setattr(passwords, "verify_password", blocking_verify)
    login = asyncio.create_task(_login(client, account.email, WRONG_PASSWORD))
    assert await asyncio.to_thread(entered.wait, 10)
    try:
        body = await asyncio.wait_for(gql(client, "{ health { database } }"), 30)
    finally:
        gate.set()
    assert body["data"]["health"]["database"] == "OK"
    assert _codes(await login) == ["INVALID_CREDENTIALS"]
    assert released == [True], "the hash ran on the event loop"
