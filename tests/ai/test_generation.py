"""The generation job: request -> worker -> saved draft, variations and accounting."""

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

from app.auth import Principal, WorkspaceAccess
from app.errors import ValidationFailed
from app.jobs import runner as job_runner
from app.models import Content, ContentVariation, ContentVersion, Generation, Job
from app.models.vocabulary import Platform
from app.permissions import Role
from app.platforms.rules import evaluate
from app.services.ai import drafts, generation
from app.services.ai.generation import GenerateRequest
from app.state import AppState
from tests.ai.fake_llm import FakeLLM, Status, Stream, serve_fake_llm
from tests.conftest import Servers, make_settings
from tests.helpers import create_workspace, register
from tests.teams import state_of, uid
from workers.tasks import HANDLERS


class Collector:
    """A publisher that keeps what the worker publishes on job channels, in order (the
    workspace channel's copies are tests/jobs/test_workspace_events.py's concern)."""

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []

    async def publish(self, channel: str, message: dict[str, Any]) -> None:
        if channel.startswith("job:"):
            self.messages.append(message)


async def owner_in_workspace(client: httpx.AsyncClient) -> tuple[Principal, uuid.UUID]:
    owner = await register(client)
    workspace_id = uid(await create_workspace(client, owner))
    principal = Principal(
        kind="user",
        user_id=uid(owner.user_id),
        label=owner.email,
        access={workspace_id: WorkspaceAccess(Role.OWNER, False)},
    )
    return principal, workspace_id


async def wait_final(state: AppState, job_id: uuid.UUID) -> Job:
    for _ in range(600):
        async with state.session_factory() as session:
            job = await session.get(Job, job_id)
        assert job is not None
        if job.status in ("SUCCEEDED", "FAILED"):
            return job
        await asyncio.sleep(0.05)
    raise AssertionError(f"job still {job.status}")


@pytest.fixture
async def fake() -> AsyncIterator[FakeLLM]:
    async with serve_fake_llm() as server:
        yield server


async def test_a_generation_job_saves_a_draft_with_variations_within_the_rules(
    app: Starlette, client: httpx.AsyncClient, worker: Worker
) -> None:
    state = state_of(app)
    principal, workspace_id = await owner_in_workspace(client)
    request = GenerateRequest(
        workspace_id=workspace_id,
        brief="Our oat latte launches Monday. It is creamy, vegan and made with love.",
        content_type="BLOG_POST",
        tone="friendly",
        length="LONG",
        keywords=["oat latte", "vegan"],
        variations=2,
        platforms=[Platform.X, Platform.LINKEDIN, Platform.INSTAGRAM, Platform.EMAIL],
    )
    job = await generation.start_generation(state, principal, request)
    assert job.kind == "generate_content" and job.status == "QUEUED"
    done = await wait_final(state, job.id)
    assert done.status == "SUCCEEDED", done.error
    assert done.result is not None
    content_id = uuid.UUID(done.result["content_id"])
    async with state.session_factory() as session:
        content = await session.get(Content, content_id)
        variations = (
            await session.scalars(
                select(ContentVariation).where(ContentVariation.content_id == content_id)
            )
        ).all()
        versions = (
            await session.scalars(
                select(ContentVersion).where(ContentVersion.content_id == content_id)
            )
        ).all()
        record = (
            await session.scalars(select(Generation).where(Generation.job_id == job.id))
        ).one()
    assert content is not None
    assert (content.status, content.content_type, content.workspace_id) == (
        "DRAFT",
        "BLOG_POST",
        workspace_id,
    )
    assert content.title.startswith("Our oat latte launches Monday")
    assert "## " in content.body, "a blog post has sections"
    assert [v.version for v in versions] == [1]
    assert sorted(v.platform for v in variations) == ["EMAIL", "INSTAGRAM", "LINKEDIN", "X"]
    for variation in variations:
        evaluation = evaluate(
            Platform(variation.platform),
            variation.body,
            subject=variation.subject,
            preheader=variation.preheader,
        )
        assert [v for v in evaluation.violations if v.code in drafts.TEXT_RULES] == []
    email = next(v for v in variations if v.platform == "EMAIL")
    assert email.subject
    assert (record.provider, record.model) == ("offline", "offline-draft-writer-v1")
    assert (record.prompt_template, record.prompt_version) == ("generate_blog_post", 1)
    assert record.input_tokens > 0 and record.output_tokens > 0 and record.tokens_estimated
    assert record.cost_usd == 0
    assert record.first_token_ms is not None and record.total_ms is not None
    assert record.total_ms >= record.first_token_ms
    assert record.attempts == 1 and record.error is None and record.partial is None
    assert record.content_id == content_id
    assert len(record.alternatives) == 1 and record.alternatives[0]["body"]
    assert [c["stage"] for c in record.calls] == ["draft", *["variation"] * 4, "alternative"]
    assert done.result["metrics"]["words"] > 50


