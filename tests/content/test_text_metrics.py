"""Text metrics and brand-voice warnings stored with every written text: content create,
update and version restore, variations, AI generate/refine/transform; warnings that follow
brand-voice and tag changes (the refresh job), writes ordered with a brand-voice change,
and the migration's backfill."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import asyncpg
import httpx
from alembic import command
from sqlalchemy import func, select, text, update
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine
from sqlalchemy.pool import NullPool
from starlette.applications import Starlette

from app.ai.metrics import ALGORITHM_VERSION, analyze
from app.db import asyncpg_url, plain_pg_url
from app.embedded import with_database
from app.jobs import runner as job_runner
from app.migrate import alembic_config
from app.models import Content, ContentVariation, Job, Workspace
from app.services.content.text_metrics import REFRESH_KIND, queue_refresh
from app.settings import Settings
from tests.ai.test_generation import Collector
from tests.api.test_query_counts import count_statements
from tests.conftest import Servers, _recreate_database
from tests.helpers import Account, create_workspace, gql, register
from tests.teams import gid, state_of, uid
from workers.tasks import HANDLERS

METRICS = """
textMetrics {
  words sentences readingTimeSeconds fleschReadingEase fleschKincaidGrade
  sentiment { compound label } hashtags hashtagCount questions hasCallToAction algorithmVersion
}
warnings { code message term }
"""
CREATE = (
    "mutation($i: CreateContentInput!) { createContent(input: $i) {"
    " content { id version " + METRICS + " } errors { code } } }"
)
UPDATE = (
    "mutation($id: ID!, $i: UpdateContentInput!, $v: Int!) {"
    " updateContent(id: $id, input: $i, expectedVersion: $v) {"
    " content { id version " + METRICS + " } errors { code } } }"
)
CONTENT = (
    "query($id: ID!) { content(id: $id) { id version body tags " + METRICS + " versions { id }"
    " variations { id platform body " + METRICS + " } } }"
)
CREATE_VARIATION = (
    "mutation($id: ID!, $p: Platform!, $i: VariationInput) {"
    " createVariation(contentId: $id, platform: $p, input: $i) {"
    " variation { id body " + METRICS + " } errors { code } } }"
)
UPDATE_VARIATION = (
    "mutation($id: ID!, $i: VariationInput!) { updateVariation(id: $id, input: $i) {"
    " variation { id body " + METRICS + " } errors { code } } }"
)
VOICE = (
    "mutation($id: ID!, $v: BrandVoiceInput!) {"
    " updateWorkspace(id: $id, input: {brandVoice: $v}) { errors { code } } }"
)
BODY = (
    "Our cheap oat latte is back! Have you tried it? It is smooth, warm and lovely. "
    "Order yours today. #OatLatte #Autumn"
)
VOICE_BANNING_CHEAP = {"tone": "friendly", "bannedWords": ["cheap"], "keywords": ["barista"]}


def expected(
    body: str, voice: dict[str, Any] | None = None, tags: list[str] | None = None
) -> dict[str, Any]:
    """What the API should show for `body`, computed here from the same library."""
    stored_voice = {
        "tone": (voice or {}).get("tone", ""),
        "banned_words": (voice or {}).get("bannedWords", []),
        "keywords": (voice or {}).get("keywords", []),
    }
    m = analyze(body, brand_voice=stored_voice, keywords=tags or [])
    return {
        "textMetrics": {
            "words": m.words,
            "sentences": m.sentences,
            "readingTimeSeconds": m.reading_time_seconds,
            "fleschReadingEase": m.flesch_reading_ease,
            "fleschKincaidGrade": m.flesch_kincaid_grade,
            "sentiment": {"compound": m.sentiment, "label": m.sentiment_label.value},
            "hashtags": m.hashtags,
            "hashtagCount": m.hashtag_count,
            "questions": m.questions,
            "hasCallToAction": m.has_call_to_action,
            "algorithmVersion": ALGORITHM_VERSION,
        },
        "warnings": [
            {"code": w.code.value, "message": w.message, "term": w.term} for w in m.warnings
        ],
    }


def shown(node: dict[str, Any]) -> dict[str, Any]:
    return {"textMetrics": node["textMetrics"], "warnings": node["warnings"]}


def codes(node: dict[str, Any]) -> set[tuple[str, str | None]]:
    return {(w["code"], w["term"]) for w in node["warnings"]}


async def _workspace(
    client: httpx.AsyncClient, voice: dict[str, Any] | None
) -> tuple[Account, str]:
    owner = await register(client)
    ws = await create_workspace(client, owner)
    if voice is not None:
        body = await gql(client, VOICE, {"id": ws, "v": voice}, headers=owner.headers)
        assert body["data"]["updateWorkspace"]["errors"] == []
    return owner, ws


async def _create(
    client: httpx.AsyncClient, owner: Account, ws: str, body: str, tags: list[str]
) -> dict[str, Any]:
    created = await gql(
        client,
        CREATE,
        {"i": {"workspaceId": ws, "title": "Autumn menu", "body": body, "tags": tags}},
        headers=owner.headers,
    )
    payload = created["data"]["createContent"]
    assert payload["errors"] == []
    content: dict[str, Any] = payload["content"]
    return content


async def _read(client: httpx.AsyncClient, owner: Account, content_id: str) -> dict[str, Any]:
    body = await gql(client, CONTENT, {"id": content_id}, headers=owner.headers)
    node: dict[str, Any] = body["data"]["content"]
    return node


async def _run_queued(app: Starlette, settings: Settings, kind: str) -> list[dict[str, Any]]:
    """Run every queued job of `kind` as a worker would; their results."""
    state = state_of(app)
    async with state.session_factory() as session:
        ids = (
            await session.scalars(
                select(Job.id)
                .where(Job.kind == kind, Job.status == "QUEUED")
                .order_by(Job.created_at)
            )
        ).all()
    results = []
    for job_id in ids:
        outcome = await job_runner.run(
            job_id,
            factory=state.session_factory,
            publisher=Collector(),
            enqueuer=None,
            lease_seconds=60,
            handlers=HANDLERS,
            settings=settings,
        )
        assert outcome == "succeeded", outcome
        async with state.session_factory() as session:
            job = await session.get(Job, job_id)
        assert job is not None and job.result is not None
        results.append(job.result)
    return results


async def test_create_update_and_restore_store_the_metrics_of_the_text(
    app: Starlette, client: httpx.AsyncClient
) -> None:
    owner, ws = await _workspace(client, VOICE_BANNING_CHEAP)
    content = await _create(client, owner, ws, BODY, ["latte", "Vegan"])
    assert shown(content) == expected(BODY, VOICE_BANNING_CHEAP, ["latte", "vegan"])
    metrics = content["textMetrics"]
    assert (metrics["questions"], metrics["hasCallToAction"]) == (1, True)
    assert metrics["hashtags"] == ["#OatLatte", "#Autumn"]
    assert metrics["sentiment"]["label"] == "POSITIVE"
    assert codes(content) == {
        ("BANNED_WORD", "cheap"),
        ("KEYWORD_MISSING", "vegan"),
        ("KEYWORD_MISSING", "barista"),
    }, "'latte' is in the text; the tags were cleaned to lower case"

    # An edit is measured in the same UPDATE that writes the text.
    new_body = "A terrible, awful week. Our barista is sad. #vegan"
    with count_statements(app) as statements:
        updated = await gql(
            client,
            UPDATE,
            {"id": content["id"], "i": {"body": new_body}, "v": 1},
            headers=owner.headers,
        )
    content_updates = [s for s in statements if s.lstrip().upper().startswith("UPDATE CONTENTS")]
    assert len(content_updates) == 1 and "text_metrics" in content_updates[0], content_updates
    edited = updated["data"]["updateContent"]["content"]
    assert shown(edited) == expected(new_body, VOICE_BANNING_CHEAP, ["latte", "vegan"])
    assert codes(edited) == {
        ("KEYWORD_MISSING", "latte"),
        ("TONE", None),
    }, "negative text in a friendly voice; #vegan mentions vegan"

    # A title-only edit keeps the metrics; restoring version 1 restores its metrics.
    retitled = await gql(
        client,
        UPDATE,
        {"id": content["id"], "i": {"title": "Autumn"}, "v": 2},
        headers=owner.headers,
    )
    assert shown(retitled["data"]["updateContent"]["content"]) == shown(edited)
    node = await _read(client, owner, content["id"])
    first_version = node["versions"][-1]["id"]
    restored = await gql(
        client,
        "mutation($id: ID!) { restoreContentVersion(versionId: $id) { content { id "
        + METRICS
        + " } errors { code } } }",
        {"id": first_version},
        headers=owner.headers,
    )
    assert shown(restored["data"]["restoreContentVersion"]["content"]) == shown(content)


async def test_variations_are_measured_against_their_items_tags(
    app: Starlette, client: httpx.AsyncClient
) -> None:
    owner, ws = await _workspace(client, {"bannedWords": ["cheap"]})
    content = await _create(client, owner, ws, BODY, ["latte"])
    created = await gql(
        client,
        CREATE_VARIATION,
        {"id": content["id"], "p": "X", "i": None},
        headers=owner.headers,
    )
    variation = created["data"]["createVariation"]["variation"]
    assert variation["body"] == BODY, "defaults to the item's text"
    assert shown(variation) == expected(BODY, {"bannedWords": ["cheap"]}, ["latte"])
    new_body = "Cheap coffee? Never. Try the new roast."
    with count_statements(app) as statements:
        updated = await gql(
            client,
            UPDATE_VARIATION,
            {"id": variation["id"], "i": {"body": new_body}},
            headers=owner.headers,
        )
    writes = [s for s in statements if s.lstrip().upper().startswith("UPDATE CONTENT_VARIATIONS")]
    assert len(writes) == 1 and "text_metrics" in writes[0], writes
    edited = updated["data"]["updateVariation"]["variation"]
    assert shown(edited) == expected(new_body, {"bannedWords": ["cheap"]}, ["latte"])
    assert codes(edited) == {("BANNED_WORD", "cheap"), ("KEYWORD_MISSING", "latte")}
    # A media-only edit leaves the metrics alone.
    same = await gql(
        client,
        UPDATE_VARIATION,
        {"id": variation["id"], "i": {"subject": "s"}},
        headers=owner.headers,
    )
    assert shown(same["data"]["updateVariation"]["variation"]) == shown(edited)


async def test_warnings_follow_a_brand_voice_change_through_the_refresh_job(
    app: Starlette, client: httpx.AsyncClient, settings: Settings
) -> None:
    owner, ws = await _workspace(client, None)
    content = await _create(client, owner, ws, BODY, [])
    await gql(
        client, CREATE_VARIATION, {"id": content["id"], "p": "LINKEDIN"}, headers=owner.headers
    )
    assert content["warnings"] == []
    before = await _read(client, owner, content["id"])
    state = state_of(app)
    async with state.session_factory() as session:
        stamps = {
            r.id: r.updated_at for r in (await session.scalars(select(ContentVariation))).all()
        }

    changed = await gql(client, VOICE, {"id": ws, "v": VOICE_BANNING_CHEAP}, headers=owner.headers)
    assert changed["data"]["updateWorkspace"]["errors"] == []
    [result] = await _run_queued(app, settings, REFRESH_KIND)
    assert result["refreshed"] == 2
    after = await _read(client, owner, content["id"])
    want = {("BANNED_WORD", "cheap"), ("KEYWORD_MISSING", "barista")}
    assert codes(after) == want
    assert codes(after["variations"][0]) == want
    assert shown(after) == expected(BODY, VOICE_BANNING_CHEAP)
    assert after["textMetrics"] == before["textMetrics"], "only the warnings depend on the voice"
    async with state.session_factory() as session:
        rows = (await session.scalars(select(ContentVariation))).all()
    assert {r.id: r.updated_at for r in rows} == stamps, "a re-check is not an edit"

    # Saving the same voice again queues nothing; a voice without the ban clears it.
    await gql(client, VOICE, {"id": ws, "v": VOICE_BANNING_CHEAP}, headers=owner.headers)
    assert await _run_queued(app, settings, REFRESH_KIND) == []
    await gql(client, VOICE, {"id": ws, "v": {"keywords": ["barista"]}}, headers=owner.headers)
    [again] = await _run_queued(app, settings, REFRESH_KIND)
    cleared = await _read(client, owner, content["id"])
    assert codes(cleared) == {("KEYWORD_MISSING", "barista")}
    assert codes(cleared["variations"][0]) == {("KEYWORD_MISSING", "barista")}
    # Run again: nothing is stale any more (idempotent).
    async with state.session_factory() as session, session.begin():
        queue_refresh(session, uid(ws), 3)
    [idle] = await _run_queued(app, settings, REFRESH_KIND)
    assert idle["refreshed"] == 0 and again["refreshed"] == 2


async def test_a_tags_change_rechecks_the_item_at_once_and_its_variations_by_job(
    app: Starlette, client: httpx.AsyncClient, settings: Settings
) -> None:
    owner, ws = await _workspace(client, None)
    content = await _create(client, owner, ws, BODY, [])
    await gql(client, CREATE_VARIATION, {"id": content["id"], "p": "X"}, headers=owner.headers)
    retagged = await gql(
        client,
        UPDATE,
        {"id": content["id"], "i": {"tags": ["espresso"]}, "v": 1},
        headers=owner.headers,
    )
    assert codes(retagged["data"]["updateContent"]["content"]) == {("KEYWORD_MISSING", "espresso")}
    [result] = await _run_queued(app, settings, REFRESH_KIND)
    assert result["refreshed"] == 1, "only the variation was stale"
    node = await _read(client, owner, content["id"])
    assert codes(node["variations"][0]) == {("KEYWORD_MISSING", "espresso")}
    # The same tags again: nothing to re-check.
    await gql(
        client,
        UPDATE,
        {"id": content["id"], "i": {"tags": ["Espresso"]}, "v": 2},
        headers=owner.headers,
    )
    assert await _run_queued(app, settings, REFRESH_KIND) == []


async def test_a_write_during_a_brand_voice_change_waits_and_sees_the_new_voice(
    app: Starlette, client: httpx.AsyncClient
) -> None:
    """The change holds the workspace row; a concurrent write waits for it (FOR SHARE), so
    it is checked against the new voice, not the one a refresh job would never revisit."""
    owner, ws = await _workspace(client, None)
    state = state_of(app)
    async with state.session_factory() as session, session.begin():
        await session.execute(
            text("SELECT 1 FROM workspaces WHERE id = :id FOR UPDATE"), {"id": uid(ws)}
        )
        await session.execute(
            update(Workspace)
            .where(Workspace.id == uid(ws))
            .values(brand_voice={"banned_words": ["cheap"]})
        )
        writer = asyncio.create_task(_create(client, owner, ws, BODY, []))
        async with state.engine.connect() as probe:
            for _ in range(2000):  # until the write waits on our lock
                waiting = await probe.scalar(
                    select(func.count())
                    .select_from(text("pg_stat_activity"))
                    .where(text("wait_event_type = 'Lock' AND datname = current_database()"))
                )
                if waiting or writer.done():
                    break
                await asyncio.sleep(0.005)
        assert not writer.done(), "the write must wait for the brand-voice change"
    content = await writer
    assert codes(content) == {("BANNED_WORD", "cheap")}


async def test_ai_writes_store_metrics(
    app: Starlette, client: httpx.AsyncClient, settings: Settings
) -> None:
    """generateContent (item and variations), refineContent and transformContent, with
    the offline writer."""
    owner, ws = await _workspace(client, {"bannedWords": ["synergy"], "keywords": ["coffee"]})
    voice = {"bannedWords": ["synergy"], "keywords": ["coffee"]}
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
    [generated] = await _run_queued(app, settings, "generate_content")
    node = await _read(client, owner, gid("Content", generated["content_id"]))
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
    await _run_queued(app, settings, "refine_content")
    refined = await _read(client, owner, node["id"])
    assert refined["version"] == 2 and refined["body"] != node["body"]
    assert shown(refined) == expected(refined["body"], voice, node["tags"])

    transform = await gql(
        client,
        "mutation($id: ID!) { transformContent(contentId: $id, platforms: [X, BLUESKY]) { job { id } } }",
        {"id": node["id"]},
        headers=owner.headers,
    )
    assert transform["data"]["transformContent"]["job"]
    await _run_queued(app, settings, "transform_content")
    transformed = await _read(client, owner, node["id"])
    platforms = {v["platform"]: v for v in transformed["variations"]}
    assert set(platforms) == {"X", "LINKEDIN", "BLUESKY"}
    for variation in transformed["variations"]:
        assert shown(variation) == expected(variation["body"], voice, node["tags"])


async def test_rows_without_metrics_are_backfilled_by_the_job(
    app: Starlette, client: httpx.AsyncClient, settings: Settings
) -> None:
    """Rows from before the metrics (null), or from an older algorithm, are measured."""
    owner, ws = await _workspace(client, {"bannedWords": ["cheap"]})
    await _run_queued(app, settings, REFRESH_KIND)  # the voice's, on an empty workspace
    content = await _create(client, owner, ws, BODY, [])
    await gql(client, CREATE_VARIATION, {"id": content["id"], "p": "X"}, headers=owner.headers)
    state = state_of(app)
    async with state.session_factory() as session, session.begin():
        await session.execute(
            text("UPDATE contents SET text_metrics = NULL, text_metrics_version = NULL")
        )
        await session.execute(text("UPDATE content_variations SET text_metrics_version = 0"))
        queue_refresh(session, uid(ws), 3)
    assert (await _read(client, owner, content["id"]))["textMetrics"] is None
    [result] = await _run_queued(app, settings, REFRESH_KIND)
    assert result["refreshed"] == 2
    node = await _read(client, owner, content["id"])
    assert shown(node) == expected(BODY, {"bannedWords": ["cheap"]})
    assert shown(node["variations"][0]) == expected(BODY, {"bannedWords": ["cheap"]})
    async with state.session_factory() as session:
        versions = set((await session.scalars(select(Content.text_metrics_version))).all()) | set(
            (await session.scalars(select(ContentVariation.text_metrics_version))).all()
        )
    assert versions == {ALGORITHM_VERSION}


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
