"""Password hashing (argon2id) and strength rules."""

from __future__ import annotations

import asyncio
from functools import lru_cache
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from app.errors import FieldError, UserErrorCode

MIN_LENGTH = 12
MAX_LENGTH = 256  # argon2 takes any length; a cap stops multi-megabyte "passwords"

# argon2-cffi's defaults are RFC 9106's low-memory profile, argon2id.
_hasher = PasswordHasher()
# Verified against when the email is unknown, so both failures cost the same time.
_DUMMY_HASH = _hasher.hash("not-a-real-password-but-same-cost")


@lru_cache(maxsize=1)
def _common_passwords() -> frozenset[str]:
    path = Path(__file__).with_name("common_passwords.txt")
    return frozenset(line.strip().lower() for line in path.read_text().splitlines() if line.strip())


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    """Constant-cost check; with no hash (unknown account) it burns the same time and fails."""
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


async def hash_password_async(password: str) -> str:
    """`hash_password` in a worker thread: argon2 costs a few hundred ms of CPU (it releases
    the GIL), which on the event loop would stall every other request of the process."""
    return await asyncio.to_thread(hash_password, password)


async def verify_password_async(password_hash: str | None, password: str) -> bool:
    """`verify_password` in a worker thread (see `hash_password_async`)."""
    return await asyncio.to_thread(verify_password, password_hash, password)


def needs_rehash(password_hash: str) -> bool:
    return _hasher.check_needs_rehash(password_hash)


def password_problems(
    password: str, *, email: str = "", field: str = "password"
) -> list[FieldError]:
    if len(password) < MIN_LENGTH:
        return [
            FieldError(
                field,
                UserErrorCode.TOO_SHORT,
                f"Password must be at least {MIN_LENGTH} characters.",
            )
        ]
    if len(password) > MAX_LENGTH:
        return [
            FieldError(
                field, UserErrorCode.TOO_LONG, f"Password must be at most {MAX_LENGTH} characters."
            )
        ]
    lowered = password.lower()
    local = email.split("@", 1)[0].lower()
    if lowered in _common_passwords():
        return [
            FieldError(
                field, UserErrorCode.TOO_COMMON, "This password is one of the most common ones."
            )
        ]
    if len(set(lowered)) <= 2:
        return [
            FieldError(
                field,
                UserErrorCode.TOO_COMMON,
                "This password repeats one or two characters: too easy to guess.",
            )
        ]
    if len(local) >= 4 and local in lowered:
        return [
            FieldError(
                field,
                UserErrorCode.CONTAINS_EMAIL,
                "This password contains your email address's name (the part before the @), "
                "which is the first thing a guesser tries.",
            )
        ]
    return []
