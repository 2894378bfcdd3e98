"""Engagement models end to end on real Postgres: trained from published targets' latest
snapshots, stored as versions with their held-out quality, answering predictEngagement
from the workspace's model, else the instance prior, else nothing; a tampered model is
never loaded."""

from __future__ import annotations

import random
import uuid
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update

from app.jobs.runner import PermanentJobError
from app.models import (
    EngagementModel,
    Job,
)
from app.services.analytics import engagement_model, engagement_scores
from app.state import AppState
from tests.analytics.conftest import T0
from tests.analytics.history import Published, seed_published
from tests.helpers import Account, create_workspace, gql, register
from tests.teams import uid

PREDICT = """
query($ws: ID!, $text: String!) { predictEngagement(input: {workspaceId: $ws, text: $text,
  platform: X, contentType: SOCIAL_POST, scheduledAt: "2026-12-09T09:30:00",
  timezone: "Europe/Berlin"}) {
  score expectedEngagementRate confidence basis modelVersion explanation factors { name impact }
} }
"""
MODELS = "query($ws: ID!) { engagementModels(workspaceId: $ws) { version trainSize testSize mae baselineMae spearman algorithm } }"
TRAIN = "mutation($ws: ID!) { trainEngagementModel(workspaceId: $ws) { job { id kind status } errors { code } } }"
WITH_CTA = "Our spring guide is out. Sign up today and learn more!"
WITHOUT = "Our spring guide is out. It covers the basics of pruning."


async def seed_history(state: AppState, workspace_id: uuid.UUID, n: int, seed: int = 1) -> None:
    """`n` published X posts whose engagement rate depends on a call to action (+2 points)
    plus noise, out of 1,000 impressions."""
    rng = random.Random(seed)
    posts = []
    for _ in range(n):
        cta = rng.random() < 0.5
        rate = 0.01 + 0.02 * cta + rng.gauss(0, 0.002)
        posts.append(
            Published(
                at=T0 - timedelta(hours=rng.randrange(24 * 200)),
                engaged=max(0, round(rate * 1000)),
                metrics={
                    "words": rng.randrange(10, 60),
                    "flesch_reading_ease": rng.uniform(40, 80),
                    "sentiment": rng.uniform(-0.5, 0.8),
                    "questions": 0,
                    "has_call_to_action": cta,
                    "hashtag_count": rng.randrange(3),
                },
            )
        )
    await seed_published(state, workspace_id, posts)


async def owner_workspace(client: httpx.AsyncClient) -> tuple[Account, uuid.UUID, str]:
    owner = await register(client)
    gid = await create_workspace(client, owner)
    return owner, uid(gid), gid


async def predict(client: httpx.AsyncClient, owner: Account, ws: str, text: str) -> Any:
    body = await gql(client, PREDICT, {"ws": ws, "text": text}, headers=owner.headers)
    assert "errors" not in body, body
    return body["data"]["predictEngagement"]


@pytest.fixture(autouse=True)
def fresh_cache() -> None:
    engagement_scores._models.clear()


async def test_trained_model_is_stored_listed_and_answers_from_the_signal(
    client: httpx.AsyncClient, state: AppState
) -> None:
    owner, workspace_id, ws = await owner_workspace(client)
    await seed_history(state, workspace_id, 200)

    before = await predict(client, owner, ws, WITH_CTA)
    assert before["basis"] in ("NONE", "INSTANCE_MODEL")

    row = await engagement_model.train_and_store(
        state.session_factory, workspace_id, state.keys.signing_secret
    )
    assert (row.version, row.n_train + row.n_test) == (1, 200)
    print(f"held-out MAE {row.mae:.5f} vs constant baseline {row.baseline_mae:.5f}")
    assert row.mae < 0.7 * row.baseline_mae

    listed = await gql(client, MODELS, {"ws": ws}, headers=owner.headers)
    (version,) = listed["data"]["engagementModels"]
    assert version["version"] == 1 and version["trainSize"] == 160 and version["testSize"] == 40
    assert version["mae"] < version["baselineMae"]

    good, plain = (
        await predict(client, owner, ws, WITH_CTA),
        await predict(client, owner, ws, WITHOUT),
    )
    assert good["basis"] == plain["basis"] == "WORKSPACE_MODEL"
    assert good["modelVersion"] == 1
    assert good["expectedEngagementRate"] > plain["expectedEngagementRate"] + 0.01
    assert good["score"] > plain["score"]
    assert good["factors"][0]["name"] == "call to action" and good["factors"][0]["impact"] > 0
    assert plain["factors"][0]["name"] == "call to action" and plain["factors"][0]["impact"] < 0
    assert 0 < good["confidence"] <= 1

    # A second training is version 2; the newest answers.
    await engagement_model.train_and_store(
        state.session_factory, workspace_id, state.keys.signing_secret
    )
    assert (await predict(client, owner, ws, WITH_CTA))["modelVersion"] == 2