async def test_an_identical_request_within_the_window_returns_the_same_job(
    app: Starlette, client: httpx.AsyncClient
) -> None:
    state = state_of(app)
    principal, workspace_id = await owner_in_workspace(client)
    request = GenerateRequest(workspace_id=workspace_id, brief="Tea tasting on Friday")
    first, second = await asyncio.gather(
        generation.start_generation(state, principal, request),
        generation.start_generation(state, principal, request),
    )
    assert first.id == second.id
    other = await generation.start_generation(
        state, principal, GenerateRequest(workspace_id=workspace_id, brief="Coffee instead")
    )
    assert other.id != first.id


async def test_bad_input_is_refused_before_anything_is_queued(
    app: Starlette, client: httpx.AsyncClient
) -> None:
    state = state_of(app)
    principal, workspace_id = await owner_in_workspace(client)
    with pytest.raises(ValidationFailed) as refused:
        await generation.start_generation(
            state,
            principal,
            GenerateRequest(
                workspace_id=workspace_id,
                brief=" ",
                content_type="POEM",
                length="HUGE",
                variations=9,
                audience_segment_id=uuid.uuid4(),
            ),
        )
    fields = {e.field for e in refused.value.errors}
    assert fields == {"brief", "contentType", "length", "variations"}
    with pytest.raises(ValidationFailed) as missing:
        await generation.start_generation(
            state,
            principal,
            GenerateRequest(workspace_id=workspace_id, brief="x", audience_segment_id=uuid.uuid4()),
        )
    assert [e.field for e in missing.value.errors] == ["audienceSegmentId"]
    async with state.session_factory() as session:
        assert (await session.scalars(select(Job))).all() == []


async def _run_with(
    state: AppState, servers: Servers, fake: FakeLLM, job_id: uuid.UUID, **overrides: Any
) -> tuple[str, Collector]:
    settings = make_settings(
        servers,
        ai_provider="openai",
        openai_api_key="sk-test",
        openai_base_url=fake.openai_url,
        ai_backoff_seconds=0,
        **overrides,
    )
    collector = Collector()
    outcome = await job_runner.run(
        job_id,
        factory=state.session_factory,
        publisher=collector,
        enqueuer=None,
        lease_seconds=60,
        handlers=HANDLERS,
        settings=settings,
    )
    return outcome, collector


async def test_openai_deltas_are_published_in_order_and_usage_is_recorded(
    app: Starlette, client: httpx.AsyncClient, servers: Servers, fake: FakeLLM
) -> None:
    state = state_of(app)
    principal, workspace_id = await owner_in_workspace(client)
    fake.openai.steps = [
        Stream(["Title: Tea time\n\n", "Green tea ", "is calm. ", "#tea"], 100, 20)
    ]
    job = await generation.start_generation(
        state,
        principal,
        GenerateRequest(workspace_id=workspace_id, brief="Tea", platforms=[Platform.BLUESKY]),
    )
    # One delta per chunk (no batching): each chunk's number and stage are checked.
    outcome, collector = await _run_with(state, servers, fake, job.id, ai_delta_batch_seconds=0)
    assert outcome == "succeeded"
    deltas = [m["delta"] for m in collector.messages if "delta" in m]
    assert [d["index"] for d in deltas] == list(range(1, 9)), "numbered per attempt, in order"
    assert [d["stage"] for d in deltas] == ["draft"] * 4 + ["variation"] * 4
    assert "".join(d["text"] for d in deltas[:4]) == "Title: Tea time\n\nGreen tea is calm. #tea"
    states = [m for m in collector.messages if "delta" not in m]
    sequences = [m["seq"] for m in states]
    assert sequences == sorted(set(sequences))
    assert [m["message"] for m in states if m["status"] == "RUNNING"][1:] == [
        "draft",
        "variation:0",
        "saving",
    ]
    assert states[-1]["status"] == "SUCCEEDED"
    # Deltas carry the seq of the last state event: job-event followers skip them.
    assert all(m["seq"] <= sequences[-1] for m in collector.messages)
    async with state.session_factory() as session:
        record = (
            await session.scalars(select(Generation).where(Generation.job_id == job.id))
        ).one()
        content = await session.get(Content, uuid.UUID(states[-1]["result"]["content_id"]))
    assert content is not None and content.title == "Tea time"
    assert content.body == "Green tea is calm. #tea"
    assert (record.provider, record.model) == ("openai", "gpt-4o-mini")
    assert (record.input_tokens, record.output_tokens) == (200, 40)
    assert not record.tokens_estimated
    assert record.cost_usd is not None and record.cost_usd > 0
    assert record.provider_calls == 2
    assert fake.openai.requests[1]["body"]["messages"][1]["content"].count("BLUESKY") >= 1


async def test_a_refused_request_fails_the_job_for_good_with_the_reason(
    app: Starlette, client: httpx.AsyncClient, servers: Servers, fake: FakeLLM
) -> None:
    state = state_of(app)
    principal, workspace_id = await owner_in_workspace(client)
    fake.openai.steps = [Status(400, "bad request")]
    job = await generation.start_generation(
        state, principal, GenerateRequest(workspace_id=workspace_id, brief="Tea")
    )
    outcome, _ = await _run_with(state, servers, fake, job.id)
    assert outcome == "failed"
    async with state.session_factory() as session:
        row = await session.get(Job, job.id)
        record = (
            await session.scalars(select(Generation).where(Generation.job_id == job.id))
        ).one()
    assert row is not None and row.status == "FAILED"
    assert "refused" in (row.error or "") and "HTTP 400" in (row.error or "")
    assert record.error and "HTTP 400" in record.error and record.content_id is None


