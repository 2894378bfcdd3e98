"""generateContent end to end: a websocket client (graphql-transport-ws) follows the deltas
from a real arq worker; a second client that subscribes mid-stream gets the text so far,
then the rest and the same final event."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from arq.worker import Worker
from httpx_ws import aconnect_ws
from httpx_ws.transport import ASGIWebSocketTransport
from starlette.applications import Starlette

from app.models.vocabulary import Platform
from app.platforms.rules import evaluate
from tests.helpers import Account, GraphQLWebSocket, create_workspace, gql, register

GENERATE = """
mutation($input: GenerateContentInput!) {
  generateContent(input: $input) { job { id status kind } errors { field code message } }
}
"""
PROGRESS = """
subscription($id: ID!) {
  generationProgress(jobId: $id) {
    jobId status attempt sequence stage variationIndex delta text catchUp progress error
    content { id title status contentType variations { platform body withinLimits } }
  }
}
"""
RECORD = """
query($id: ID!) {
  generationJob(id: $id) {
    job { id status } operation contentType promptTemplate promptVersion provider model
    inputTokens outputTokens tokensEstimated costUsd latencyToFirstTokenMs totalMs
    providerCalls attempts error alternatives { title body }
    content { id title }
  }
}
"""


@asynccontextmanager
async def websocket(app: Starlette, account: Account) -> AsyncIterator[GraphQLWebSocket]:
    async with (
        httpx.AsyncClient(
            transport=ASGIWebSocketTransport(app), base_url="http://testserver"
        ) as client,
        aconnect_ws(
            "http://testserver/graphql", client, subprotocols=["graphql-transport-ws"]
        ) as ws,
    ):
        gws = GraphQLWebSocket(ws)
        await gws.init({"authorization": f"Bearer {account.access_token}"})
        yield gws


async def follow(app: Starlette, account: Account, job_id: str, sink: list[dict[str, Any]]) -> None:
    async with websocket(app, account) as gws:
        op = await gws.subscribe(PROGRESS, {"id": job_id})
        while True:
            message = await gws.receive(timeout=30)
            if message.get("id") != op:
                continue
            if message["type"] == "complete":
                return
            assert message["type"] == "next", message
            assert "errors" not in message["payload"], message
            sink.append(message["payload"]["data"]["generationProgress"])


def texts(events: list[dict[str, Any]]) -> dict[tuple[Any, ...], str]:
    """Each stage's text as a client rebuilds it: catch-up text, then deltas appended."""
    out: dict[tuple[Any, ...], str] = {}
    for event in events:
        key = (event["attempt"], event["stage"], event["variationIndex"])
        if event["catchUp"] and event["text"] is not None:
            out[key] = event["text"]
        if event["delta"] is not None:
            out[key] = out.get(key, "") + event["delta"]
    return {k: v for k, v in out.items() if v}


async def test_generate_content_streams_to_two_subscribers_and_saves_the_item(
    app: Starlette, client: httpx.AsyncClient, worker: Worker
) -> None:
    owner = await register(client)
    workspace = await create_workspace(client, owner)
    body = await gql(
        client,
        GENERATE,
        {
            "input": {
                "workspaceId": workspace,
                "brief": "Our oat latte launches Monday. It is creamy and vegan.",
                "contentType": "BLOG_POST",
                "length": "LONG",
                "keywords": ["oat latte"],
                "platforms": ["X", "LINKEDIN", "INSTAGRAM", "BLUESKY"],
                "variations": 2,
            }
        },
        headers=owner.headers,
    )
    payload = body["data"]["generateContent"]
    assert payload["errors"] == [], payload
    assert payload["job"]["status"] == "QUEUED" and payload["job"]["kind"] == "generate_content"
    job_id = payload["job"]["id"]

    first: list[dict[str, Any]] = []
    second: list[dict[str, Any]] = []
    early = asyncio.create_task(follow(app, owner, job_id, first))
    # The second client joins once the first has seen some text of the draft.
    for _ in range(2000):
        if sum(1 for e in first if e["delta"]) >= 5 or early.done():
            break
        await asyncio.sleep(0.005)
    assert not early.done(), "the job finished before the second client could join"
    late = asyncio.create_task(follow(app, owner, job_id, second))
    await asyncio.wait_for(asyncio.gather(early, late), 60)

    assert first[-1]["status"] == "SUCCEEDED" and second[-1]["status"] == "SUCCEEDED"
    assert first[-1]["content"] == second[-1]["content"] is not None
    deltas = [e for e in first if e["delta"]]
    assert len(deltas) > 20, "the text arrived in many chunks"
    sequences = [e["sequence"] for e in first]
    assert sequences == sorted(sequences)
    stages = [(e["stage"], e["variationIndex"]) for e in deltas]
    assert stages[0] == ("draft", None)
    assert {s for s in stages if s[0] == "variation"} == {("variation", i) for i in range(4)}
    assert ("alternative", 0) in stages

    # The late client: stored state with the text so far first, then the rest.
    assert second[0]["catchUp"] and second[0]["status"] == "RUNNING"
    assert second[0]["stage"] is not None
    assert sum(1 for e in second if e["delta"]) < len(deltas)
    assert any(e["catchUp"] and e["text"] for e in second), "the text so far was delivered"
    full, joined = texts(first), texts(second)
    assert joined, second[:3]
    for key, text in joined.items():
        assert full[key] == text, key

    content = first[-1]["content"]
    assert content["status"] == "DRAFT" and content["contentType"] == "BLOG_POST"
    platforms = {v["platform"]: v for v in content["variations"]}
    assert set(platforms) == {"X", "LINKEDIN", "INSTAGRAM", "BLUESKY"}
    for name, variation in platforms.items():
        text_ok = [
            v
            for v in evaluate(Platform(name), variation["body"]).violations
            if v.code not in {"MEDIA_REQUIRED"}
        ]
        assert text_ok == [], (name, text_ok)
    # The draft's text as streamed is the item's title line and body.
    draft = full[(1, "draft", None)]
    assert draft.startswith(f"Title: {content['title']}")

    record = (await gql(client, RECORD, {"id": job_id}, headers=owner.headers))["data"][
        "generationJob"
    ]
    assert record["job"] == {"id": job_id, "status": "SUCCEEDED"}
    assert record["content"] == {"id": content["id"], "title": content["title"]}
    assert (record["provider"], record["model"]) == ("offline", "offline-draft-writer-v1")
    assert (record["promptTemplate"], record["promptVersion"]) == ("generate_blog_post", 1)
    assert record["operation"] == "GENERATE" and record["contentType"] == "BLOG_POST"
    assert record["inputTokens"] > 0 and record["outputTokens"] > 0
    assert record["tokensEstimated"] and record["costUsd"] == 0
    assert 0 <= record["latencyToFirstTokenMs"] <= record["totalMs"]
    assert record["attempts"] == 1 and record["error"] is None
    assert record["providerCalls"] == 6
    assert len(record["alternatives"]) == 1