async def test_cold_start_uses_the_instance_prior_and_says_so(
    client: httpx.AsyncClient, state: AppState
) -> None:
    owner, _workspace_id, ws = await owner_workspace(client)
    async with state.session_factory() as session, session.begin():
        await session.execute(
            EngagementModel.__table__.delete().where(EngagementModel.workspace_id.is_(None))
        )
    none = await predict(client, owner, ws, WITH_CTA)
    assert none["basis"] == "NONE" and none["score"] is None and none["confidence"] == 0
    assert "40 published posts" in none["explanation"]

    _, elsewhere, _ = await owner_workspace(client)
    await seed_history(state, elsewhere, 120, seed=5)
    await engagement_model.train_and_store(state.session_factory, None, state.keys.signing_secret)
    prior = await predict(client, owner, ws, WITH_CTA)
    assert prior["basis"] == "INSTANCE_MODEL" and prior["score"] is not None
    assert "instance-wide" in prior["explanation"]


async def test_a_tampered_model_is_never_loaded(client: httpx.AsyncClient, state: AppState) -> None:
    owner, workspace_id, ws = await owner_workspace(client)
    await seed_history(state, workspace_id, 80, seed=3)
    row = await engagement_model.train_and_store(
        state.session_factory, workspace_id, state.keys.signing_secret
    )
    async with state.session_factory() as session, session.begin():
        await session.execute(
            update(EngagementModel)
            .where(EngagementModel.id == row.id)
            .values(blob=row.blob[:-1] + bytes([row.blob[-1] ^ 1]))
        )
    answer = await predict(client, owner, ws, WITH_CTA)
    assert answer["basis"] != "WORKSPACE_MODEL"


async def test_thin_history_refuses_to_train_and_stores_nothing(
    client: httpx.AsyncClient, state: AppState
) -> None:
    _owner, workspace_id, _ws = await owner_workspace(client)
    await seed_history(state, workspace_id, 10)
    with pytest.raises(PermanentJobError, match="at least 40 published posts"):
        await engagement_model.train_and_store(
            state.session_factory, workspace_id, state.keys.signing_secret
        )
    async with state.session_factory() as session:
        stored = await session.scalar(
            select(EngagementModel.id).where(EngagementModel.workspace_id == workspace_id)
        )
    assert stored is None


async def test_train_mutation_queues_a_job_and_bad_input_is_refused(
    client: httpx.AsyncClient, state: AppState
) -> None:
    owner, workspace_id, ws = await owner_workspace(client)
    body = await gql(client, TRAIN, {"ws": ws}, headers=owner.headers)
    job = body["data"]["trainEngagementModel"]["job"]
    assert job["kind"] == engagement_model.TRAIN_KIND and job["status"] == "QUEUED"
    async with state.session_factory() as session:
        row = await session.scalar(select(Job).where(Job.workspace_id == workspace_id))
    assert row is not None and row.payload == {"workspace_id": str(workspace_id)}

    for text, message in (("   ", "must not be empty"), ("x" * 100_001, "at most")):
        bad = await gql(client, PREDICT, {"ws": ws, "text": text}, headers=owner.headers)
        assert bad["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
        assert message in bad["errors"][0]["message"]