async def test_a_provider_outage_leaves_the_job_retriable(
    app: Starlette, client: httpx.AsyncClient, servers: Servers, fake: FakeLLM
) -> None:
    state = state_of(app)
    principal, workspace_id = await owner_in_workspace(client)
    fake.openai.steps = [Status(503)]
    job = await generation.start_generation(
        state, principal, GenerateRequest(workspace_id=workspace_id, brief="Tea")
    )
    outcome, _ = await _run_with(state, servers, fake, job.id, ai_max_attempts=2)
    assert outcome == "retrying"
    assert len(fake.openai.requests) == 2, "bounded provider retries inside the attempt"
    async with state.session_factory() as session:
        row = await session.get(Job, job.id)
    assert row is not None and row.status == "QUEUED" and "503" in (row.error or "")


async def test_cancel_stops_the_provider_stream_and_saves_nothing(
    app: Starlette, client: httpx.AsyncClient, servers: Servers, fake: FakeLLM
) -> None:
    state = state_of(app)
    principal, workspace_id = await owner_in_workspace(client)
    gate = asyncio.Event()  # never set: the "model" stalls after its first chunk
    fake.openai.steps = [Stream(["Title: Slow\n\n", "never", " sent"], gate=gate, gate_after=1)]
    job = await generation.start_generation(
        state, principal, GenerateRequest(workspace_id=workspace_id, brief="Slow tea")
    )
    running = asyncio.create_task(
        _run_with(state, servers, fake, job.id, ai_cancel_poll_seconds=0.05)
    )
    for _ in range(400):
        if fake.openai.requests:
            break
        await asyncio.sleep(0.01)
    cancelled = await generation.cancel_generation(state, principal, job.id)
    assert cancelled.status == "CANCELLED"
    outcome, collector = await asyncio.wait_for(running, 30)
    # The runner finds the row no longer its own (cancelled): it records nothing more.
    assert outcome in ("failed", "retrying", "lost-lease")
    streamed = [m["delta"]["text"] for m in collector.messages if "delta" in m]
    assert streamed in ([], ["Title: Slow\n\n"]), "nothing after the stall"
    for _ in range(400):
        if fake.openai.abandoned:
            break
        await asyncio.sleep(0.01)
    assert fake.openai.abandoned == 1, "the provider's stream was closed"
    async with state.session_factory() as session:
        row = await session.get(Job, job.id)
        contents = (await session.scalars(select(Content))).all()
    assert row is not None and row.status == "CANCELLED" and row.error == "Cancelled on request."
    assert contents == []
    with pytest.raises(ValidationFailed) as again:
        await generation.cancel_generation(state, principal, job.id)
    assert again.value.errors[0].code == "INVALID_STATE"


async def test_a_workspace_over_its_monthly_tokens_is_refused_before_any_job(
    app: Starlette, client: httpx.AsyncClient
) -> None:
    from datetime import UTC, datetime, timedelta

    from sqlalchemy import func, update

    from app.models import Workspace

    state = state_of(app)
    principal, workspace_id = await owner_in_workspace(client)
    allowance = state.settings.ai_monthly_tokens_free
    first = await generation.start_generation(
        state, principal, GenerateRequest(workspace_id=workspace_id, brief="First")
    )
    async with state.session_factory() as session, session.begin():
        # Last month's usage does not count.
        await session.execute(
            update(Generation)
            .where(Generation.job_id == first.id)
            .values(input_tokens=allowance, created_at=datetime.now(UTC) - timedelta(days=40))
        )
    second = await generation.start_generation(
        state, principal, GenerateRequest(workspace_id=workspace_id, brief="Second")
    )
    async with state.session_factory() as session, session.begin():
        await session.execute(
            update(Generation)
            .where(Generation.job_id == second.id)
            .values(input_tokens=allowance - 10, output_tokens=10)
        )
    with pytest.raises(ValidationFailed) as refused:
        await generation.start_generation(
            state, principal, GenerateRequest(workspace_id=workspace_id, brief="Third")
        )
    [error] = refused.value.errors
    assert error.code == "QUOTA_EXCEEDED" and f"{allowance:,}" in error.message
    async with state.session_factory() as session:
        assert (
            await session.scalar(
                select(func.count()).select_from(Job).where(Job.kind == "generate_content")
            )
            == 2
        )
    # A bigger plan has a bigger allowance.
    async with state.session_factory() as session, session.begin():
        await session.execute(
            update(Workspace).where(Workspace.id == workspace_id).values(plan="pro")
        )
    third = await generation.start_generation(
        state, principal, GenerateRequest(workspace_id=workspace_id, brief="Third")
    )
    assert third.id not in (first.id, second.id)
