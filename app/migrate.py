"""Run Alembic migrations programmatically (CLI, dev bootstrap, tests)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

ROOT = Path(__file__).resolve().parent.parent


def alembic_config(database_url: str) -> Config:
    config = Config(str(ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(ROOT / "migrations"))
    config.attributes["database_url"] = database_url
    return config


def upgrade_head(database_url: str) -> None:
    """`alembic upgrade head`; concurrent callers are serialised by an advisory lock."""
    command.upgrade(alembic_config(database_url), "head")
