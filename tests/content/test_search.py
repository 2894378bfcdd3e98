"""Search: keyword (full-text, ranked, highlighted), semantic (pgvector), hybrid (RRF),
similar items, and the embedding job that makes items findable by meaning."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
import pytest
from arq.worker import Worker
from sqlalchemy import select, update
from starlette.applications import Starlette
from strawberry import relay

from app.ai.embeddings import HashingEmbedder
from app.models import Content as ContentRow
from app.models import Job as JobRow
from app.services.content.items import EMBED_KIND
from app.services.content.search import Hit, fuse, parse_query
from tests.api.test_query_counts import count_statements
from tests.helpers import Account, create_workspace, gql, register

POSTS = {
    "coffee": (
        "Morning coffee rituals",
        "Brewing espresso and pour-over coffee at home for a calm morning.",
    ),
    "running": (
        "Marathon training plan",
        "Weekly running schedule with long runs, tempo runs and recovery.",
    ),
    "pricing": (
        "Pricing page update",
        "Our new subscription pricing: monthly and annual plans with discounts.",
    ),
    "coffee2": (
        "Coffee brewing guide",
        "How to brew better coffee: grind size, water temperature, espresso.",
    ),
}

SEARCH = """
query($ws: ID!, $q: String!, $m: SearchMode!) {
  searchContent(workspaceId: $ws, query: $q, mode: $m, first: 10) { score snippet content { title embedded } }
}
"""


async def _library(client: httpx.AsyncClient) -> tuple[Account, str, dict[str, str]]:
    owner = await register(client)
    ws = await create_workspace(client, owner)
    ids = {}
    for key, (title, body) in POSTS.items():
        made = await gql(
            client,
            "mutation($i: CreateContentInput!) { createContent(input: $i) { content { id } errors { code } } }",
            {"i": {"workspaceId": ws, "title": title, "body": body}},
            headers=owner.headers,
        )
        ids[key] = made["data"]["createContent"]["content"]["id"]
    return owner, ws, ids


async def _wait_embedded(client: httpx.AsyncClient, owner: Account, ids: dict[str, str]) -> None:
    query = "query($id: ID!) { content(id: $id) { embedded } }"
    for _ in range(200):
        states = [
            (await gql(client, query, {"id": i}, headers=owner.headers))["data"]["content"][
                "embedded"
            ]
            for i in ids.values()
        ]
        if all(states):
            return
        await asyncio.sleep(0.05)
    raise AssertionError("items were not embedded by the worker")


async def _search(
    client: httpx.AsyncClient, owner: Account, ws: str, q: str, mode: str
) -> list[dict[str, Any]]:
    body = await gql(client, SEARCH, {"ws": ws, "q": q, "m": mode}, headers=owner.headers)
    hits: list[dict[str, Any]] = body["data"]["searchContent"]
    return hits


async def test_keyword_search_is_immediate_ranked_and_highlighted(
    client: httpx.AsyncClient,
) -> None:
    owner, ws, _ = await _library(client)  # no worker: nothing embedded yet
    hits = await _search(client, owner, ws, "espresso coffee", "KEYWORD")
    titles = [h["content"]["title"] for h in hits]
    assert set(titles) == {"Morning coffee rituals", "Coffee brewing guide"}
    assert hits[0]["score"] >= hits[1]["score"]
    assert "<mark>" in hits[0]["snippet"]
    assert await _search(client, owner, ws, "espresso", "SEMANTIC") == [], "not embedded yet"
    assert await _search(client, owner, ws, '"annual plans" -monthly', "KEYWORD") == []
    phrase = await _search(client, owner, ws, '"annual plans"', "KEYWORD")
    assert [h["content"]["title"] for h in phrase] == ["Pricing page update"]


async def test_semantic_and_hybrid_after_embedding(
    client: httpx.AsyncClient, worker: Worker
) -> None:
    owner, ws, ids = await _library(client)
    await _wait_embedded(client, owner, ids)
    semantic = await _search(client, owner, ws, "how do I brew coffee", "SEMANTIC")
    assert semantic[0]["content"]["title"] in {"Coffee brewing guide", "Morning coffee rituals"}
    assert all(-1 <= h["score"] <= 1 for h in semantic)
    assert [h["score"] for h in semantic] == sorted((h["score"] for h in semantic), reverse=True)
    hybrid = await _search(client, owner, ws, "coffee espresso", "HYBRID")
    assert {h["content"]["title"] for h in hybrid[:2]} == {
        "Coffee brewing guide",
        "Morning coffee rituals",
    }
    similar = await gql(
        client,
        "query($id: ID!) { content(id: $id) { similar(first: 2) { similarity content { title } } } }",
        {"id": ids["coffee"]},
        headers=owner.headers,
    )
    neighbours = similar["data"]["content"]["similar"]
    assert neighbours[0]["content"]["title"] == "Coffee brewing guide"
    assert neighbours[0]["similarity"] > neighbours[1]["similarity"]


async def test_editing_re_embeds_and_stale_jobs_do_not_overwrite(
    client: httpx.AsyncClient, worker: Worker
) -> None:
    owner, ws, ids = await _library(client)
    await _wait_embedded(client, owner, ids)
    await gql(
        client,
        'mutation($id: ID!) { updateContent(id: $id, input: {body: "Trail running shoes review"}, expectedVersion: 1)'
        " { errors { code } } }",
        {"id": ids["pricing"]},
        headers=owner.headers,
    )
    await _wait_embedded(client, owner, {"pricing": ids["pricing"]})
    hits = await _search(client, owner, ws, "running shoes trail", "SEMANTIC")
    assert hits[0]["content"]["title"] == "Pricing page update"


async def test_near_duplicate_warning_on_create(client: httpx.AsyncClient) -> None:
    owner, ws, _ = await _library(client)
    title, body = POSTS["running"]
    made = await gql(
        client,
        "mutation($i: CreateContentInput!) { createContent(input: $i) { content { id } duplicates { title similarity } } }",
        {"i": {"workspaceId": ws, "title": title, "body": body}},
        headers=owner.headers,
    )
    duplicates = made["data"]["createContent"]["duplicates"]
    assert [d["title"] for d in duplicates] == ["Marathon training plan"]
    assert duplicates[0]["similarity"] > 0.9
    different = await gql(
        client,
        "mutation($i: CreateContentInput!) { createContent(input: $i) { duplicates { title } } }",
        {
            "i": {
                "workspaceId": ws,
                "title": "Quarterly report",
                "body": "Revenue grew in every region.",
            }
        },
        headers=owner.headers,
    )
    assert different["data"]["createContent"]["duplicates"] == []


async def test_search_is_tenant_scoped_and_validated(client: httpx.AsyncClient) -> None:
    _, ws, _ = await _library(client)
    stranger = await register(client)
    other_ws = await create_workspace(client, stranger)
    assert await _search(client, stranger, other_ws, "coffee", "KEYWORD") == []
    denied = await gql(
        client, SEARCH, {"ws": ws, "q": "coffee", "m": "KEYWORD"}, headers=stranger.headers
    )
    assert denied["errors"][0]["extensions"]["code"] == "FORBIDDEN"


@pytest.mark.parametrize("mode", ["KEYWORD", "SEMANTIC", "HYBRID"])
@pytest.mark.parametrize(
    ("query", "reason"), [("", "REQUIRED"), ("  \t ", "REQUIRED"), ("q" * 501, "TOO_LONG")]
)
async def test_bad_search_queries_are_user_errors(
    client: httpx.AsyncClient, mode: str, query: str, reason: str
) -> None:
    owner = await register(client)
    ws = await create_workspace(client, owner)
    body = await gql(client, SEARCH, {"ws": ws, "q": query, "m": mode}, headers=owner.headers)
    assert body["data"] is None
    [error] = body["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT", error
    assert error["extensions"]["field"] == "query"
    assert error["extensions"]["reason"] == reason


async def test_snippets_are_safe_html(client: httpx.AsyncClient) -> None:
    """The document's own markup comes back escaped; only the highlights are tags."""
    owner = await register(client)
    ws = await create_workspace(client, owner)
    body = (
        "Fresh coffee <img src=x onerror=alert(1)> & <svg/onload=alert(2)// "
        "with a stray \ue000 private \ue001 mark and 'quotes'."
    )
    await gql(
        client,
        "mutation($i: CreateContentInput!) { createContent(input: $i) { errors { code } } }",
        {"i": {"workspaceId": ws, "title": "Markup", "body": body}},
        headers=owner.headers,
    )
    [hit] = await _search(client, owner, ws, "coffee", "KEYWORD")
    snippet = hit["snippet"]
    assert "<mark>coffee</mark>" in snippet
    assert "&lt;img src=x onerror=alert(1)&gt;" in snippet
    assert "&lt;svg/onload=alert" in snippet and "&amp;" in snippet
    # Nothing but <mark> and </mark> is markup.
    assert snippet.replace("<mark>", "").replace("</mark>", "").count("<") == 0
    assert snippet.count("<mark>") == snippet.count("</mark>") == 1
    assert "\ue000" not in snippet and "\ue001" not in snippet


