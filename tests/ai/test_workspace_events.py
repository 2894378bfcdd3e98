"""workspaceEvents over graphql-transport-ws: a dashboard follows a generation run by a real
arq worker (state changes, no text), a member of another workspace is refused and sees
nothing of it, and a dashboard that reconnects gets a correct snapshot."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from arq.worker import Worker
from starlette.applications import Starlette

from app.jobs import store as jobs
from tests.ai.test_generation_api import GENERATE, RECORD, websocket
from tests.helpers import GraphQLWebSocket, create_workspace, gql, ping, register
from tests.teams import state_of, uid

EVENTS = """
subscription($ws: ID!, $since: DateTime) {
  workspaceEvents(workspaceId: $ws, since: $since) {
    snapshot truncated
    jobs {
      jobId kind status progress attempt sequence message error contentId updatedAt catchUp
    }
  }
}
"""


async def _next(gws: GraphQLWebSocket, op: str) -> dict[str, Any]:
    while True:
        message = await gws.receive(timeout=30)
        if message.get("id") != op:
            continue
        assert message["type"] == "next", message
        assert "errors" not in message["payload"], message
        event: dict[str, Any] = message["payload"]["data"]["workspaceEvents"]
        return event


async def _until_final(
    gws: GraphQLWebSocket, op: str, job_id: str, seen: list[dict[str, Any]]
) -> dict[str, Any]:
    while True:
        event = await _next(gws, op)
        assert not event["snapshot"]
        seen += event["jobs"]
        for job in event["jobs"]:
            if job["jobId"] == job_id and job["status"] in ("SUCCEEDED", "FAILED"):
                return job


async def test_a_dashboard_follows_a_generation_and_an_outsider_sees_nothing(
    app: Starlette, client: httpx.AsyncClient, worker: Worker
) -> None:
    owner, stranger = await register(client), await register(client)
    workspace = await create_workspace(client, owner)
    elsewhere = await create_workspace(client, stranger, name="Elsewhere")
    async with websocket(app, owner) as dashboard, websocket(app, stranger) as outsider:
        refused = await outsider.collect(await outsider.subscribe(EVENTS, {"ws": workspace}))
        assert refused[-1]["errors"][0]["extensions"]["code"] == "FORBIDDEN"
        own = await outsider.subscribe(EVENTS, {"ws": elsewhere})
        assert await _next(outsider, own) == {"snapshot": True, "truncated": False, "jobs": []}

        op = await dashboard.subscribe(EVENTS, {"ws": workspace})
        assert await _next(dashboard, op) == {"snapshot": True, "truncated": False, "jobs": []}
        body = await gql(
            client,
            GENERATE,
            {
                "input": {
                    "workspaceId": workspace,
                    "brief": "Our oat latte launches Monday.",
                    "platforms": ["X", "LINKEDIN"],
                }
            },
            headers=owner.headers,
        )
        job_id = body["data"]["generateContent"]["job"]["id"]
        seen: list[dict[str, Any]] = []
        final = await _until_final(dashboard, op, job_id, seen)

        # The outsider's stream carried none of it: its first live event is its own job.
        mine = (await ping(client, stranger, elsewhere))["job"]["id"]
        outsiders: list[dict[str, Any]] = []
        await _until_final(outsider, own, mine, outsiders)
        assert {j["jobId"] for j in outsiders} == {mine}

    assert final["status"] == "SUCCEEDED" and final["kind"] == "generate_content"
    record = (await gql(client, RECORD, {"id": job_id}, headers=owner.headers))["data"]
    assert final["contentId"] == record["generationJob"]["content"]["id"]
    ours = [j for j in seen if j["jobId"] == job_id]
    assert ours[0]["status"] == "RUNNING" and ours[0]["attempt"] == 1
    sequences = [j["sequence"] for j in ours]
    # One entry per state change, never one per token: a delta repeats its state's sequence.
    assert sequences == sorted(set(sequences)), sequences
    assert all(j["contentId"] is None for j in ours[:-1])
    assert not any(j["catchUp"] for j in ours)


async def test_a_dashboard_that_reconnects_gets_the_active_jobs_and_what_finished(
    app: Starlette, client: httpx.AsyncClient
) -> None:
    owner = await register(client)
    workspace = await create_workspace(client, owner)
    done = (await ping(client, owner, workspace, "a"))["job"]["id"]  # no worker: QUEUED
    waiting = (await ping(client, owner, workspace, "b"))["job"]["id"]
    async with websocket(app, owner) as gws:
        first = await _next(gws, await gws.subscribe(EVENTS, {"ws": workspace}))
    assert first["snapshot"] and [(j["jobId"], j["status"]) for j in first["jobs"]] == [
        (done, "QUEUED"),
        (waiting, "QUEUED"),
    ]
    newest = max(j["updatedAt"] for j in first["jobs"])

    # While the dashboard is away one job runs and finishes (nobody hears its events).
    factory = state_of(app).session_factory
    claimed = await jobs.claim(factory, uid(done), 60)
    assert claimed is not None
    assert await jobs.succeed(factory, uid(done), claimed.attempts, {"pong": "a"}) is not None

    async with websocket(app, owner) as gws:
        plain = await _next(gws, await gws.subscribe(EVENTS, {"ws": workspace}))
        resumed = await _next(gws, await gws.subscribe(EVENTS, {"ws": workspace, "since": newest}))
    assert [(j["jobId"], j["status"]) for j in plain["jobs"]] == [(waiting, "QUEUED")]
    states = {j["jobId"]: (j["status"], j["sequence"], j["catchUp"]) for j in resumed["jobs"]}
    assert resumed["snapshot"] and states == {
        done: ("SUCCEEDED", 2, True),
        waiting: ("QUEUED", 0, True),
    }


async def test_every_job_change_is_published_once_on_the_workspace_channel(
    app: Starlette, client: httpx.AsyncClient, worker: Worker
) -> None:
    """The runner publishes each change on both channels (what the subscription relies on)."""
    owner = await register(client)
    workspace = await create_workspace(client, owner)
    hub = state_of(app).hub
    async with hub.subscribe(jobs.workspace_channel(uid(workspace))) as subscription:
        job_id = (await ping(client, owner, workspace, delay_ms=50))["job"]["id"]
        messages = []
        while not messages or messages[-1]["status"] != "SUCCEEDED":
            message = await asyncio.wait_for(subscription.get(), 30)
            assert isinstance(message, dict)
            messages.append(message)
    assert {m["job_id"] for m in messages} == {str(uid(job_id))}
    assert [m["seq"] for m in messages] == list(range(1, len(messages) + 1))
    assert "result" not in messages[-1], "the workspace message stays small"
