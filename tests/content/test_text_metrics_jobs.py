"""Text metrics written by the AI jobs (generate, refine, transform) and measured for
older rows: by the refresh job, and from the migration that queues it."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import asyncpg
import httpx
import pytest
from alembic import command
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine
from sqlalchemy.pool import NullPool
from starlette.applications import Starlette

from app.ai.metrics import ALGORITHM_VERSION, analyze
from app.db import asyncpg_url, plain_pg_url
from app.embedded import with_database
from app.jobs import runner as job_runner
from app.migrate import alembic_config
from app.models import Content, ContentVariation, Job
from app.services.content import text_metrics
from app.services.content.text_metrics import REFRESH_KIND, queue_refresh
from app.settings import Settings
from tests.ai.test_generation import Collector
from tests.conftest import Servers, _recreate_database
from tests.content.test_text_metrics import (
    BODY,
    CREATE_VARIATION,
    UPDATE,
    VOICE,
    create_content,
    expected,
    read_content,
    run_queued,
    shown,
    workspace_with_voice,
)
from tests.helpers import gql
from tests.teams import gid, state_of, uid
from workers.tasks import HANDLERS


async def test_ai_writes_store_metrics(
    app: Starlette, client: httpx.AsyncClient, settings: Settings
) -> None:
    """generateContent (item and variations), refineContent and transformContent, with
    the offline writer."""
    voice = {"bannedWords": ["synergy"], "keywords": ["coffee"]}
    owner, ws = await workspace_with_voice(client, voice)
    queued = await gql(
        client,
        "mutation($i: GenerateContentInput!) { generateContent(input: $i) { job { id } errors { code } } }",
        {
            "i": {
                "workspaceId": ws,
                "brief": "Announce our autumn oat latte to regulars",
                "keywords": ["latte"],
                "platforms": ["X", "LINKEDIN"],
            }
        },
        headers=owner.headers,
    )
    assert queued["data"]["generateContent"]["errors"] == []
    [generated] = await run_queued(app, settings, "generate_content")
    node = await read_content(client, owner, gid("Content", generated["content_id"]))
    assert node["textMetrics"] is not None and node["textMetrics"]["words"] > 5
    assert shown(node) == expected(node["body"], voice, node["tags"])
    assert len(node["variations"]) == 2
    for variation in node["variations"]:
        assert shown(variation) == expected(variation["body"], voice, node["tags"])

    refine = await gql(
        client,
        'mutation($id: ID!) { refineContent(contentId: $id, instruction: "shorter") { job { id } } }',
        {"id": node["id"]},
        headers=owner.headers,
    )
    assert refine["data"]["refineContent"]["job"]
    await run_queued(app, settings, "refine_content")
    refined = await read_content(client, owner, node["id"])
    assert refined["version"] == 2 and refined["body"] != node["body"]
    assert shown(refined) == expected(refined["body"], voice, node["tags"])

    transform = await gql(
        client,
        "mutation($id: ID!) { transformContent(contentId: $id, platforms: [X, BLUESKY]) { job { id } } }",
        {"id": node["id"]},
        headers=owner.headers,
    )
    assert transform["data"]["transformContent"]["job"]
    await run_queued(app, settings, "transform_content")
    transformed = await read_content(client, owner, node["id"])
    platforms = {v["platform"]: v for v in transformed["variations"]}
    assert set(platforms) == {"X", "LINKEDIN", "BLUESKY"}
    for variation in transformed["variations"]:
        assert shown(variation) == expected(variation["body"], voice, node["tags"])


async def test_rows_without_metrics_are_backfilled_by_the_job(
    app: Starlette, client: httpx.AsyncClient, settings: Settings
) -> None:
    """Rows from before the metrics (null), or from an older algorithm, are measured."""
    owner, ws = await workspace_with_voice(client, {"bannedWords": ["cheap"]})
    await run_queued(app, settings, REFRESH_KIND)  # the voice's, on an empty workspace
    content = await create_content(client, owner, ws, BODY, [])
    await gql(client, CREATE_VARIATION, {"id": content["id"], "p": "X"}, headers=owner.headers)
    state = state_of(app)
    async with state.session_factory() as session, session.begin():
        await session.execute(
            text("UPDATE contents SET text_metrics = NULL, text_metrics_version = NULL")
        )
        await session.execute(text("UPDATE content_variations SET text_metrics_version = 0"))
        queue_refresh(session, uid(ws), 3)
    assert (await read_content(client, owner, content["id"]))["textMetrics"] is None
    [result] = await run_queued(app, settings, REFRESH_KIND)
    assert result["refreshed"] == 2
    node = await read_content(client, owner, content["id"])
    assert shown(node) == expected(BODY, {"bannedWords": ["cheap"]})
    assert shown(node["variations"][0]) == expected(BODY, {"bannedWords": ["cheap"]})
    async with state.session_factory() as session:
        versions = set((await session.scalars(select(Content.text_metrics_version))).all()) | set(
            (await session.scalars(select(ContentVariation.text_metrics_version))).all()
        )
    assert versions == {ALGORITHM_VERSION}


async def test_the_refresh_job_is_bounded_and_hands_on_to_a_follow_up(
    app: Starlette, client: httpx.AsyncClient, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    owner, ws = await workspace_with_voice(client, None)
    ids = [(await create_content(client, owner, ws, f"{BODY} {i}", []))["id"] for i in range(3)]
    monkeypatch.setattr(text_metrics, "MEASURE_BATCH", 1)
    monkeypatch.setattr(text_metrics, "RUN_BUDGET_CHARS", 1)  # one row per run
    await gql(client, VOICE, {"id": ws, "v": {"bannedWords": ["cheap"]}}, headers=owner.headers)
    runs = []
    while batch := await run_queued(app, settings, REFRESH_KIND):
        runs.extend(batch)
        assert len(runs) < 10
    assert [r["refreshed"] for r in runs] == [1, 1, 1]
    assert ["continued_by" in r for r in runs] == [True, True, False]
    for content_id in ids:
        node = await read_content(client, owner, content_id)
        assert [w["term"] for w in node["warnings"]] == ["cheap"]


async def test_the_refresh_job_never_overwrites_text_written_meanwhile(
    app: Starlette, client: httpx.AsyncClient, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A writer saves new text while the job re-checks the old one: the job's guarded
    update finds the row changed, reads it again, finds it current and leaves it."""
    owner, ws = await workspace_with_voice(client, None)
    content = await create_content(client, owner, ws, BODY, [])
    await gql(client, VOICE, {"id": ws, "v": {"bannedWords": ["cheap"]}}, headers=owner.headers)
    original = text_metrics._remeasure
    new_body = "A calm new text. Cheap? No."

    async def remeasure_while_a_writer_saves(*args: Any, **kwargs: Any) -> Any:
        measured = await original(*args, **kwargs)
        if args[0] == BODY:
            edited = await gql(
                client,
                UPDATE,
                {"id": content["id"], "i": {"body": new_body}, "v": 1},
                headers=owner.headers,
            )
            assert edited["data"]["updateContent"]["errors"] == []
        return measured

    monkeypatch.setattr(text_metrics, "_remeasure", remeasure_while_a_writer_saves)
    [result] = await run_queued(app, settings, REFRESH_KIND)
    assert result["refreshed"] == 0, "the writer's metrics were already current"
    node = await read_content(client, owner, content["id"])
    assert node["body"] == new_body
    assert shown(node) == expected(new_body, {"bannedWords": ["cheap"]})


