"""Every generated draft shows its predicted score: a draft written through the fake LLM
server (its item and stored versions, per-platform variations, alternatives, A/B variants
and their platform texts) answers `predictedEngagement` equal to predictEngagement's for the same input with
no posting time; the generation stream's final event carries it; statements do not grow
with the number of variations; no time given means the model's neutral time."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import httpx
import numpy as np
import pytest
from starlette.applications import Starlette

from app.services.analytics import engagement_model, engagement_scores, prediction
from app.services.analytics.prediction import Post
from app.state import AppState
from tests.ai.derived_helpers import run_job
from tests.ai.fake_llm import FakeLLM, Stream, serve_fake_llm
from tests.ai.test_generation_api import websocket
from tests.analytics.test_engagement_model import seed_history
from tests.analytics.test_prediction import synthetic
from tests.api.test_query_counts import count_statements
from tests.conftest import Servers
from tests.helpers import Account, create_workspace, gql, register
from tests.teams import uid

SCORE = (
    "score expectedEngagementRate confidence basis modelVersion explanation factors { name impact }"
)
GENERATE = """
mutation($input: GenerateContentInput!) { generateContent(input: $input) { job { id } errors { code } } }
"""
DRAFT = f"""
query($job: ID!) {{ generationJob(id: $job) {{
  content {{
    id body contentType predictedEngagement {{ {SCORE} }}
    versions {{ version predictedEngagement(platform: X) {{ {SCORE} }} }}
    variations {{ platform body predictedEngagement {{ {SCORE} }} }}
  }}
  alternatives {{ body predictedEngagement(platform: LINKEDIN) {{ {SCORE} }} }}
}} }}
"""
PREDICT = f"""
query($input: PredictEngagementInput!) {{ predictEngagement(input: $input) {{ {SCORE} }} }}
"""
PROGRESS = f"""
subscription($id: ID!) {{ generationProgress(jobId: $id) {{
  status content {{ predictedEngagement {{ {SCORE} }} variations {{ platform predictedEngagement {{ score }} }} }}
}} }}
"""
VARIANTS = """
mutation($id: ID!) { generateVariants(contentId: $id, count: 1) { job { id } errors { code } } }
"""
VARIANT_SCORES = f"""
query($id: ID!) {{ content(id: $id) {{ contentType variants {{
  body predictedEngagement {{ {SCORE} }}
  platformTexts {{ platform body predictedEngagement {{ {SCORE} }} }}
}} }} }}
"""
CREATE = """
mutation($i: CreateContentInput!) { createContent(input: $i) { content { id } errors { code } } }
"""
ADD_VARIATION = """
mutation($id: ID!, $p: Platform!, $b: String!) {
  createVariation(contentId: $id, platform: $p, input: {body: $b}) { variation { id } errors { code } }
}
"""
COUNTED = """
query($id: ID!) { content(id: $id) {
  predictedEngagement { score } variations { platform predictedEngagement { score factors { name } } }
} }
"""


@pytest.fixture
async def fake() -> AsyncIterator[FakeLLM]:
    async with serve_fake_llm() as server:
        yield server


@pytest.fixture(autouse=True)
def fresh_cache() -> None:
    engagement_scores._models.clear()


async def trained_workspace(client: httpx.AsyncClient, state: AppState) -> tuple[Account, str]:
    """A workspace with a model of its own (a call to action helps)."""
    owner = await register(client)
    ws = await create_workspace(client, owner)
    await seed_history(state, uid(ws), 80)
    await engagement_model.train_and_store(
        state.session_factory, uid(ws), state.keys.signing_secret
    )
    return owner, ws


async def predicted(
    client: httpx.AsyncClient,
    owner: Account,
    ws: str,
    text: str,
    content_type: str,
    platform: str | None,
) -> dict[str, Any]:
    """predictEngagement for the same input, without a posting time."""
    given: dict[str, Any] = {"workspaceId": ws, "text": text, "contentType": content_type}
    if platform is not None:
        given["platform"] = platform
    body = await gql(client, PREDICT, {"input": given}, headers=owner.headers)
    assert "errors" not in body, body
    answer: dict[str, Any] = body["data"]["predictEngagement"]
    return answer


async def test_a_generated_draft_shows_the_score_predict_engagement_gives(
    client: httpx.AsyncClient,
    state: AppState,
    servers: Servers,
    fake: FakeLLM,
    analytics_app: Starlette,
) -> None:
    owner, ws = await trained_workspace(client, state)
    fake.openai.steps = [
        Stream(["Title: Spring guide\n\n", "Our spring guide is out. Sign up today!"]),
        Stream(["Spring guide out now. Sign up today! #garden"]),
        Stream(["Our spring pruning guide is here. It covers the basics."]),
        Stream(["Title: Pruning basics\n\n", "Pruning basics for spring, step by step."]),
    ]
    body = await gql(
        client,
        GENERATE,
        {
            "input": {
                "workspaceId": ws,
                "brief": "Spring garden guide",
                "platforms": ["X", "LINKEDIN"],
                "variations": 2,
            }
        },
        headers=owner.headers,
    )
    job_id = body["data"]["generateContent"]["job"]["id"]
    outcome, _ = await run_job(state, servers, fake, uid(job_id))
    assert outcome == "succeeded"

    body = await gql(client, DRAFT, {"job": job_id}, headers=owner.headers)
    assert "errors" not in body, body
    record = body["data"]["generationJob"]
    content = record["content"]
    assert content["body"] == "Our spring guide is out. Sign up today!"
    item_score = content["predictedEngagement"]
    assert item_score["basis"] == "WORKSPACE_MODEL" and item_score["modelVersion"] == 1
    assert item_score["score"] is not None and 0 <= item_score["score"] <= 100
    # The same as predictEngagement for the same text, no platform and no time.
    assert item_score == await predicted(client, owner, ws, content["body"], "SOCIAL_POST", None)
    names = {f["name"] for f in item_score["factors"]}
    assert prediction.POSTING_TIME not in names and prediction.PLATFORM not in names
    assert "No posting time given" in item_score["explanation"]
    # Its stored version 1 (refineContent adds more) is the same text.
    [version] = content["versions"]
    assert version["predictedEngagement"] == await predicted(
        client, owner, ws, content["body"], "SOCIAL_POST", "X"
    )
    variations = {v["platform"]: v for v in content["variations"]}
    assert set(variations) == {"X", "LINKEDIN"}
    for platform, variation in variations.items():
        expected = await predicted(client, owner, ws, variation["body"], "SOCIAL_POST", platform)
        assert variation["predictedEngagement"] == expected
    # The variation with a call to action scores above the one without (the planted signal).
    with_cta = variations["X"]["predictedEngagement"]
    without = variations["LINKEDIN"]["predictedEngagement"]
    assert with_cta["expectedEngagementRate"] > without["expectedEngagementRate"]
    [alternative] = record["alternatives"]
    assert alternative["predictedEngagement"] == await predicted(
        client, owner, ws, alternative["body"], "SOCIAL_POST", "LINKEDIN"
    )

    # The stream's final event (here a late subscriber's catch-up) carries the scores.
    async with websocket(analytics_app, owner) as gws:
        events = await gws.collect(await gws.subscribe(PROGRESS, {"id": job_id}))
    final = events[-1]["data"]["generationProgress"]
    assert final["status"] == "SUCCEEDED"
    assert final["content"]["predictedEngagement"] == item_score
    assert {
        v["platform"]: v["predictedEngagement"]["score"] for v in final["content"]["variations"]
    } == {p: v["predictedEngagement"]["score"] for p, v in variations.items()}


async def test_ab_variants_and_their_platform_texts_show_their_scores(
    client: httpx.AsyncClient, state: AppState, servers: Servers, fake: FakeLLM
) -> None:
    owner, ws = await trained_workspace(client, state)
    made = await gql(
        client,
        CREATE,
        {"i": {"workspaceId": ws, "title": "Guide", "body": "Our spring guide is out."}},
        headers=owner.headers,
    )
    content_id = made["data"]["createContent"]["content"]["id"]
    added = await gql(
        client,
        ADD_VARIATION,
        {"id": content_id, "p": "X", "b": "Our spring guide is out."},
        headers=owner.headers,
    )
    assert added["data"]["createVariation"]["errors"] == [], added
    fake.openai.steps = [
        Stream(["Angle: a direct ask\nTitle: Get the guide\n\n", "Get the guide. Sign up today!"])
    ]
    queued = await gql(client, VARIANTS, {"id": content_id}, headers=owner.headers)
    outcome, _ = await run_job(
        state, servers, fake, uid(queued["data"]["generateVariants"]["job"]["id"])
    )
    assert outcome == "succeeded"
    body = await gql(client, VARIANT_SCORES, {"id": content_id}, headers=owner.headers)
    assert "errors" not in body, body
    [variant] = body["data"]["content"]["variants"]
    assert variant["predictedEngagement"]["basis"] == "WORKSPACE_MODEL"
    assert variant["predictedEngagement"] == await predicted(
        client, owner, ws, variant["body"], "SOCIAL_POST", None
    )
    [text] = variant["platformTexts"]
    assert text["platform"] == "X"
    assert text["predictedEngagement"] == await predicted(
        client, owner, ws, text["body"], "SOCIAL_POST", "X"
    )


async def test_statements_do_not_grow_with_the_variations(
    client: httpx.AsyncClient, state: AppState, analytics_app: Starlette
) -> None:
    owner, ws = await trained_workspace(client, state)
    items = {}
    for n, platforms in ((1, ["X"]), (5, ["X", "LINKEDIN", "BLUESKY", "MASTODON", "THREADS"])):
        made = await gql(
            client,
            CREATE,
            {"i": {"workspaceId": ws, "title": f"{n}", "body": "Spring guide. Sign up today!"}},
            headers=owner.headers,
        )
        items[n] = made["data"]["createContent"]["content"]["id"]
        for i, platform in enumerate(platforms):
            text = f"Spring guide, part {i}." + (" Sign up today!" if i % 2 else "")
            await gql(
                client,
                ADD_VARIATION,
                {"id": items[n], "p": platform, "b": text},
                headers=owner.headers,
            )
    counts = {}
    for n, content_id in items.items():
        # A read just before loads the newest fitted model into this process's cache (a
        # version trained in the background meanwhile would cost one blob read).
        await gql(client, COUNTED, {"id": content_id}, headers=owner.headers)
        with count_statements(analytics_app) as statements:
            body = await gql(client, COUNTED, {"id": content_id}, headers=owner.headers)
        assert "errors" not in body, body
        variations = body["data"]["content"]["variations"]
        assert len(variations) == n
        assert all(v["predictedEngagement"]["score"] is not None for v in variations)
        counts[n] = len(statements)
    assert counts[1] == counts[5], counts


def test_without_a_time_the_prediction_is_the_average_over_past_posts_times() -> None:
    trained = prediction.train(synthetic(600, 3))  # mornings (8-11 h) get more engagement
    post = Post(
        words=80,
        flesch_reading_ease=60.0,
        sentiment=0.2,
        questions=0,
        has_call_to_action=True,
        hashtag_count=2,
        has_media=False,
        platform="X",
        content_type="SOCIAL_POST",
        at=datetime(2026, 3, 4, 9, tzinfo=UTC),
    )
    neutral = prediction.predict(trained, post, unknown=[prediction.POSTING_TIME])
    # By hand: the post with each background post's time columns, predicted and averaged.
    rows = np.repeat(prediction.matrix([post]), len(trained.background), axis=0)
    time_columns = [
        i
        for i, c in enumerate(prediction.COLUMNS)
        if c.startswith(("hour_", "weekday_", "weekend"))
    ]
    rows[:, time_columns] = trained.background[:, time_columns]
    expected = float(np.mean(trained.model.predict(rows)))
    assert neutral.expected_engagement_rate == pytest.approx(max(0.0, expected))
    assert prediction.POSTING_TIME not in {f.name for f in neutral.factors}
    morning = prediction.predict(trained, post)
    night = prediction.predict(trained, replace(post, at=datetime(2026, 3, 4, 22, tzinfo=UTC)))
    assert (
        night.expected_engagement_rate
        < neutral.expected_engagement_rate
        < morning.expected_engagement_rate
    )
    # The time given to a neutral prediction is ignored.
    assert (
        prediction.predict(
            trained,
            replace(post, at=datetime(2026, 3, 4, 22, tzinfo=UTC)),
            unknown=[prediction.POSTING_TIME],
        )
        == neutral
    )
