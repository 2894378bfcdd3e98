"""Access JWTs and opaque one-time tokens (stored only as hashes)."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import jwt

ALGORITHM = "HS256"  # pinned: decoding accepts nothing else (no `none`, no RS/HS confusion)
ISSUER = "smartcontent"
AUDIENCE = "smartcontent-api"


@dataclass(frozen=True)
class AccessClaims:
    user_id: uuid.UUID
    token_version: int
    jti: str
    expires_at: datetime


class InvalidToken(Exception):
    def __init__(self, reason: str, *, expired: bool = False) -> None:
        super().__init__(reason)
        self.expired = expired  # it was valid once: not a guess


def issue_access_token(
    secret: str, user_id: uuid.UUID, token_version: int, minutes: int
) -> tuple[str, datetime]:
    now = datetime.now(UTC)
    expires = now + timedelta(minutes=minutes)
    claims = {
        "sub": str(user_id),
        "iat": int(now.timestamp()),
        "exp": int(expires.timestamp()),
        "jti": uuid.uuid4().hex,
        "iss": ISSUER,
        "aud": AUDIENCE,
        "ver": token_version,
        "typ": "access",
    }
    return jwt.encode(claims, secret, algorithm=ALGORITHM), expires


def decode_access_token(secret: str, token: str) -> AccessClaims:
    try:
        claims = jwt.decode(
            token,
            secret,
            algorithms=[ALGORITHM],
            audience=AUDIENCE,
            issuer=ISSUER,
            options={"require": ["exp", "iat", "jti", "sub", "iss", "aud"]},
        )
        if claims.get("typ") != "access":
            raise InvalidToken("not an access token")
        return AccessClaims(
            user_id=uuid.UUID(claims["sub"]),
            token_version=int(claims.get("ver", 0)),
            jti=str(claims["jti"]),
            expires_at=datetime.fromtimestamp(claims["exp"], UTC),
        )
    except jwt.ExpiredSignatureError as exc:
        raise InvalidToken("token expired", expired=True) from exc
    except (jwt.InvalidTokenError, ValueError, KeyError) as exc:
        raise InvalidToken("invalid token") from exc


def new_opaque_token(prefix: str = "", nbytes: int = 32) -> str:
    return prefix + secrets.token_urlsafe(nbytes)


def token_hash(token: str) -> str:
    """High-entropy tokens need no slow hash: SHA-256 is enough to keep them unusable at rest."""
    return hashlib.sha256(token.encode()).hexdigest()


def constant_time_equal(a: str, b: str) -> bool:
    return secrets.compare_digest(a.encode(), b.encode())