async def test_generate_content_reports_bad_input_as_payload_errors(
    app: Starlette, client: httpx.AsyncClient
) -> None:
    owner = await register(client)
    workspace = await create_workspace(client, owner)
    body = await gql(
        client,
        GENERATE,
        {"input": {"workspaceId": workspace, "brief": "", "variations": 0}},
        headers=owner.headers,
    )
    payload = body["data"]["generateContent"]
    assert payload["job"] is None
    assert {(e["field"], e["code"]) for e in payload["errors"]} == {
        ("brief", "REQUIRED"),
        ("variations", "OUT_OF_RANGE"),
    }


async def test_generation_job_of_another_workspace_is_null(
    app: Starlette, client: httpx.AsyncClient
) -> None:
    owner = await register(client)
    workspace = await create_workspace(client, owner)
    body = await gql(
        client,
        GENERATE,
        {"input": {"workspaceId": workspace, "brief": "Tea"}},
        headers=owner.headers,
    )
    job_id = body["data"]["generateContent"]["job"]["id"]
    stranger = await register(client)
    record = await gql(client, RECORD, {"id": job_id}, headers=stranger.headers)
    assert record["data"]["generationJob"] is None
    mine = await gql(client, RECORD, {"id": job_id}, headers=owner.headers)
    assert mine["data"]["generationJob"]["job"]["status"] == "QUEUED"
    assert mine["data"]["generationJob"]["provider"] is None


LIST = """
query($ws: ID!, $after: String, $f: GenerationJobFilterInput) {
  generationJobs(workspaceId: $ws, first: 1, after: $after, filter: $f) {
    edges { cursor node { operation promptTemplate job { id status } } }
    pageInfo { hasNextPage endCursor }
  }
}
"""


async def test_generation_jobs_lists_a_workspace_newest_first(
    app: Starlette, client: httpx.AsyncClient
) -> None:
    owner = await register(client)
    workspace = await create_workspace(client, owner)
    ids = []
    for brief in ("One", "Two"):
        body = await gql(
            client,
            GENERATE,
            {"input": {"workspaceId": workspace, "brief": brief}},
            headers=owner.headers,
        )
        ids.append(body["data"]["generateContent"]["job"]["id"])
    first = (await gql(client, LIST, {"ws": workspace}, headers=owner.headers))["data"][
        "generationJobs"
    ]
    assert [e["node"]["job"]["id"] for e in first["edges"]] == [ids[1]]
    assert first["pageInfo"]["hasNextPage"]
    second = (
        await gql(
            client,
            LIST,
            {"ws": workspace, "after": first["pageInfo"]["endCursor"]},
            headers=owner.headers,
        )
    )["data"]["generationJobs"]
    assert [e["node"]["job"]["id"] for e in second["edges"]] == [ids[0]]
    assert second["edges"][0]["node"]["operation"] == "GENERATE"
    refined = (
        await gql(
            client, LIST, {"ws": workspace, "f": {"operation": "REFINE"}}, headers=owner.headers
        )
    )["data"]["generationJobs"]
    assert refined["edges"] == []
    stranger = await register(client)
    denied = await gql(client, LIST, {"ws": workspace}, headers=stranger.headers)
    assert denied["errors"][0]["extensions"]["code"] in ("FORBIDDEN", "NOT_FOUND")