async def test_the_migration_queues_the_backfill_and_the_job_measures_old_rows(
    servers: Servers, settings: Settings
) -> None:
    """A library from before 0007: upgrading adds the columns and one refresh job per
    workspace with content (run here as the worker would); downgrading removes them."""
    name = f"smartcontent_migration_{uuid.uuid4().hex[:8]}"
    url = with_database(servers.database_url, name)
    await _recreate_database(servers.database_url, name)
    config = alembic_config(url)
    engine = create_async_engine(asyncpg_url(url), poolclass=NullPool)
    ws, empty, content_id = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    try:
        await asyncio.to_thread(command.upgrade, config, "0005")
        async with engine.begin() as conn:
            for workspace_id in (ws, empty):
                await conn.execute(
                    text(
                        "INSERT INTO workspaces (id, name, brand_voice) VALUES "
                        """(:id, 'W', '{"banned_words": ["cheap"]}')"""
                    ),
                    {"id": workspace_id},
                )
            await conn.execute(
                text(
                    "INSERT INTO contents (id, workspace_id, title, body, content_type, format) "
                    "VALUES (:id, :ws, 'T', :body, 'SOCIAL_POST', 'PLAIN')"
                ),
                {"id": content_id, "ws": ws, "body": BODY},
            )
        await asyncio.to_thread(command.upgrade, config, "head")
        factory = async_sessionmaker(engine, expire_on_commit=False)
        async with factory() as session:
            jobs = (await session.scalars(select(Job).where(Job.kind == REFRESH_KIND))).all()
        assert [(j.workspace_id, j.status, j.payload) for j in jobs] == [
            (ws, "QUEUED", {"workspace_id": str(ws)})
        ], "one job, for the workspace with content"
        outcome = await job_runner.run(
            jobs[0].id,
            factory=factory,
            publisher=Collector(),
            enqueuer=None,
            lease_seconds=60,
            handlers=HANDLERS,
            settings=settings,
        )
        assert outcome == "succeeded"
        async with factory() as session:
            row = await session.get(Content, content_id)
        assert row is not None and row.text_metrics_version == ALGORITHM_VERSION
        assert row.text_metrics is not None
        stored = analyze(BODY, brand_voice={"banned_words": ["cheap"]})
        assert row.text_metrics["words"] == stored.words
        assert [w["term"] for w in row.text_metrics["warnings"]] == ["cheap"]

        await asyncio.to_thread(command.downgrade, config, "0005")
        async with engine.connect() as conn:
            columns = set(
                (
                    await conn.execute(
                        text(
                            "SELECT column_name FROM information_schema.columns"
                            " WHERE table_name = 'contents'"
                        )
                    )
                ).scalars()
            )
        assert "text_metrics" not in columns and "body" in columns
    finally:
        await engine.dispose()
        conn_ = await asyncpg.connect(plain_pg_url(servers.database_url))
        try:
            await conn_.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn_.close()
