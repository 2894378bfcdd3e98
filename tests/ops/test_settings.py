"""Settings are validated at start: one clear line and exit code 2 on a bad value."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from app.settings import Settings

pytestmark = pytest.mark.no_db


def _run_cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.endswith("_URL")}
    return subprocess.run(
        [sys.executable, "-m", "app.cli", *args],
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize(
    ("env", "name"),
    [
        ({"DATABASE_URL": "not a url"}, "DATABASE_URL"),
        ({"DATABASE_URL": "mysql://u@h/db"}, "DATABASE_URL"),
        ({"REDIS_URL": "http://localhost"}, "REDIS_URL"),
        ({"PORT": "99999"}, "PORT"),
        ({"CORS_ORIGINS": "evil"}, "CORS_ORIGINS"),
    ],
)
def test_bad_setting_prints_one_line_and_exits_2(env: dict[str, str], name: str) -> None:
    result = _run_cli(env, "serve")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"smartcontent: invalid setting {name}:")
    assert "Traceback" not in result.stderr


def test_serve_without_database_url_explains_what_to_do() -> None:
    result = _run_cli({}, "serve")
    assert result.returncode != 0
    assert "DATABASE_URL is not set" in result.stderr


def test_cors_origins_accept_a_comma_separated_list(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CORS_ORIGINS", "https://a.example.com, https://b.example.com")
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert settings.cors_origins == ["https://a.example.com", "https://b.example.com"]


def test_defaults_are_safe() -> None:
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert settings.host == "127.0.0.1" and settings.port == 8000
    assert settings.allow_get_queries is False
    assert settings.legacy_graphql_ws is False
    assert settings.max_page_size == 100


def test_minilm_needs_384_dimensions() -> None:
    with pytest.raises(ValueError, match="384"):
        Settings(_env_file=None, embedding_provider="minilm", embedding_dimensions=256)  # type: ignore[call-arg]
