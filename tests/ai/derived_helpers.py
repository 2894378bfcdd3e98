"""Shared by the personalisation and variant tests: an item in a workspace with a brand
voice and audience segments, reading it back, and running a job against the fake LLM."""

from __future__ import annotations

import base64
import uuid
from dataclasses import dataclass
from typing import Any

import httpx
from sqlalchemy import func, select, update

from app.jobs import runner as job_runner
from app.models import Job
from app.state import AppState
from tests.ai.fake_llm import FakeLLM
from tests.ai.test_generation import Collector
from tests.conftest import Servers, make_settings
from tests.helpers import Account, gql, register
from workers.tasks import HANDLERS

WORKSPACE = """
mutation($i: CreateWorkspaceInput!) { createWorkspace(input: $i) { workspace { id } errors { code } } }
"""
CREATE = """
mutation($i: CreateContentInput!) {
  createContent(input: $i) { content { id version } errors { code } }
}
"""
SEGMENT = """
mutation($ws: ID!, $n: String!, $d: String!, $a: SegmentAttributesInput) {
  createAudienceSegment(workspaceId: $ws, name: $n, description: $d, attributes: $a) {
    segment { id } errors { code }
  }
}
"""
VERSIONS = """
query($id: ID!) {
  content(id: $id) {
    version body
    personalizations {
      id title body basedOnVersion createdAt updatedAt metrics
      changes { change reason }
      segment { id name }
    }
  }
}
"""
BODY = (
    "Our oat latte launches Monday. It is creamy, vegan and cheap. Baristas spent a year on "
    "the recipe.\n\nTry it today and tell us what you think.\n\n#OatLatte"
)
SEGMENTS = [
    (
        "Students",
        "Undergraduates on a tight budget",
        {"experienceLevel": "beginner", "interests": ["budget", "study breaks"]},
    ),
    (
        "Cafe owners",
        "Independent cafe owners choosing suppliers",
        {"industry": "hospitality", "experienceLevel": "expert", "interests": ["margins"]},
    ),
]


@dataclass
class Item:
    owner: Account
    workspace_id: str
    content_id: str
    segment_ids: list[str]


async def make_item(
    client: httpx.AsyncClient,
    *,
    body: str = BODY,
    content_type: str = "SOCIAL_POST",
    segments: list[tuple[str, str, dict[str, Any]]] = SEGMENTS,
    owner: Account | None = None,
) -> Item:
    """A workspace with a brand voice, an item in it, and audience segments."""
    owner = owner or await register(client)
    voice = {"tone": "warm", "bannedWords": ["cheap"], "keywords": ["oat milk"]}
    made = await gql(
        client, WORKSPACE, {"i": {"name": "Cafe", "brandVoice": voice}}, headers=owner.headers
    )
    workspace_id = made["data"]["createWorkspace"]["workspace"]["id"]
    created = await gql(
        client,
        CREATE,
        {
            "i": {
                "workspaceId": workspace_id,
                "title": "Oat latte launch",
                "body": body,
                "contentType": content_type,
                "tags": ["vegan"],
            }
        },
        headers=owner.headers,
    )
    content_id = created["data"]["createContent"]["content"]["id"]
    segment_ids = []
    for name, description, attributes in segments:
        made = await gql(
            client,
            SEGMENT,
            {"ws": workspace_id, "n": name, "d": description, "a": attributes},
            headers=owner.headers,
        )
        segment_ids.append(made["data"]["createAudienceSegment"]["segment"]["id"])
    return Item(owner, workspace_id, content_id, segment_ids)


async def versions(client: httpx.AsyncClient, item: Item) -> dict[str, Any]:
    body = await gql(client, VERSIONS, {"id": item.content_id}, headers=item.owner.headers)
    content: dict[str, Any] = body["data"]["content"]
    return content


async def jobs_of(state: AppState, kind: str) -> int:
    async with state.session_factory() as session:
        return int(
            await session.scalar(select(func.count()).select_from(Job).where(Job.kind == kind)) or 0
        )


def gid(type_name: str, value: uuid.UUID) -> str:

    return base64.b64encode(f"{type_name}:{value}".encode()).decode()


async def run_job(
    state: AppState, servers: Servers, fake: FakeLLM, job_id: uuid.UUID
) -> tuple[str, Collector]:
    collector = Collector()
    outcome = await job_runner.run(
        job_id,
        factory=state.session_factory,
        publisher=collector,
        enqueuer=None,
        lease_seconds=60,
        handlers=HANDLERS,
        settings=make_settings(
            servers,
            ai_provider="openai",
            openai_api_key="sk-test",
            openai_base_url=fake.openai_url,
            ai_backoff_seconds=0,
        ),
    )
    return outcome, collector


async def requeue(state: AppState, job_id: uuid.UUID) -> None:
    """As if the worker died after saving and before recording success: the job runs again."""
    async with state.session_factory() as session, session.begin():
        await session.execute(
            update(Job)
            .where(Job.id == job_id)
            .values(status="QUEUED", locked_until=None, result=None, finished_at=None)
        )