async def test_semantic_and_hybrid_apply_a_floor_and_the_exclusions(
    client: httpx.AsyncClient, worker: Worker
) -> None:
    owner, ws, ids = await _library(client)
    await _wait_embedded(client, owner, ids)
    # Nothing is about this: no hit is similar enough (before, all four came back).
    assert await _search(client, owner, ws, "xyzzy plugh", "SEMANTIC") == []
    assert await _search(client, owner, ws, "xyzzy plugh", "HYBRID") == []
    semantic = await _search(client, owner, ws, "coffee espresso", "SEMANTIC")
    assert {h["content"]["title"] for h in semantic} == {
        "Morning coffee rituals",
        "Coffee brewing guide",
    }
    assert all(h["score"] >= 0.2 for h in semantic)
    # `-word` leaves out what the keyword side leaves out, in every mode.
    for mode in ("KEYWORD", "SEMANTIC", "HYBRID"):
        hits = await _search(client, owner, ws, "coffee espresso -morning", mode)
        assert [h["content"]["title"] for h in hits] == ["Coffee brewing guide"], mode
        phrase = await _search(client, owner, ws, 'coffee -"grind size"', mode)
        assert [h["content"]["title"] for h in phrase] == ["Morning coffee rituals"], mode
    # Only exclusions: nothing to look for by meaning; keywords find the rest.
    assert await _search(client, owner, ws, "-coffee", "SEMANTIC") == []
    rest = await _search(client, owner, ws, "-coffee", "HYBRID")
    assert {h["content"]["title"] for h in rest} == {
        "Marathon training plan",
        "Pricing page update",
    }


