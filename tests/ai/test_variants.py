"""generateVariants: A/B-test variants B, C, ... each with its own stated angle, never
empty or a copy, with per-platform texts within the rules; saved once per generation. And
Content.personalizations / Content.variants loaded in batches (statements per page)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from arq.worker import Worker
from sqlalchemy import func, select, update
from starlette.applications import Starlette

from app.ai import prompting
from app.models import (
    AudienceSegment,
    Content,
    ContentPersonalization,
    ContentVariant,
    Generation,
)
from app.models.vocabulary import Platform
from app.platforms.rules import evaluate
from app.services.ai import drafts
from app.services.ai.variants import label_for
from tests.ai.derived_helpers import BODY, Item, make_item, run_job, versions
from tests.ai.fake_llm import FakeLLM, Stream, serve_fake_llm
from tests.ai.test_drafts import blog_post
from tests.ai.test_editing import wait_done
from tests.api.test_query_counts import count_statements
from tests.conftest import Servers
from tests.helpers import gql, register
from tests.teams import state_of, uid

VARIANTS = """
mutation($id: ID!, $n: Int!) {
  generateVariants(contentId: $id, count: $n) { job { id status } errors { field code message } }
}
"""
ADD_VARIATION = """
mutation($id: ID!, $p: Platform!) {
  createVariation(contentId: $id, platform: $p) { variation { id } errors { code } }
}
"""
CONTENT = """
query($id: ID!) {
  content(id: $id) {
    body
    variants {
      id label title body angle basedOnVersion createdAt metrics
      platformTexts { platform body subject preheader repairs }
    }
  }
}
"""
RECORD = """
query($id: ID!) {
  generationJob(id: $id) { job { status error } operation provider variants { id label } }
}
"""


@pytest.fixture
async def fake() -> AsyncIterator[FakeLLM]:
    async with serve_fake_llm() as server:
        yield server


async def with_platforms(client: httpx.AsyncClient, item: Item, platforms: list[str]) -> None:
    for platform in platforms:
        made = await gql(
            client,
            ADD_VARIATION,
            {"id": item.content_id, "p": platform},
            headers=item.owner.headers,
        )
        assert made["data"]["createVariation"]["errors"] == [], made


async def generate(client: httpx.AsyncClient, item: Item, count: int) -> dict[str, Any]:
    body = await gql(
        client, VARIANTS, {"id": item.content_id, "n": count}, headers=item.owner.headers
    )
    payload: dict[str, Any] = body["data"]["generateVariants"]
    return payload


async def variants_of(client: httpx.AsyncClient, item: Item) -> list[dict[str, Any]]:
    body = await gql(client, CONTENT, {"id": item.content_id}, headers=item.owner.headers)
    found: list[dict[str, Any]] = body["data"]["content"]["variants"]
    return found


def assert_within_rules(variant: dict[str, Any], platforms: set[str]) -> None:
    texts = {t["platform"]: t for t in variant["platformTexts"]}
    assert set(texts) == platforms
    for name, text in texts.items():
        evaluation = evaluate(
            Platform(name), text["body"], subject=text["subject"], preheader=text["preheader"]
        )
        broken = [v.code for v in evaluation.violations if v.code in drafts.TEXT_RULES]
        assert broken == [] and text["body"].strip(), (name, broken)


def test_labels_follow_the_original_a() -> None:
    assert [label_for(i) for i in (0, 1, 24, 25, 26, 49)] == ["B", "C", "Z", "AA", "AB", "AY"]


async def test_offline_variants_each_take_a_different_angle_and_more_get_new_labels(
    app: Starlette, client: httpx.AsyncClient, worker: Worker
) -> None:
    item = await make_item(client, segments=[])
    await with_platforms(client, item, ["X", "BLUESKY", "EMAIL"])
    first = await generate(client, item, 3)
    assert first["errors"] == [] and first["job"]["status"] == "QUEUED"
    done = await wait_done(client, item.owner, first["job"]["id"])
    assert done["job"]["status"] == "SUCCEEDED", done
    second = await generate(client, item, 2)
    assert (await wait_done(client, item.owner, second["job"]["id"]))["job"]["status"] == (
        "SUCCEEDED"
    )
    found = await variants_of(client, item)
    assert [v["label"] for v in found] == ["B", "C", "D", "E", "F"]
    bodies = [v["body"] for v in found]
    assert len({BODY, *bodies}) == 6, "each differs from the item and from the others"
    angles = [v["angle"] for v in found]
    assert len(set(angles)) == 5 and all(angles)
    assert angles[0].startswith("Question hook") and angles[1].startswith("Benefit first")
    for variant in found:
        assert variant["basedOnVersion"] == 1 and "cheap" not in variant["body"]
        assert "Angle:" not in variant["body"] and variant["metrics"]["words"] > 5
        assert_within_rules(variant, {"X", "BLUESKY", "EMAIL"})
        assert len(variant["body"]) <= 280, "a social post fits its strictest platform"
    record = (await gql(client, RECORD, {"id": second["job"]["id"]}, headers=item.owner.headers))[
        "data"
    ]["generationJob"]
    assert record["operation"] == "VARIANTS" and record["provider"] == "offline"
    assert [v["label"] for v in record["variants"]] == ["E", "F"]
    assert (await versions(client, item))["body"] == BODY, "the item itself is unchanged"


async def test_count_is_one_to_five_and_an_item_keeps_at_most_fifty(
    app: Starlette, client: httpx.AsyncClient
) -> None:
    state = state_of(app)
    item = await make_item(client, segments=[])
    for count in (0, 6, -1):
        refused = await generate(client, item, count)
        assert refused["job"] is None
        assert [(e["field"], e["code"]) for e in refused["errors"]] == [("count", "OUT_OF_RANGE")]
    async with state.session_factory() as session, session.begin():
        content = await session.get(Content, uid(item.content_id))
        assert content is not None
        session.add_all(
            ContentVariant(
                workspace_id=content.workspace_id,
                content_id=content.id,
                label=label_for(i),
                title="t",
                body=f"Variant {i}",
                angle="a",
                based_on_version=1,
            )
            for i in range(49)
        )
    full = await generate(client, item, 2)
    assert [e["code"] for e in full["errors"]] == ["TOO_MANY"] and "49" in full["errors"][0][
        "message"
    ]
    assert (await generate(client, item, 1))["errors"] == []
    async with state.session_factory() as session:
        assert await session.scalar(select(func.count()).select_from(Generation)) == 1
    viewer_free = await register(client)
    hidden = await gql(
        client, VARIANTS, {"id": item.content_id, "n": 1}, headers=viewer_free.headers
    )
    assert hidden["errors"][0]["extensions"]["code"] == "NOT_FOUND"


async def test_a_model_copy_is_asked_again_and_platform_texts_are_repaired(
    app: Starlette, client: httpx.AsyncClient, servers: Servers, fake: FakeLLM
) -> None:
    state = state_of(app)
    item = await make_item(client, segments=[])
    platforms = ["X", "BLUESKY", "INSTAGRAM", "EMAIL"]
    await with_platforms(client, item, platforms)
    long_text = blog_post(1500) + " " + " ".join(f"#tag{i}" for i in range(40))
    fake.openai.steps = [
        Stream(["Angle: the same\nTitle: Oat latte launch\n\n", BODY]),  # a copy: asked again
        Stream(
            [
                "**Angle:** Opens with a question about breaks\nTitle: Need a better break?\n\n",
                long_text,
            ]
        ),
        Stream(["Title: Creamy and vegan\n\nCreamy, vegan, and ready Monday."]),  # no angle
    ]
    queued = await generate(client, item, 2)
    outcome, collector = await run_job(state, servers, fake, uid(queued["job"]["id"]))
    assert outcome == "succeeded"
    requests = [r["body"]["messages"][1]["content"] for r in fake.openai.requests]
    assert len(requests) == 3
    assert "Write variant B" in requests[0] and prompting.VARIANT_ANGLES["question"] in requests[0]
    assert "keep it within 280 characters" in requests[0] and "at most 30 hashtags" in requests[0]
    assert requests[1].endswith(
        "could not be used: it repeated the original or another variant word for word. "
        "Answer again."
    )
    assert "Write variant C" in requests[2] and prompting.VARIANT_ANGLES["benefit"] in requests[2]
    states = [m for m in collector.messages if "delta" not in m]
    running = [m["message"] for m in states if m["status"] == "RUNNING"]
    assert running[1:] == ["variant:0", "variant:0", "variant:1", "saving"]
    found = await variants_of(client, item)
    assert [(v["label"], v["title"]) for v in found] == [
        ("B", "Need a better break?"),
        ("C", "Creamy and vegan"),
    ]
    assert found[0]["angle"] == "Opens with a question about breaks"
    assert found[1]["angle"] == f"Asked for: {prompting.VARIANT_ANGLES['benefit']}"
    for variant in found:
        assert_within_rules(variant, set(platforms))
    texts = {t["platform"]: t for t in found[0]["platformTexts"]}
    assert 1 < len(evaluate(Platform.X, texts["X"]["body"]).parts) <= 25
    assert any(r.startswith("TOO_MANY_HASHTAGS") for r in texts["INSTAGRAM"]["repairs"])
    assert texts["EMAIL"]["subject"] == "Need a better break?"
    async with state.session_factory() as session:
        record = (await session.scalars(select(Generation))).one()
    assert record.provider_calls == 3 and [c["stage"] for c in record.calls] == ["variant"] * 3


async def test_an_attempt_that_finds_its_generation_saved_meanwhile_saves_nothing(
    app: Starlette, client: httpx.AsyncClient, servers: Servers, fake: FakeLLM
) -> None:
    """Two attempts of one job (at-least-once delivery): the one that reaches the save
    second finds the generation finished and writes no second set of variants."""
    state = state_of(app)
    item = await make_item(client, segments=[])
    gate = asyncio.Event()
    fake.openai.steps = [
        Stream(["Angle: a\nTitle: T\n\n", "A fresh text."], gate=gate, gate_after=1)
    ]
    queued = await generate(client, item, 1)
    job_id = uid(queued["job"]["id"])
    running = asyncio.create_task(run_job(state, servers, fake, job_id))
    for _ in range(500):
        if fake.openai.requests:
            break
        await asyncio.sleep(0.01)
    async with state.session_factory() as session, session.begin():
        await session.execute(
            update(Generation)
            .where(Generation.job_id == job_id)
            .values(finished_at=datetime.now(UTC))
        )
    gate.set()
    outcome, _ = await asyncio.wait_for(running, 30)
    assert outcome == "succeeded"
    assert await variants_of(client, item) == []


async def test_variants_are_invisible_outside_the_workspace(
    app: Starlette, client: httpx.AsyncClient, worker: Worker
) -> None:
    item = await make_item(client, segments=[])
    queued = await generate(client, item, 1)
    assert (await wait_done(client, item.owner, queued["job"]["id"]))["job"][
        "status"
    ] == "SUCCEEDED"
    [variant] = await variants_of(client, item)
    node = "query($id: ID!) { node(id: $id) { ... on ContentVariant { label } } }"
    mine = await gql(client, node, {"id": variant["id"]}, headers=item.owner.headers)
    assert mine["data"]["node"] == {"label": "B"}
    stranger = await register(client)
    theirs = await gql(client, node, {"id": variant["id"]}, headers=stranger.headers)
    assert theirs["data"]["node"] is None
    hidden = await gql(client, CONTENT, {"id": item.content_id}, headers=stranger.headers)
    assert (hidden.get("data") or {}).get("content") is None
    assert "variants" not in str(hidden.get("data"))
    record = await gql(client, RECORD, {"id": queued["job"]["id"]}, headers=stranger.headers)
    assert record["data"]["generationJob"] is None


PAGE = """
query($ws: ID!, $n: Int!) {
  contents(workspaceId: $ws, first: $n) {
    edges { node {
      id
      personalizations { id title changes { change reason } segment { id name } }
      variants { id label angle platformTexts { platform body } }
    } }
  }
}
"""


async def test_content_pages_load_personalizations_and_variants_in_batches(
    app: Starlette, client: httpx.AsyncClient
) -> None:
    state = state_of(app)
    item = await make_item(client, segments=SEGMENTS_FOR_PAGE)
    workspace_id = uid(item.workspace_id)
    async with state.session_factory() as session, session.begin():
        segments = (await session.scalars(select(AudienceSegment))).all()
        for i in range(12):
            content = Content(
                id=uuid.uuid4(),
                workspace_id=workspace_id,
                title=f"Item {i}",
                body="Body.",
                content_type="SOCIAL_POST",
                format="PLAIN",
                tags=[],
                version=1,
            )
            session.add(content)
            await session.flush()
            for segment in segments:
                session.add(
                    ContentPersonalization(
                        workspace_id=workspace_id,
                        content_id=content.id,
                        segment_id=segment.id,
                        title="P",
                        body=f"For {segment.name}.",
                        changes=[{"change": "c", "reason": "r"}],
                        based_on_version=1,
                    )
                )
            for n in range(2):
                session.add(
                    ContentVariant(
                        workspace_id=workspace_id,
                        content_id=content.id,
                        label=label_for(n),
                        title="V",
                        body=f"Variant {n}.",
                        angle="a",
                        platform_texts=[{"platform": "X", "body": "x", "repairs": []}],
                        based_on_version=1,
                    )
                )
    counts = {}
    for size in (2, 12):
        with count_statements(app) as statements:
            body = await gql(
                client, PAGE, {"ws": item.workspace_id, "n": size}, headers=item.owner.headers
            )
        edges = body["data"]["contents"]["edges"]
        assert len(edges) == size
        generated = [e["node"] for e in edges if e["node"]["id"] != item.content_id]
        assert all(len(n["personalizations"]) == 2 and len(n["variants"]) == 2 for n in generated)
        assert all(p["segment"]["name"] for n in generated for p in n["personalizations"])
        counts[size] = len(statements)
    assert counts[2] == counts[12], counts


SEGMENTS_FOR_PAGE = [("Students", "Undergraduates", {}), ("Owners", "Cafe owners", {})]
