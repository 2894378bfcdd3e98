"""Text metrics and brand-voice warnings stored with the text by the API's writers (content
create, update and version restore, variations); warnings that follow brand-voice and tag
changes (the refresh job); a write ordered after a brand-voice change. The AI jobs and the
backfill: test_text_metrics_jobs.py."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from sqlalchemy import func, select, text, update
from starlette.applications import Starlette

from app.ai.metrics import ALGORITHM_VERSION, analyze
from app.jobs import runner as job_runner
from app.models import ContentVariation, Job, Workspace
from app.services.content.text_metrics import REFRESH_KIND, queue_refresh
from app.settings import Settings
from tests.ai.test_generation import Collector
from tests.api.test_query_counts import count_statements
from tests.helpers import Account, create_workspace, gql, register
from tests.teams import state_of, uid
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


async def workspace_with_voice(
    client: httpx.AsyncClient, voice: dict[str, Any] | None
) -> tuple[Account, str]:
    owner = await register(client)
    ws = await create_workspace(client, owner)
    if voice is not None:
        body = await gql(client, VOICE, {"id": ws, "v": voice}, headers=owner.headers)
        assert body["data"]["updateWorkspace"]["errors"] == []
    return owner, ws


async def create_content(
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


async def read_content(
    client: httpx.AsyncClient, owner: Account, content_id: str
) -> dict[str, Any]:
    body = await gql(client, CONTENT, {"id": content_id}, headers=owner.headers)
    node: dict[str, Any] = body["data"]["content"]
    return node


async def run_queued(app: Starlette, settings: Settings, kind: str) -> list[dict[str, Any]]:
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
    owner, ws = await workspace_with_voice(client, VOICE_BANNING_CHEAP)
    content = await create_content(client, owner, ws, BODY, ["latte", "Vegan"])
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
    node = await read_content(client, owner, content["id"])
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
    owner, ws = await workspace_with_voice(client, {"bannedWords": ["cheap"]})
    content = await create_content(client, owner, ws, BODY, ["latte"])
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
    owner, ws = await workspace_with_voice(client, None)
    content = await create_content(client, owner, ws, BODY, [])
    await gql(
        client, CREATE_VARIATION, {"id": content["id"], "p": "LINKEDIN"}, headers=owner.headers
    )
    assert content["warnings"] == []
    before = await read_content(client, owner, content["id"])
    state = state_of(app)
    async with state.session_factory() as session:
        stamps = {
            r.id: r.updated_at for r in (await session.scalars(select(ContentVariation))).all()
        }

    changed = await gql(client, VOICE, {"id": ws, "v": VOICE_BANNING_CHEAP}, headers=owner.headers)
    assert changed["data"]["updateWorkspace"]["errors"] == []
    [result] = await run_queued(app, settings, REFRESH_KIND)
    assert result["refreshed"] == 2
    after = await read_content(client, owner, content["id"])
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
    assert await run_queued(app, settings, REFRESH_KIND) == []
    await gql(client, VOICE, {"id": ws, "v": {"keywords": ["barista"]}}, headers=owner.headers)
    [again] = await run_queued(app, settings, REFRESH_KIND)
    cleared = await read_content(client, owner, content["id"])
    assert codes(cleared) == {("KEYWORD_MISSING", "barista")}
    assert codes(cleared["variations"][0]) == {("KEYWORD_MISSING", "barista")}
    # Run again: nothing is stale any more (idempotent).
    async with state.session_factory() as session, session.begin():
        queue_refresh(session, uid(ws), 3)
    [idle] = await run_queued(app, settings, REFRESH_KIND)
    assert idle["refreshed"] == 0 and again["refreshed"] == 2


async def test_a_tags_change_rechecks_the_item_at_once_and_its_variations_by_job(
    app: Starlette, client: httpx.AsyncClient, settings: Settings
) -> None:
    owner, ws = await workspace_with_voice(client, None)
    content = await create_content(client, owner, ws, BODY, [])
    await gql(client, CREATE_VARIATION, {"id": content["id"], "p": "X"}, headers=owner.headers)
    retagged = await gql(
        client,
        UPDATE,
        {"id": content["id"], "i": {"tags": ["espresso"]}, "v": 1},
        headers=owner.headers,
    )
    assert codes(retagged["data"]["updateContent"]["content"]) == {("KEYWORD_MISSING", "espresso")}
    [result] = await run_queued(app, settings, REFRESH_KIND)
    assert result["refreshed"] == 1, "only the variation was stale"
    node = await read_content(client, owner, content["id"])
    assert codes(node["variations"][0]) == {("KEYWORD_MISSING", "espresso")}
    # The same tags again: nothing to re-check.
    await gql(
        client,
        UPDATE,
        {"id": content["id"], "i": {"tags": ["Espresso"]}, "v": 2},
        headers=owner.headers,
    )
    assert await run_queued(app, settings, REFRESH_KIND) == []


async def test_a_write_during_a_brand_voice_change_waits_and_sees_the_new_voice(
    app: Starlette, client: httpx.AsyncClient
) -> None:
    """The change holds the workspace row; a concurrent write waits for it (FOR SHARE), so
    it is checked against the new voice, not the one a refresh job would never revisit."""
    owner, ws = await workspace_with_voice(client, None)
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
        writer = asyncio.create_task(create_content(client, owner, ws, BODY, []))
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
