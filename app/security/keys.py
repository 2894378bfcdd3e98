"""Where the signing secret and encryption keys come from."""

from __future__ import annotations

import os
import secrets
import tempfile
from dataclasses import dataclass

from app.security.crypto import SecretBox, derived_key, secret_box
from app.settings import Settings


@dataclass(frozen=True)
class Keys:
    signing_secret: str
    box: SecretBox


def _development_secret(settings: Settings) -> str:
    """Outside production a missing SECRET_KEY is created once and kept in the data dir,
    so API and worker processes (and restarts) agree on it."""
    path = settings.data_dir / "secret_key"
    if path.exists():
        return path.read_text().strip()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    value = secrets.token_urlsafe(48)
    # Written aside, then linked into place: processes starting together (API and
    # workers) either create the file whole or find the one another created.
    fd, temporary = tempfile.mkstemp(dir=settings.data_dir, prefix=".secret_key.")
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(value)
        os.link(temporary, path)
    except FileExistsError:
        return path.read_text().strip()
    finally:
        os.unlink(temporary)
    return value


def load_keys(settings: Settings) -> Keys:
    if settings.secret_key is not None:
        secret = settings.secret_key.get_secret_value()
    else:
        secret = _development_secret(settings)
    if settings.encryption_keys:
        fernet_keys = tuple(k.get_secret_value() for k in settings.encryption_keys)
    else:
        fernet_keys = (derived_key(secret, "encryption-at-rest"),)
    return Keys(signing_secret=secret, box=secret_box(fernet_keys))
