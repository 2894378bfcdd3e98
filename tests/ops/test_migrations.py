"""Migrations are the only way the schema changes: they must match the models exactly."""

from __future__ import annotations

from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.ext.asyncio import create_async_engine

from app.db import asyncpg_url
from app.models import Base
from tests.conftest import Servers


async def test_models_and_migrations_agree(servers: Servers) -> None:
    engine = create_async_engine(asyncpg_url(servers.database_url))

    def diff(connection: Any) -> list[Any]:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return list(compare_metadata(context, Base.metadata))

    try:
        async with engine.connect() as connection:
            changes = await connection.run_sync(diff)
    finally:
        await engine.dispose()
    assert changes == [], "run an autogenerate migration: models and migrations differ"
