"""A variation that breaks its platform's rules is asked again before the deterministic
repair, and token accounting of whole jobs: through the real OpenAI SDK against the fake
server, with a real worker attempt (job_runner.run)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from starlette.applications import Starlette

from app.ai import tokens
from app.jobs import runner as job_runner
from app.models import Content, ContentVariation, Generation, Job
from app.models.vocabulary import Platform
from app.platforms.rules import evaluate
from app.services.ai import drafts, generation
from app.services.ai.generation import GenerateRequest
from app.state import AppState
from tests.ai.fake_llm import FakeLLM, Stream, serve_fake_llm
from tests.ai.test_drafts import blog_post
from tests.ai.test_editing import TRANSFORM, make_content
from tests.ai.test_generation import Collector, owner_in_workspace
from tests.conftest import Servers, make_settings
from tests.helpers import Account, gql
from tests.teams import state_of, uid
from workers.tasks import HANDLERS

# An X thread whose first explicit part is far over 280 characters.
BROKEN_X = "Title: Too long\n\n" + ("word " * 120).strip() + "\n---\nThe short end."
FIXED_X = "Title: Fixed\n\nA first part that fits.\n---\nA second part that fits too."
CANCEL = "mutation($id: ID!) { cancelGeneration(jobId: $id) { job { status } errors { code } } }"


@pytest.fixture
async def fake() -> AsyncIterator[FakeLLM]:
    async with serve_fake_llm() as server:
        yield server


async def run_job(
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


async def start_transform(
    client: httpx.AsyncClient, platforms: list[str]
) -> tuple[Account, str, uuid.UUID]:
    """An item and its queued transform: the owner, the job's global ID and its UUID."""
    owner, content_id = await make_content(client, blog_post(300))
    queued = await gql(client, TRANSFORM, {"id": content_id, "p": platforms}, headers=owner.headers)
    job_gid = queued["data"]["transformContent"]["job"]["id"]
    return owner, job_gid, uid(job_gid)


async def saved(state: AppState, job_id: uuid.UUID) -> tuple[Job, Generation, list[Any]]:
    async with state.session_factory() as session:
        job = await session.get(Job, job_id)
        record = (
            await session.scalars(select(Generation).where(Generation.job_id == job_id))
        ).one()
        rows = (
            await session.scalars(
                select(ContentVariation).where(ContentVariation.content_id == record.content_id)
            )
        ).all()
    assert job is not None
    return job, record, list(rows)


def within_rules(row: ContentVariation) -> bool:
    evaluation = evaluate(
        Platform(row.platform), row.body, subject=row.subject, preheader=row.preheader
    )
    return not [v for v in evaluation.violations if v.code in drafts.TEXT_RULES]


async def test_an_answer_over_the_x_limit_is_asked_again_and_the_new_answer_saved(
    app: Starlette, client: httpx.AsyncClient, servers: Servers, fake: FakeLLM
) -> None:
    fake.openai.steps = [
        Stream([BROKEN_X[:200], BROKEN_X[200:]], 50, 200),
        Stream([FIXED_X[:30], FIXED_X[30:]], 300, 20),
    ]
    _, _, job_id = await start_transform(client, ["X"])
    state = state_of(app)
    outcome, collector = await run_job(state, servers, fake, job_id)
    assert outcome == "succeeded"
    job, record, [row] = await saved(state, job_id)
    assert row.body == "A first part that fits.\n---\nA second part that fits too."
    assert within_rules(row)
    # The second call was the repair prompt naming the violation, the limit and the text.
    assert len(fake.openai.requests) == 2
    asked = fake.openai.requests[1]["body"]["messages"][1]["content"]
    assert "TOO_LONG: Part 1 has" in asked and "the limit is 280" in asked
    assert ("word " * 120).strip() in asked
    # Streamed as its own stage, for the same variation; accounted like the others.
    stages = [
        (m["delta"]["stage"], m["delta"]["variation_index"])
        for m in collector.messages
        if "delta" in m
    ]
    assert stages == [("variation", 0)] * 2 + [("repair", 0)] * 2
    assert "repair:0" in [m.get("message") for m in collector.messages if "delta" not in m]
    assert [(c["stage"], c["variation_index"], c.get("prompt")) for c in record.calls] == [
        ("variation", 0, None),
        ("repair", 0, "repair_platform.v1"),
    ]
    assert (record.input_tokens, record.output_tokens, record.provider_calls) == (350, 220, 2)
    assert job.result is not None
    [reasked] = job.result["repairs"]["X"]
    assert reasked.startswith("RE-ASKED: TOO_LONG (Part 1 has")