@pytest.mark.no_db
def test_query_parsing_for_the_semantic_side() -> None:
    parsed = parse_query('brew  -decaf coffee -"instant powder" well-known --x -')
    assert parsed.positive == "brew coffee well-known -"
    assert parsed.excluded == '"decaf" or "instant powder" or "x"'
    assert parse_query("plain words").excluded is None


async def _similar(client: httpx.AsyncClient, owner: Account, content_id: str) -> dict[str, Any]:
    body = await gql(
        client,
        "query($id: ID!) { content(id: $id) { embedded version similar(first: 3) { content { title } } } }",
        {"id": content_id},
        headers=owner.headers,
    )
    result: dict[str, Any] = body["data"]["content"]
    return result


async def test_an_edit_that_keeps_the_text_keeps_the_item_embedded(
    app: Starlette, client: httpx.AsyncClient, worker: Worker
) -> None:
    owner, _, ids = await _library(client)
    await _wait_embedded(client, owner, ids)
    edited = await gql(
        client,
        'mutation($id: ID!) { updateContent(id: $id, input: {tags: ["morning"]}, expectedVersion: 1)'
        " { content { version embedded } errors { code } } }",
        {"id": ids["coffee"]},
        headers=owner.headers,
    )
    assert edited["data"]["updateContent"]["content"] == {"version": 2, "embedded": True}
    after = await _similar(client, owner, ids["coffee"])
    assert after["embedded"] is True and after["similar"][0]["content"]["title"] == (
        "Coffee brewing guide"
    )
    # An item whose embedding is not current (text changed, job not yet run) has no
    # neighbours: `similar` agrees with `embedded`.
    async with app.state.smartcontent.session_factory() as session, session.begin():
        await session.execute(
            update(ContentRow)
            .where(ContentRow.id == parse_id_value(ids["coffee"]))
            .values(embedded_version=1)
        )
    stale = await _similar(client, owner, ids["coffee"])
    assert stale == {"embedded": False, "version": 2, "similar": []}


