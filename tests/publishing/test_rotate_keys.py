"""`smartcontent rotate-keys`, run as the command it is (a subprocess against the test
database): account credentials and TOTP secrets end up readable with the newest key
alone; a secret no key opens is left alone and reported with exit code 1."""

from __future__ import annotations

import asyncio
import os
import sys

import httpx
from cryptography.fernet import Fernet
from sqlalchemy import update

from app.models import SocialAccount, User
from app.security.crypto import SecretBox, derived_key
from app.services.publishing import accounts
from app.state import AppState
from tests.publishing.conftest import Team, connect_webhook
from tests.publishing.receiver import SECRET, Receiver
from tests.teams import uid

TOTP_SEED = "JBSWY3DPEHPK3PXP"


async def rotate_keys(state: AppState, keys: list[str]) -> tuple[int, str]:
    env = {
        **os.environ,
        "ENVIRONMENT": "test",
        "DATABASE_URL": str(state.settings.database_url),
        "SECRET_KEY": state.keys.signing_secret,
        "ENCRYPTION_KEYS": ",".join(keys),
        "DATA_DIR": str(state.settings.data_dir),
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "app.cli",
        "rotate-keys",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode is not None
    return process.returncode, err.decode()


async def test_rotate_keys_re_encrypts_credentials_and_totp_secrets(
    client: httpx.AsyncClient, state: AppState, team: Team, receiver: Receiver
) -> None:
    account_id = uid((await connect_webhook(client, team, receiver.url))["account"]["id"])
    # The test settings have no ENCRYPTION_KEYS: the key is derived from SECRET_KEY.
    old = derived_key(state.keys.signing_secret, "encryption-at-rest")
    newest = Fernet.generate_key().decode()
    user_id = uid(team.owner.user_id)
    async with state.session_factory() as session, session.begin():
        await session.execute(
            update(User)
            .where(User.id == user_id)
            .values(totp_secret=SecretBox([old]).encrypt(TOTP_SEED))
        )

    code, err = await rotate_keys(state, [newest, old])
    assert code == 0, err
    assert "re-encrypted 1 account credentials and 1 TOTP secrets" in err
    async with state.session_factory() as session:
        row = await session.get(SocialAccount, account_id)
        user = await session.get(User, user_id)
    assert row is not None and user is not None and user.totp_secret
    # Readable with the new key alone: the old key can now be dropped.
    only_new = SecretBox([newest])
    assert accounts.unseal(only_new, row.credentials).extra["secret"] == SECRET
    assert only_new.decrypt(user.totp_secret) == TOTP_SEED

    # A secret under a key that is not configured: left unchanged, reported, exit 1.
    foreign = SecretBox([Fernet.generate_key().decode()]).encrypt(TOTP_SEED)
    async with state.session_factory() as session, session.begin():
        await session.execute(update(User).where(User.id == user_id).values(totp_secret=foreign))
    code, err = await rotate_keys(state, [newest])
    assert code == 1 and "no configured key opens 0 account credentials and 1 TOTP" in err
    async with state.session_factory() as session:
        user = await session.get(User, user_id)
    assert user is not None and user.totp_secret == foreign
