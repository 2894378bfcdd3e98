"""Migrations are the only way the schema changes: they must match the models exactly."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from typing import Any

import asyncpg
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.ext.asyncio import create_async_engine

from app.db import asyncpg_url, plain_pg_url
from app.migrate import alembic_config
from app.models import Base
from tests.conftest import Servers, fresh_database


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


async def test_variant_rollups_fold_back_on_downgrade_and_upgrade_again(
    servers: Servers,
) -> None:
    """0016_event_variants' downgrade folds the A/B arms of a rollup row into one (nothing
    lost), and the way back up works on the folded data."""
    async with fresh_database(servers, "migrations") as url:
        config = alembic_config(url)
        await asyncio.to_thread(command.upgrade, config, "head")
        key = (
            uuid.uuid4(),
            datetime(2026, 11, 1, 10, tzinfo=UTC),
            uuid.uuid4(),
            uuid.UUID(int=0),
        )
        conn = await asyncpg.connect(plain_pg_url(url))
        try:
            for variant, events in (("", 1), ("A", 2), ("B", 4)):
                await conn.execute(
                    "INSERT INTO engagement_hourly (workspace_id, bucket_start, content_id, "
                    "target_id, event_type, variant, events, value_sum) "
                    "VALUES ($1, $2, $3, $4, 'CLICK', $5, $6, 0)",
                    *key,
                    variant,
                    events,
                )
            await asyncio.to_thread(command.downgrade, config, "0015_engagement_models")
            assert await conn.fetch("SELECT events FROM engagement_hourly") == [(7,)]
            await asyncio.to_thread(command.upgrade, config, "head")
            rows = await conn.fetch("SELECT variant, events FROM engagement_hourly")
            assert [tuple(r) for r in rows] == [("", 7)]
        finally:
            await conn.close()
