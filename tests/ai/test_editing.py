"""refineContent (a new version of the item) and transformContent (variations within the
platform rules), through the API with a real worker, and with a model ignoring limits."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from arq.worker import Worker
from sqlalchemy import select
from starlette.applications import Starlette

from app.jobs import runner as job_runner
from app.models import ContentVariation, Generation
from app.models.vocabulary import Platform
from app.platforms.rules import evaluate
from app.services.ai import drafts
from tests.ai.fake_llm import FakeLLM, Stream, serve_fake_llm
from tests.ai.test_drafts import blog_post
from tests.ai.test_generation import Collector
from tests.conftest import Servers, make_settings
from tests.helpers import Account, create_workspace, gql, register
from tests.teams import state_of, uid
from workers.tasks import HANDLERS

CREATE = """
mutation($i: CreateContentInput!) {
  createContent(input: $i) { content { id version } errors { code } }
}
"""
REFINE = """
mutation($id: ID!, $text: String!) {
  refineContent(contentId: $id, instruction: $text) { job { id status } errors { field code } }
}
"""
TRANSFORM = """
mutation($id: ID!, $p: [Platform!]!) {
  transformContent(contentId: $id, platforms: $p) { job { id status } errors { field code } }
}
"""
CONTENT = """
query($id: ID!) {
  content(id: $id) {
    version title body versions { version body }
    variations { platform body subject withinLimits violations { code } }
  }
}
"""
RECORD = "query($id: ID!) { generationJob(id: $id) { job { status error } operation provider } }"
PLATFORMS = ["X", "LINKEDIN", "INSTAGRAM", "BLUESKY"]


@pytest.fixture
async def fake() -> AsyncIterator[FakeLLM]:
    async with serve_fake_llm() as server:
        yield server


async def make_content(client: httpx.AsyncClient, body: str) -> tuple[Account, str]:
    owner = await register(client)
    workspace = await create_workspace(client, owner)
    created = await gql(
        client,
        CREATE,
        {
            "i": {
                "workspaceId": workspace,
                "title": "Repurposing without the busywork",
                "body": body,
                "contentType": "BLOG_POST",
                "tags": ["content"],
            }
        },
        headers=owner.headers,
    )
    payload = created["data"]["createContent"]
    assert payload["errors"] == []
    return owner, payload["content"]["id"]


async def wait_done(client: httpx.AsyncClient, owner: Account, job_id: str) -> dict[str, Any]:
    for _ in range(600):
        body = await gql(client, RECORD, {"id": job_id}, headers=owner.headers)
        record: dict[str, Any] = body["data"]["generationJob"]
        if record["job"]["status"] in ("SUCCEEDED", "FAILED"):
            return record
        await asyncio.sleep(0.05)
    raise AssertionError("the job did not finish")


async def test_refine_stores_a_new_version_that_can_be_undone(
    app: Starlette, client: httpx.AsyncClient, worker: Worker
) -> None:
    body = "First point. Second point. Third point. Fourth point. Fifth point. Sixth point."
    owner, content_id = await make_content(client, body)
    queued = await gql(
        client, REFINE, {"id": content_id, "text": "make it shorter"}, headers=owner.headers
    )
    payload = queued["data"]["refineContent"]
    assert payload["errors"] == [] and payload["job"]["status"] == "QUEUED"
    record = await wait_done(client, owner, payload["job"]["id"])
    assert record["job"]["status"] == "SUCCEEDED", record
    assert (record["operation"], record["provider"]) == ("REFINE", "offline")
    content = (await gql(client, CONTENT, {"id": content_id}, headers=owner.headers))["data"][
        "content"
    ]
    assert content["version"] == 2
    assert len(content["body"]) < len(body) and content["body"].startswith("First point.")
    assert [v["version"] for v in content["versions"]] == [2, 1]
    assert content["versions"][1]["body"] == body, "the old text stays in the history"


async def test_refine_needs_an_instruction_and_an_editable_item(
    app: Starlette, client: httpx.AsyncClient
) -> None:
    owner, content_id = await make_content(client, "Body.")
    empty = await gql(client, REFINE, {"id": content_id, "text": " "}, headers=owner.headers)
    assert empty["data"]["refineContent"]["errors"] == [
        {"field": "instruction", "code": "REQUIRED"}
    ]
    stranger = await register(client)
    hidden = await gql(client, REFINE, {"id": content_id, "text": "x"}, headers=stranger.headers)
    assert hidden["errors"][0]["extensions"]["code"] == "NOT_FOUND"


async def test_a_1500_word_post_transformed_by_the_offline_writer_is_within_limits(
    app: Starlette, client: httpx.AsyncClient, worker: Worker
) -> None:
    owner, content_id = await make_content(client, blog_post(1500))
    queued = await gql(client, TRANSFORM, {"id": content_id, "p": PLATFORMS}, headers=owner.headers)
    job = queued["data"]["transformContent"]["job"]
    record = await wait_done(client, owner, job["id"])
    assert record["job"]["status"] == "SUCCEEDED", record
    content = (await gql(client, CONTENT, {"id": content_id}, headers=owner.headers))["data"][
        "content"
    ]
    variations = {v["platform"]: v for v in content["variations"]}
    assert set(variations) == set(PLATFORMS)
    for name, variation in variations.items():
        codes = {v["code"] for v in variation["violations"]}
        assert codes <= {"MEDIA_REQUIRED"}, (name, codes)  # an image is yours to attach


async def test_a_model_that_ignores_the_limits_is_repaired_before_saving(
    app: Starlette, client: httpx.AsyncClient, servers: Servers, fake: FakeLLM
) -> None:
    """The 'model' answers every platform with the whole 1,500-word post, 40 hashtags and
    an overlong explicit thread part: every saved variation is within its limits."""
    long_text = blog_post(1500) + " " + " ".join(f"#tag{i}" for i in range(40))
    answer = "Title: The whole thing\n\n" + ("word " * 90) + "\n---\n" + long_text
    fake.openai.steps = [Stream([answer[:500], answer[500:]])]
    owner, content_id = await make_content(client, blog_post(1500))
    queued = await gql(client, TRANSFORM, {"id": content_id, "p": PLATFORMS}, headers=owner.headers)
    job_id = uid(queued["data"]["transformContent"]["job"]["id"])
    state = state_of(app)
    outcome = await job_runner.run(
        job_id,
        factory=state.session_factory,
        publisher=Collector(),
        enqueuer=None,
        lease_seconds=60,
        handlers=HANDLERS,
        settings=make_settings(
            servers, ai_provider="openai", openai_api_key="k", openai_base_url=fake.openai_url
        ),
    )
    assert outcome == "succeeded"
    assert {r["body"]["model"] for r in fake.openai.requests} == {"gpt-4o-mini"}
    async with state.session_factory() as session:
        rows = (
            await session.scalars(
                select(ContentVariation).where(ContentVariation.content_id == uid(content_id))
            )
        ).all()
        record = (
            await session.scalars(select(Generation).where(Generation.job_id == job_id))
        ).one()
    assert sorted(r.platform for r in rows) == sorted(PLATFORMS)
    for row in rows:
        evaluation = evaluate(Platform(row.platform), row.body)
        broken = [v.code for v in evaluation.violations if v.code in drafts.TEXT_RULES]
        assert broken == [], (row.platform, broken)
    x = next(r for r in rows if r.platform == "X")
    assert 1 < len(evaluate(Platform.X, x.body).parts) <= 25
    assert record.operation == "TRANSFORM" and record.provider == "openai"
    assert uuid.UUID(str(record.content_id)) == uid(content_id)