async def test_an_edit_while_the_embedding_is_pending_gets_its_own_job(
    app: Starlette, client: httpx.AsyncClient
) -> None:
    owner, _, ids = await _library(client)  # no worker: the create's job waits
    await gql(
        client,
        'mutation($id: ID!) { updateContent(id: $id, input: {tags: ["x"]}, expectedVersion: 1)'
        " { errors { code } } }",
        {"id": ids["coffee"]},
        headers=owner.headers,
    )
    async with app.state.smartcontent.session_factory() as session:
        versions = (
            await session.scalars(
                select(JobRow.payload["version"].as_integer())
                .where(JobRow.kind == EMBED_KIND)
                .where(
                    JobRow.payload["content_id"].as_string() == str(parse_id_value(ids["coffee"]))
                )
            )
        ).all()
    # The first job will find version 2 and skip; the second embeds version 2.
    assert sorted(versions) == [1, 2]


def parse_id_value(global_id: str) -> uuid.UUID:
    return uuid.UUID(relay.GlobalID.from_id(global_id).node_id)


@pytest.mark.no_db
def test_rrf_fusion_rewards_agreement() -> None:
    a, b, c = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    keyword = [Hit(a, 1.0, keyword_rank=1), Hit(b, 0.5, keyword_rank=2)]
    semantic = [Hit(b, 0.9, semantic_rank=1), Hit(c, 0.8, semantic_rank=2)]
    fused = fuse(keyword, semantic, 3)
    assert fused[0].content_id == b, "in both lists beats first in one"
    assert fused[0].keyword_rank == 2 and fused[0].semantic_rank == 1


@pytest.mark.no_db
async def test_hashing_embedder_is_lexical_and_normalised() -> None:
    embedder = HashingEmbedder(384)
    [a, b, c] = await embedder.embed(
        ["coffee brewing guide", "brewing coffee at home", "quarterly revenue report"]
    )
    dot = lambda x, y: sum(p * q for p, q in zip(x, y, strict=True))  # noqa: E731
    assert abs(dot(a, a) - 1) < 1e-9
    assert dot(a, b) > dot(a, c) + 0.2


async def test_search_statements_do_not_grow_with_the_hits(
    app: Starlette, client: httpx.AsyncClient
) -> None:
    """The hits' items come with the search; their relations load once for all the hits."""
    owner, ws, _ = await _library(client)
    query = """query($ws: ID!, $n: Int!) {
      searchContent(workspaceId: $ws, query: "coffee or running or pricing", mode: KEYWORD, first: $n) {
        score content { title commentCount author { name } variations { platform withinLimits } }
      }
    }"""
    await gql(client, "{ __typename }", headers=owner.headers)  # its principal, cached
    counts = {}
    for size in (1, 4):
        with count_statements(app) as statements:
            body = await gql(client, query, {"ws": ws, "n": size}, headers=owner.headers)
        hits = body["data"]["searchContent"]
        assert len(hits) == size and all(h["content"]["author"]["name"] for h in hits)
        counts[size] = len(statements)
    assert counts[1] == counts[4], counts
    # the search, its items, then authors, comment counts and variations (the caller's
    # principal is cached)
    assert counts[4] == 5, counts
