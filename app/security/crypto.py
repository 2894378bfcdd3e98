"""Encryption at rest for secrets we must read back (TOTP seeds, OAuth tokens): MultiFernet.

The first key encrypts; every key decrypts, so keys rotate by prepending a new one.
"""

from __future__ import annotations

import base64
import hashlib
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet


class SecretBox:
    def __init__(self, keys: list[str]) -> None:
        if not keys:
            raise ValueError("at least one encryption key is required")
        self._fernet = MultiFernet([Fernet(key.encode()) for key in keys])

    def encrypt(self, plaintext: str) -> str:
        return self._fernet.encrypt(plaintext.encode()).decode()

    def decrypt(self, ciphertext: str) -> str:
        try:
            return self._fernet.decrypt(ciphertext.encode()).decode()
        except InvalidToken as exc:
            raise ValueError("cannot decrypt: unknown key or tampered data") from exc

    def rotate(self, ciphertext: str) -> str:
        """The same secret encrypted under the first key (ValueError if no key opens it)."""
        try:
            return self._fernet.rotate(ciphertext.encode()).decode()
        except InvalidToken as exc:
            raise ValueError("cannot decrypt: unknown key or tampered data") from exc


def derived_key(secret: str, purpose: str) -> str:
    """A Fernet key derived from SECRET_KEY, for development when ENCRYPTION_KEYS is unset."""
    digest = hashlib.sha256(f"{purpose}:{secret}".encode()).digest()
    return base64.urlsafe_b64encode(digest).decode()


@lru_cache(maxsize=8)
def secret_box(keys: tuple[str, ...]) -> SecretBox:
    return SecretBox(list(keys))