@pytest.mark.parametrize("reasks", [0, 1, 2])
async def test_a_model_that_stays_over_the_limit_gets_a_bounded_number_of_asks_then_a_repair(
    app: Starlette, client: httpx.AsyncClient, servers: Servers, fake: FakeLLM, reasks: int
) -> None:
    fake.openai.steps = [Stream([BROKEN_X])]  # every answer is the same broken thread
    _, _, job_id = await start_transform(client, ["X", "BLUESKY"])
    state = state_of(app)
    outcome, _ = await run_job(state, servers, fake, job_id, ai_repair_reasks=reasks)
    assert outcome == "succeeded"
    assert len(fake.openai.requests) == 2 * (1 + reasks), "one call and `reasks` per variation"
    job, record, rows = await saved(state, job_id)
    assert sorted(r.platform for r in rows) == ["BLUESKY", "X"]
    assert all(within_rules(r) for r in rows), "the deterministic repair is the guarantee"
    assert [c["stage"] for c in record.calls] == (["variation"] + ["repair"] * reasks) * 2
    assert job.result is not None
    x_repairs = job.result["repairs"]["X"]
    assert [r for r in x_repairs if r.startswith("RE-ASKED")] == x_repairs[:reasks]
    assert len(x_repairs) == reasks + 1 and x_repairs[-1].startswith("TOO_LONG: re-split")
    assert job.result["repairs"]["BLUESKY"][-1].startswith("TOO_LONG: cut to 300")


async def test_cancelling_during_a_re_ask_stops_it_and_saves_nothing(
    app: Starlette, client: httpx.AsyncClient, servers: Servers, fake: FakeLLM
) -> None:
    gate = asyncio.Event()  # never set: the re-asked "model" stalls after its first chunk
    fake.openai.steps = [
        Stream([BROKEN_X]),
        Stream(["Title: Still", " thinking"], gate=gate, gate_after=1),
    ]
    owner, job_gid, job_id = await start_transform(client, ["X"])
    state = state_of(app)
    running = asyncio.create_task(
        run_job(state, servers, fake, job_id, ai_cancel_poll_seconds=0.05)
    )
    for _ in range(1000):
        if len(fake.openai.requests) == 2:
            break
        await asyncio.sleep(0.01)
    assert len(fake.openai.requests) == 2, "the re-ask started"
    cancelled = await gql(client, CANCEL, {"id": job_gid}, headers=owner.headers)
    assert cancelled["data"]["cancelGeneration"]["errors"] == [], cancelled
    outcome, _ = await asyncio.wait_for(running, 30)
    assert outcome in ("failed", "retrying", "lost-lease")
    for _ in range(1000):
        if fake.openai.abandoned:
            break
        await asyncio.sleep(0.01)
    assert fake.openai.abandoned == 1, "the re-ask's stream was closed"
    job, record, rows = await saved(state, job_id)
    assert job.status == "CANCELLED" and rows == [] and record.finished_at is None
    assert len(fake.openai.requests) == 2, "nothing asked after the cancel"


async def test_a_generated_email_without_a_subject_is_asked_again(
    app: Starlette, client: httpx.AsyncClient, servers: Servers, fake: FakeLLM
) -> None:
    fake.openai.steps = [
        Stream(["Title: Tea time\n\nGreen tea is calm."], 100, 10),
        Stream(["Title: Tea time\n\nDear reader, green tea is calm."], 120, 12),
        Stream(
            ["Title: Tea time\nSubject: Calm tea\nPreheader: Slow down\n\nDear reader."], 140, 14
        ),
    ]
    state = state_of(app)
    principal, workspace_id = await owner_in_workspace(client)
    job = await generation.start_generation(
        state,
        principal,
        GenerateRequest(workspace_id=workspace_id, brief="Tea", platforms=[Platform.EMAIL]),
    )
    outcome, _ = await run_job(state, servers, fake, job.id)
    assert outcome == "succeeded"
    done, record, [row] = await saved(state, job.id)
    assert (row.subject, row.preheader, row.body) == ("Calm tea", "Slow down", "Dear reader.")
    asked = fake.openai.requests[2]["body"]["messages"][1]["content"]
    assert "SUBJECT_REQUIRED" in asked and "Subject: <the subject line>" in asked
    assert [c["stage"] for c in record.calls] == ["draft", "variation", "repair"]
    assert (record.input_tokens, record.output_tokens) == (360, 36)
    assert not record.tokens_estimated
    assert done.result is not None and done.result["repairs"]["EMAIL"] == [
        "RE-ASKED: SUBJECT_REQUIRED (An email needs a subject.)"
    ]


async def test_a_job_against_a_server_without_usage_is_counted_with_tiktoken(
    app: Starlette, client: httpx.AsyncClient, servers: Servers, fake: FakeLLM
) -> None:
    answers = ["Title: Tea time\n\nGreen tea is calm. #tea", "Title: Tea\n\nCalm green tea."]
    fake.openai.steps = [
        Stream([answers[0][:10], answers[0][10:]], report_usage=False),
        Stream([answers[1]], report_usage=False),
    ]
    state = state_of(app)
    principal, workspace_id = await owner_in_workspace(client)
    job = await generation.start_generation(
        state,
        principal,
        GenerateRequest(workspace_id=workspace_id, brief="Tea", platforms=[Platform.BLUESKY]),
    )
    outcome, _ = await run_job(state, servers, fake, job.id)
    assert outcome == "succeeded"
    _, record, [row] = await saved(state, job.id)
    assert row.body == "Calm green tea."
    prompts = [
        [(m["role"], m["content"]) for m in request["body"]["messages"]]
        for request in fake.openai.requests
    ]
    assert record.tokens_estimated
    assert record.input_tokens == sum(tokens.COUNTER.count_messages(p) for p in prompts)
    assert record.output_tokens == sum(tokens.COUNTER.count(a) for a in answers)
    async with state.session_factory() as session:
        content = await session.get(Content, record.content_id)
    assert content is not None and content.title == "Tea time"
