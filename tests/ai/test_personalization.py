"""personalizeContent: one stored version per audience segment, saying what changed and
why; through the API with a real arq worker (offline writer) and through the OpenAI SDK
against the fake server."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from arq.worker import Worker
from sqlalchemy import delete, select, update
from starlette.applications import Starlette

from app.models import AudienceSegment, ContentPersonalization, Generation, Job
from tests.ai.derived_helpers import (
    BODY,
    SEGMENTS,
    Item,
    gid,
    jobs_of,
    make_item,
    requeue,
    run_job,
    versions,
)
from tests.ai.fake_llm import FakeLLM, Stream, serve_fake_llm
from tests.ai.test_editing import wait_done
from tests.conftest import Servers
from tests.helpers import gql, register
from tests.teams import state_of, uid

UPDATE = """
mutation($id: ID!, $i: UpdateContentInput!, $v: Int!) {
  updateContent(id: $id, input: $i, expectedVersion: $v) { content { version } errors { code } }
}
"""
PERSONALIZE = """
mutation($id: ID!, $s: [ID!]!) {
  personalizeContent(contentId: $id, segmentIds: $s) {
    job { id status } errors { field code message }
  }
}
"""
RECORD = """
query($id: ID!) {
  generationJob(id: $id) {
    job { status error } operation provider promptTemplate promptVersion
    personalizations { id segment { name } }
    content { id }
  }
}
"""


@pytest.fixture
async def fake() -> AsyncIterator[FakeLLM]:
    async with serve_fake_llm() as server:
        yield server


async def personalize(
    client: httpx.AsyncClient, item: Item, segment_ids: list[str] | None = None
) -> dict[str, Any]:
    body = await gql(
        client,
        PERSONALIZE,
        {"id": item.content_id, "s": item.segment_ids if segment_ids is None else segment_ids},
        headers=item.owner.headers,
    )
    payload: dict[str, Any] = body["data"]["personalizeContent"]
    return payload


async def test_two_segments_give_two_versions_with_changes_and_a_rerun_replaces_them(
    app: Starlette, client: httpx.AsyncClient, worker: Worker
) -> None:
    item = await make_item(client)
    queued = await personalize(client, item)
    assert queued["errors"] == [] and queued["job"]["status"] == "QUEUED"
    record = await wait_done(client, item.owner, queued["job"]["id"])
    full = (await gql(client, RECORD, {"id": queued["job"]["id"]}, headers=item.owner.headers))[
        "data"
    ]["generationJob"]
    assert record["job"]["status"] == "SUCCEEDED", record
    assert (full["operation"], full["provider"]) == ("PERSONALIZE", "offline")
    assert (full["promptTemplate"], full["promptVersion"]) == ("personalize_content", 1)
    assert full["content"]["id"] == item.content_id
    assert sorted(p["segment"]["name"] for p in full["personalizations"]) == [
        "Cafe owners",
        "Students",
    ]

    content = await versions(client, item)
    assert content["body"] == BODY, "the item itself is unchanged"
    by_segment = {p["segment"]["id"]: p for p in content["personalizations"]}
    assert set(by_segment) == set(item.segment_ids)
    students, owners = (by_segment[s] for s in item.segment_ids)
    for version in (students, owners):
        assert version["body"].strip() and version["body"] != BODY
        assert "Changes:" not in version["body"] and "cheap" not in version["body"]
        assert version["basedOnVersion"] == 1 and version["metrics"]["words"] > 5
        assert len(version["changes"]) >= 2
        assert all(c["change"] and c["reason"] for c in version["changes"])
    assert "Students" in students["title"] and "A note for Students" in students["body"]
    assert "In short:" in students["body"], "beginners get a recap"
    assert "study breaks" in students["body"], "an interest the text did not mention"
    assert "hospitality" in owners["body"]
    assert "Our oat latte launches Monday." not in owners["body"], "experts skip the lead-in"
    assert any("cheap" in c["change"] for c in students["changes"]), "says what it removed"

    # The item changes; personalising again replaces each segment's version in place.
    changed = BODY.replace("Monday", "Friday")
    updated = await gql(
        client,
        UPDATE,
        {"id": item.content_id, "i": {"body": changed}, "v": 1},
        headers=item.owner.headers,
    )
    assert updated["data"]["updateContent"]["content"]["version"] == 2
    again = await personalize(client, item)
    assert again["job"]["id"] != queued["job"]["id"]
    assert (await wait_done(client, item.owner, again["job"]["id"]))["job"]["status"] == "SUCCEEDED"
    content = await versions(client, item)
    replaced = {p["segment"]["id"]: p for p in content["personalizations"]}
    assert {p["id"] for p in replaced.values()} == {students["id"], owners["id"]}
    assert all(p["basedOnVersion"] == 2 for p in replaced.values())
    assert "Friday" in replaced[item.segment_ids[0]]["body"], "written from the new text"
    state = state_of(app)
    async with state.session_factory() as session:
        rows = (await session.scalars(select(ContentPersonalization))).all()
        latest = (
            await session.scalars(
                select(Generation).where(Generation.job_id == uid(again["job"]["id"]))
            )
        ).one()
    assert len(rows) == 2 and {r.generation_id for r in rows} == {latest.id}
    first = (await gql(client, RECORD, {"id": queued["job"]["id"]}, headers=item.owner.headers))[
        "data"
    ]["generationJob"]
    assert first["personalizations"] == [], "its versions were replaced by the later run"


async def test_segments_must_be_in_the_items_workspace_and_number_one_to_ten(
    app: Starlette, client: httpx.AsyncClient
) -> None:
    state = state_of(app)
    item = await make_item(client)
    other = await make_item(client, segments=[("Elsewhere", "Another team's segment", {})])
    refused = await personalize(client, item, [item.segment_ids[0], other.segment_ids[0]])
    assert refused["job"] is None
    assert [(e["field"], e["code"]) for e in refused["errors"]] == [("segmentIds.1", "NOT_FOUND")]
    assert "Elsewhere" not in refused["errors"][0]["message"]
    unknown = await personalize(client, item, [gid("AudienceSegment", uuid.uuid4())])
    assert [e["code"] for e in unknown["errors"]] == ["NOT_FOUND"]
    none = await personalize(client, item, [])
    assert [(e["field"], e["code"]) for e in none["errors"]] == [("segmentIds", "OUT_OF_RANGE")]
    many = [gid("AudienceSegment", uuid.uuid4()) for _ in range(11)]
    too_many = await personalize(client, item, many)
    assert [e["code"] for e in too_many["errors"]] == ["OUT_OF_RANGE"]
    assert await jobs_of(state, "personalize_content") == 0
    # The same segment twice is one segment.
    twice = await personalize(client, item, [item.segment_ids[0], item.segment_ids[0]])
    assert twice["errors"] == []
    async with state.session_factory() as session:
        record = (await session.scalars(select(Generation))).one()
    assert record.request["segment_ids"] == [str(uid(item.segment_ids[0]))]
    # It is a generation job like the others: it can be cancelled.
    cancel = (
        "mutation($id: ID!) { cancelGeneration(jobId: $id) { job { status } errors { code } } }"
    )
    cancelled = await gql(client, cancel, {"id": twice["job"]["id"]}, headers=item.owner.headers)
    assert cancelled["data"]["cancelGeneration"]["job"]["status"] == "CANCELLED"
    # Someone outside the item's workspace cannot tell the item exists.
    stranger = await register(client)
    hidden = await gql(
        client,
        PERSONALIZE,
        {"id": item.content_id, "s": item.segment_ids},
        headers=stranger.headers,
    )
    assert hidden["errors"][0]["extensions"]["code"] == "NOT_FOUND"


async def test_a_workspace_over_its_tokens_is_refused_before_any_job(
    app: Starlette, client: httpx.AsyncClient
) -> None:
    state = state_of(app)
    item = await make_item(client)
    first = await personalize(client, item, item.segment_ids[:1])
    async with state.session_factory() as session, session.begin():
        await session.execute(
            update(Generation)
            .where(Generation.job_id == uid(first["job"]["id"]))
            .values(input_tokens=state.settings.ai_monthly_tokens_free)
        )
    refused = await personalize(client, item, item.segment_ids[1:])
    assert refused["job"] is None and [e["code"] for e in refused["errors"]] == ["QUOTA_EXCEEDED"]
    assert await jobs_of(state, "personalize_content") == 1


async def test_a_model_writes_the_changes_section_and_a_retried_attempt_saves_nothing_twice(
    app: Starlette, client: httpx.AsyncClient, servers: Servers, fake: FakeLLM
) -> None:
    state = state_of(app)
    item = await make_item(client)
    fake.openai.steps = [
        Stream(
            [
                "Title: A latte for study breaks\n\n",
                "Cheap enough for a student budget, creamy enough for finals week.",
                "\n\n**Changes:**\n- Led with the price — Why: they are on a budget\n",
                "- Mentioned finals week. Why: study breaks are their interest\n",
            ]
        ),
        Stream(
            [
                "Title: An oat latte your margins like\n\nA vegan latte for your menu.\n\n",
                "Changes:\n1. Spoke about the menu Why: they run cafes\n2. Dropped the hashtag\n",
            ]
        ),
    ]
    queued = await personalize(client, item)
    job_id = uid(queued["job"]["id"])
    outcome, collector = await run_job(state, servers, fake, job_id)
    assert outcome == "succeeded"
    states = [m for m in collector.messages if "delta" not in m]
    assert [m["message"] for m in states if m["status"] == "RUNNING"][1:] == [
        "personalization:0",
        "personalization:1",
        "saving",
    ]
    deltas = [m["delta"] for m in collector.messages if "delta" in m]
    assert {(d["stage"], d["variation_index"]) for d in deltas} == {
        ("personalization", 0),
        ("personalization", 1),
    }
    prompts = [r["body"]["messages"] for r in fake.openai.requests]
    assert len(prompts) == 2
    system, user = prompts[0][0]["content"], prompts[0][1]["content"]
    assert "Never use these words: cheap" in system and "Tone: warm" in system
    assert "Audience: Students" in user and "Undergraduates on a tight budget" in user
    assert "Interests: budget, study breaks" in user and "<original>" in user
    assert "Industry: hospitality" in prompts[1][1]["content"]
    content = await versions(client, item)
    by_segment = {p["segment"]["name"]: p for p in content["personalizations"]}
    students = by_segment["Students"]
    assert students["title"] == "A latte for study breaks"
    assert students["body"].startswith("Cheap enough") and "Changes" not in students["body"]
    assert students["changes"] == [
        {"change": "Led with the price", "reason": "they are on a budget"},
        {"change": "Mentioned finals week.", "reason": "study breaks are their interest"},
    ]
    assert students["metrics"]["warnings"], "the banned word is flagged, not hidden"
    assert by_segment["Cafe owners"]["changes"] == [
        {"change": "Spoke about the menu", "reason": "they run cafes"},
        {"change": "Dropped the hashtag", "reason": None},
    ]
    async with state.session_factory() as session:
        before = (await session.scalars(select(ContentPersonalization))).all()
        record = (await session.scalars(select(Generation))).one()
    assert record.provider == "openai" and record.input_tokens == 22
    assert [c["stage"] for c in record.calls] == ["personalization"] * 2

    await requeue(state, job_id)
    outcome, _ = await run_job(state, servers, fake, job_id)
    assert outcome == "succeeded"
    assert len(fake.openai.requests) == 2, "no provider call for a saved generation"
    async with state.session_factory() as session:
        after = (await session.scalars(select(ContentPersonalization))).all()
    assert [(r.id, r.body, r.updated_at) for r in after] == [
        (r.id, r.body, r.updated_at) for r in before
    ]


async def test_personalised_versions_are_invisible_outside_the_workspace(
    app: Starlette, client: httpx.AsyncClient, servers: Servers, fake: FakeLLM
) -> None:
    state = state_of(app)
    item = await make_item(client, segments=SEGMENTS[:1])
    fake.openai.steps = [Stream(["Title: T\n\nFor students.\n\nChanges:\n- x Why: y"])]
    queued = await personalize(client, item)
    assert (await run_job(state, servers, fake, uid(queued["job"]["id"])))[0] == "succeeded"
    [version] = (await versions(client, item))["personalizations"]
    node = "query($id: ID!) { node(id: $id) { ... on ContentPersonalization { body } } }"
    mine = await gql(client, node, {"id": version["id"]}, headers=item.owner.headers)
    assert mine["data"]["node"] == {"body": "For students."}
    stranger = await register(client)
    theirs = await gql(client, node, {"id": version["id"]}, headers=stranger.headers)
    assert theirs["data"]["node"] is None
    record = await gql(client, RECORD, {"id": queued["job"]["id"]}, headers=stranger.headers)
    assert record["data"]["generationJob"] is None


async def test_a_segment_deleted_before_the_run_is_skipped_and_all_deleted_fails(
    app: Starlette, client: httpx.AsyncClient, servers: Servers, fake: FakeLLM
) -> None:
    state = state_of(app)
    item = await make_item(client)
    fake.openai.steps = [Stream(["Title: T\n\nFor cafe owners.\n\nChanges:\n- x Why: y"])]
    queued = await personalize(client, item)
    async with state.session_factory() as session, session.begin():
        await session.execute(
            delete(AudienceSegment).where(AudienceSegment.id == uid(item.segment_ids[0]))
        )
    outcome, collector = await run_job(state, servers, fake, uid(queued["job"]["id"]))
    assert outcome == "succeeded"
    states = [m for m in collector.messages if "delta" not in m]
    assert [m["message"] for m in states if m["status"] == "RUNNING"][1:] == [
        "personalization:1",
        "saving",
    ]
    assert states[-1]["result"]["skipped_segments"] == 1
    [version] = (await versions(client, item))["personalizations"]
    assert version["segment"]["name"] == "Cafe owners"

    only = await make_item(client, segments=SEGMENTS[:1])
    queued = await personalize(client, only)
    async with state.session_factory() as session, session.begin():
        await session.execute(
            delete(AudienceSegment).where(AudienceSegment.id == uid(only.segment_ids[0]))
        )
    outcome, _ = await run_job(state, servers, fake, uid(queued["job"]["id"]))
    assert outcome == "failed"
    async with state.session_factory() as session:
        job = await session.get(Job, uid(queued["job"]["id"]))
    assert job is not None and "segments were deleted" in (job.error or "")
