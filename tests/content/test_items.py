"""Content library: create/update with optimistic concurrency, versions, workflow, soft
delete, comments, campaigns, and statement counts for the library page.

Longer than 400 lines because item CRUD, versions and the workflow act on the same items.
"""

from __future__ import annotations

from typing import Any

import httpx
from starlette.applications import Starlette

from tests.api.test_query_counts import count_statements
from tests.helpers import Account, create_workspace, gql, register

CREATE = """
mutation($i: CreateContentInput!) {
  createContent(input: $i) {
    content { id title body status version tags contentType format campaign { id } author { id } }
    duplicates { title similarity }
    errors { field code message }
  }
}
"""
UPDATE = """
mutation($id: ID!, $i: UpdateContentInput!, $v: Int!) {
  updateContent(id: $id, input: $i, expectedVersion: $v) {
    content { id title body status version } errors { field code message }
  }
}
"""


async def _team(client: httpx.AsyncClient) -> tuple[Account, str, dict[str, Account]]:
    """An owner and a workspace with an admin, a member and a viewer."""
    owner = await register(client)
    ws = await create_workspace(client, owner)
    people: dict[str, Account] = {}
    for role in ("ADMIN", "MEMBER", "VIEWER"):
        person = await register(client)
        invited = await gql(
            client,
            "mutation($ws: ID!, $e: String!, $r: Role!) { inviteMember(workspaceId: $ws, email: $e, role: $r)"
            " { invitationToken errors { code } } }",
            {"ws": ws, "e": person.email, "r": role},
            headers=owner.headers,
        )
        token = invited["data"]["inviteMember"]["invitationToken"]
        accepted = await gql(
            client,
            "mutation($t: String!) { acceptInvitation(token: $t) { errors { code } } }",
            {"t": token},
            headers=person.headers,
        )
        assert accepted["data"]["acceptInvitation"]["errors"] == []
        people[role.lower()] = person
    return owner, ws, people


async def _create(
    client: httpx.AsyncClient, who: Account, ws: str, **fields: Any
) -> dict[str, Any]:
    data = {
        "workspaceId": ws,
        "title": "Spring launch",
        "body": "We launch the spring collection today.",
    }
    data.update(fields)
    body = await gql(client, CREATE, {"i": data}, headers=who.headers)
    payload: dict[str, Any] = body["data"]["createContent"]
    return payload


async def test_create_validates_and_stores_a_first_version(client: httpx.AsyncClient) -> None:
    owner, ws, people = await _team(client)
    bad = await _create(client, people["member"], ws, title="  ")
    assert [e["code"] for e in bad["errors"]] == ["REQUIRED"]
    viewer = await gql(
        client,
        CREATE,
        {"i": {"workspaceId": ws, "title": "x", "body": "y"}},
        headers=people["viewer"].headers,
    )
    assert viewer["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    created = await _create(
        client, people["member"], ws, tags=["#Launch", "launch", "Spring"], contentType="BLOG_POST"
    )
    content = created["content"]
    assert content["status"] == "DRAFT" and content["version"] == 1
    assert content["tags"] == ["launch", "spring"]
    assert content["author"]["id"] == people["member"].user_id
    versions = await gql(
        client,
        "query($id: ID!) { content(id: $id) { versions { version body author { id } } } }",
        {"id": content["id"]},
        headers=owner.headers,
    )
    assert [v["version"] for v in versions["data"]["content"]["versions"]] == [1]


async def test_stale_expected_version_is_a_conflict_and_writes_nothing(
    client: httpx.AsyncClient,
) -> None:
    owner, ws, people = await _team(client)
    content = (await _create(client, people["member"], ws))["content"]
    first = await gql(
        client,
        UPDATE,
        {"id": content["id"], "i": {"body": "Edit A"}, "v": 1},
        headers=people["member"].headers,
    )
    assert first["data"]["updateContent"]["content"]["version"] == 2
    stale = await gql(
        client,
        UPDATE,
        {"id": content["id"], "i": {"body": "Edit B"}, "v": 1},
        headers=owner.headers,
    )
    payload = stale["data"]["updateContent"]
    assert payload["content"] is None
    assert (
        payload["errors"][0]["code"] == "CONFLICT"
        and payload["errors"][0]["field"] == "expectedVersion"
    )
    now = await gql(
        client,
        "query($id: ID!) { content(id: $id) { body version versions { version } } }",
        {"id": content["id"]},
        headers=owner.headers,
    )
    assert now["data"]["content"]["body"] == "Edit A"
    assert now["data"]["content"]["version"] == 2
    assert [v["version"] for v in now["data"]["content"]["versions"]] == [2, 1]


async def test_restore_a_version_creates_a_new_one(client: httpx.AsyncClient) -> None:
    owner, ws, _ = await _team(client)
    content = (await _create(client, owner, ws, body="Original words"))["content"]
    await gql(
        client,
        UPDATE,
        {"id": content["id"], "i": {"body": "Rewritten"}, "v": 1},
        headers=owner.headers,
    )
    versions = await gql(
        client,
        "query($id: ID!) { content(id: $id) { versions { id version body } } }",
        {"id": content["id"]},
        headers=owner.headers,
    )
    v1 = next(v for v in versions["data"]["content"]["versions"] if v["version"] == 1)
    restored = await gql(
        client,
        "mutation($v: ID!) { restoreContentVersion(versionId: $v) { content { body version } errors { code } } }",
        {"v": v1["id"]},
        headers=owner.headers,
    )
    assert restored["data"]["restoreContentVersion"]["content"] == {
        "body": "Original words",
        "version": 3,
    }


WORKFLOW = {
    "submitForReview": "mutation($id: ID!) { submitForReview(id: $id) { content { status } errors { code } } }",
    "approveContent": "mutation($id: ID!) { approveContent(id: $id) { content { status } errors { code } } }",
    "requestChanges": 'mutation($id: ID!) { requestChanges(id: $id, comment: "Shorter please") '
    "{ content { status comments { kind body } } errors { code } } }",
}


async def _step(
    client: httpx.AsyncClient, who: Account, op: str, content_id: str
) -> dict[str, Any]:
    body = await gql(client, WORKFLOW[op], {"id": content_id}, headers=who.headers)
    if body.get("errors"):
        return {"graphql_error": body["errors"][0]["extensions"]["code"]}
    payload: dict[str, Any] = body["data"][op]
    return payload


async def test_review_workflow_allows_listed_transitions_only(client: httpx.AsyncClient) -> None:
    _, ws, people = await _team(client)
    member, admin = people["member"], people["admin"]
    content_id = (await _create(client, member, ws))["content"]["id"]
    # DRAFT cannot be approved directly.
    refused = await _step(client, admin, "approveContent", content_id)
    assert refused["errors"][0]["code"] == "INVALID_TRANSITION"
    assert (await _step(client, member, "submitForReview", content_id))["content"][
        "status"
    ] == "IN_REVIEW"
    # A member cannot approve; submitting twice is refused.
    assert (await _step(client, member, "approveContent", content_id)) == {
        "graphql_error": "FORBIDDEN"
    }
    assert (await _step(client, member, "submitForReview", content_id))["errors"][0][
        "code"
    ] == "INVALID_TRANSITION"
    # Changes requested: back to DRAFT with the comment in the thread.
    changed = await _step(client, admin, "requestChanges", content_id)
    assert changed["content"]["status"] == "DRAFT"
    assert changed["content"]["comments"] == [
        {"kind": "CHANGES_REQUESTED", "body": "Shorter please"}
    ]
    await _step(client, member, "submitForReview", content_id)
    assert (await _step(client, admin, "approveContent", content_id))["content"][
        "status"
    ] == "APPROVED"
    # Members cannot edit approved content; admins can, and it goes back to DRAFT for review.
    member_edit = await gql(
        client, UPDATE, {"id": content_id, "i": {"body": "x"}, "v": 1}, headers=member.headers
    )
    assert member_edit["data"]["updateContent"]["errors"][0]["code"] == "INVALID_STATE"
    admin_edit = await gql(
        client, UPDATE, {"id": content_id, "i": {"body": "Better"}, "v": 1}, headers=admin.headers
    )
    assert admin_edit["data"]["updateContent"]["content"]["status"] == "DRAFT"


async def test_soft_delete_hides_and_restore_brings_back(client: httpx.AsyncClient) -> None:
    owner, ws, people = await _team(client)
    mine = (await _create(client, people["member"], ws, title="Member post"))["content"]["id"]
    theirs = (await _create(client, owner, ws, title="Owner post"))["content"]["id"]
    not_owner = await gql(
        client,
        "mutation($id: ID!) { deleteContent(id: $id) { errors { code } } }",
        {"id": theirs},
        headers=people["member"].headers,
    )
    assert not_owner["data"]["deleteContent"]["errors"][0]["code"] == "NOT_OWNER"
    deleted = await gql(
        client,
        "mutation($id: ID!) { deleteContent(id: $id) { content { deletedAt } errors { code } } }",
        {"id": mine},
        headers=people["member"].headers,
    )
    assert deleted["data"]["deleteContent"]["content"]["deletedAt"] is not None
    listing = "query($ws: ID!, $d: Boolean!) { contents(workspaceId: $ws, filter: {deleted: $d}) { edges { node { id } } } }"
    live = await gql(client, listing, {"ws": ws, "d": False}, headers=owner.headers)
    assert [e["node"]["id"] for e in live["data"]["contents"]["edges"]] == [theirs]
    bin_ = await gql(client, listing, {"ws": ws, "d": True}, headers=owner.headers)
    assert [e["node"]["id"] for e in bin_["data"]["contents"]["edges"]] == [mine]
    keyword = await gql(
        client,
        'query($ws: ID!) { searchContent(workspaceId: $ws, query: "Member", mode: KEYWORD) { content { id } } }',
        {"ws": ws},
        headers=owner.headers,
    )
    assert keyword["data"]["searchContent"] == []
    restored = await gql(
        client,
        "mutation($id: ID!) { restoreContent(id: $id) { content { deletedAt } errors { code } } }",
        {"id": mine},
        headers=people["member"].headers,
    )
    assert restored["data"]["restoreContent"]["content"]["deletedAt"] is None
    again = await gql(client, listing, {"ws": ws, "d": False}, headers=owner.headers)
    assert len(again["data"]["contents"]["edges"]) == 2


async def test_filters_ordering_and_pagination(client: httpx.AsyncClient) -> None:
    owner, ws, people = await _team(client)
    for i in range(5):
        await _create(client, owner, ws, title=f"Post {i}", tags=["even" if i % 2 == 0 else "odd"])
    await _create(client, people["member"], ws, title="Email A", contentType="EMAIL")
    query = """
    query($ws: ID!, $f: ContentFilterInput, $o: ContentOrder!, $after: String) {
      contents(workspaceId: $ws, first: 2, after: $after, filter: $f, orderBy: $o) {
        edges { node { title } } pageInfo { hasNextPage endCursor }
      }
    }"""
    titles: list[str] = []
    after = None
    while True:
        body = await gql(
            client,
            query,
            {"ws": ws, "f": {"tag": "even"}, "o": "TITLE_ASC", "after": after},
            headers=owner.headers,
        )
        page = body["data"]["contents"]
        titles += [e["node"]["title"] for e in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert titles == ["Post 0", "Post 2", "Post 4"]
    emails = await gql(
        client,
        query,
        {"ws": ws, "f": {"contentType": "EMAIL"}, "o": "CREATED_DESC"},
        headers=owner.headers,
    )
    assert [e["node"]["title"] for e in emails["data"]["contents"]["edges"]] == ["Email A"]
    by_member = await gql(
        client,
        query,
        {"ws": ws, "f": {"createdBy": people["member"].user_id}, "o": "CREATED_DESC"},
        headers=owner.headers,
    )
    assert [e["node"]["title"] for e in by_member["data"]["contents"]["edges"]] == ["Email A"]


async def test_comments_thread(client: httpx.AsyncClient) -> None:
    owner, ws, people = await _team(client)
    content_id = (await _create(client, owner, ws))["content"]["id"]
    add = "mutation($id: ID!, $b: String!) { addComment(contentId: $id, body: $b) { comment { body authorName } errors { code } } }"
    ok = await gql(
        client, add, {"id": content_id, "b": "Love it"}, headers=people["member"].headers
    )
    assert ok["data"]["addComment"]["comment"]["body"] == "Love it"
    empty = await gql(client, add, {"id": content_id, "b": "   "}, headers=people["member"].headers)
    assert empty["data"]["addComment"]["errors"][0]["code"] == "REQUIRED"
    viewer = await gql(client, add, {"id": content_id, "b": "hi"}, headers=people["viewer"].headers)
    assert viewer["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    thread = await gql(
        client,
        "query($id: ID!) { content(id: $id) { commentCount comments { body } } }",
        {"id": content_id},
        headers=people["viewer"].headers,
    )
    assert thread["data"]["content"] == {"commentCount": 1, "comments": [{"body": "Love it"}]}


async def test_campaign_crud_with_role_checks(client: httpx.AsyncClient) -> None:
    owner, ws, people = await _team(client)
    create = """
    mutation($ws: ID!, $n: String!, $s: Date, $e: Date, $b: Decimal) {
      createCampaign(workspaceId: $ws, name: $n, objectives: ["Awareness"], startDate: $s, endDate: $e, budget: $b) {
        campaign { id name objectives startDate endDate budget status } errors { field code }
      }
    }"""
    viewer = await gql(client, create, {"ws": ws, "n": "Nope"}, headers=people["viewer"].headers)
    assert viewer["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    backwards = await gql(
        client,
        create,
        {"ws": ws, "n": "Bad", "s": "2026-05-10", "e": "2026-05-01"},
        headers=people["member"].headers,
    )
    assert backwards["data"]["createCampaign"]["errors"] == [
        {"field": "endDate", "code": "BEFORE_START"}
    ]
    made = await gql(
        client,
        create,
        {"ws": ws, "n": "Spring", "s": "2026-03-01", "e": "2026-05-31", "b": "1500.50"},
        headers=people["member"].headers,
    )
    campaign = made["data"]["createCampaign"]["campaign"]
    assert campaign["status"] == "DRAFT" and campaign["budget"] == "1500.50"
    content = (await _create(client, people["member"], ws, campaignId=campaign["id"]))["content"]
    assert content["campaign"]["id"] == campaign["id"]
    update = "mutation($id: ID!) { updateCampaign(id: $id, input: {status: ACTIVE}) { campaign { status } errors { code } } }"
    active = await gql(client, update, {"id": campaign["id"]}, headers=people["member"].headers)
    assert active["data"]["updateCampaign"]["campaign"]["status"] == "ACTIVE"
    listed = await gql(
        client,
        "query($id: ID!) { campaign(id: $id) { contents { edges { node { id } } } } }",
        {"id": campaign["id"]},
        headers=people["viewer"].headers,
    )
    assert [e["node"]["id"] for e in listed["data"]["campaign"]["contents"]["edges"]] == [
        content["id"]
    ]
    delete = "mutation($id: ID!) { deleteCampaign(id: $id) { success errors { code } } }"
    member_delete = await gql(
        client, delete, {"id": campaign["id"]}, headers=people["member"].headers
    )
    assert member_delete["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    admin_delete = await gql(
        client, delete, {"id": campaign["id"]}, headers=people["admin"].headers
    )
    assert admin_delete["data"]["deleteCampaign"]["success"] is True
    after = await gql(
        client,
        "query($id: ID!) { content(id: $id) { campaign { id } } }",
        {"id": content["id"]},
        headers=owner.headers,
    )
    assert after["data"]["content"]["campaign"] is None, "content stays, detached"


PAGE = """
query($ws: ID!, $n: Int!) {
  contents(workspaceId: $ws, first: $n) {
    edges { node {
      id title status
      author { id name }
      campaign { id name }
      commentCount
      textMetrics { words sentiment { label } hashtags hasCallToAction }
      warnings { code term }
      variations {
        platform characterCount withinLimits violations { code }
        textMetrics { words } warnings { code }
      }
    } }
  }
}
"""


async def test_library_page_statement_count_does_not_grow(
    app: Starlette, client: httpx.AsyncClient
) -> None:
    owner = await register(client)
    ws = await create_workspace(client, owner)
    campaign = await gql(
        client,
        'mutation($ws: ID!) { createCampaign(workspaceId: $ws, name: "C") { campaign { id } } }',
        {"ws": ws},
        headers=owner.headers,
    )
    campaign_id = campaign["data"]["createCampaign"]["campaign"]["id"]
    await _seed_contents(app, ws, owner, campaign_id, 100)
    await gql(client, "{ __typename }", headers=owner.headers)  # its principal, cached
    counts = {}
    for size in (10, 100):
        with count_statements(app) as statements:
            body = await gql(client, PAGE, {"ws": ws, "n": size}, headers=owner.headers)
        edges = body["data"]["contents"]["edges"]
        assert len(edges) == size
        assert all(e["node"]["author"] and e["node"]["campaign"] for e in edges)
        assert all(
            len(e["node"]["variations"]) == 2 and e["node"]["commentCount"] == 1 for e in edges
        )
        # Text metrics and warnings come with the rows: no statement of their own.
        assert all(e["node"]["textMetrics"]["words"] == 40 for e in edges)
        assert all(
            e["node"]["warnings"] == [{"code": "BANNED_WORD", "term": "body"}] for e in edges
        )
        assert all(
            v["textMetrics"]["words"] == 2 and v["warnings"][0]["code"] == "BANNED_WORD"
            for e in edges
            for v in e["node"]["variations"]
        )
        counts[size] = len(statements)
    assert counts[10] == counts[100], counts
    # the page (with its comment counts), then one batch each: authors, campaigns,
    # variations (the caller's principal is cached)
    assert counts[100] == 4, counts


CAMPAIGNS_PAGE = """
query($ws: ID!, $n: Int!) {
  campaigns(workspaceId: $ws, first: $n) {
    edges { node {
      id name
      contents(first: 5) {
        edges { node { id title author { name } commentCount variations { platform withinLimits } } }
        pageInfo { hasNextPage endCursor }
      }
    } }
  }
}
"""


async def test_campaign_contents_in_a_campaign_list_are_batched(
    app: Starlette, client: httpx.AsyncClient
) -> None:
    """A list of campaigns with their contents: one statement for all the campaigns' pages,
    then one batch per relation, whatever the number of campaigns."""
    owner = await register(client)
    ws = await create_workspace(client, owner)
    made = []
    for i in range(6):
        campaign = await gql(
            client,
            "mutation($ws: ID!, $n: String!) { createCampaign(workspaceId: $ws, name: $n) { campaign { id } } }",
            {"ws": ws, "n": f"C{i}"},
            headers=owner.headers,
        )
        made.append(campaign["data"]["createCampaign"]["campaign"]["id"])
        await _seed_contents(app, ws, owner, made[-1], 7)
    counts = {}
    for size in (2, 6):
        with count_statements(app) as statements:
            body = await gql(client, CAMPAIGNS_PAGE, {"ws": ws, "n": size}, headers=owner.headers)
        edges = body["data"]["campaigns"]["edges"]
        assert len(edges) == size
        for edge in edges:
            page = edge["node"]["contents"]
            assert len(page["edges"]) == 5 and page["pageInfo"]["hasNextPage"] is True
            assert all(
                e["node"]["commentCount"] == 1 and len(e["node"]["variations"]) == 2
                for e in page["edges"]
            )
        counts[size] = len(statements)
    assert counts[2] == counts[6], counts
    # Each campaign's page is its own: the same as asking for that campaign's items directly.
    first = edges[0]["node"]
    direct = await gql(
        client,
        "query($ws: ID!, $c: ID!) { contents(workspaceId: $ws, first: 5, filter: {campaignId: $c}) { edges { node { id } } } }",
        {"ws": ws, "c": first["id"]},
        headers=owner.headers,
    )
    assert [e["node"]["id"] for e in direct["data"]["contents"]["edges"]] == [
        e["node"]["id"] for e in first["contents"]["edges"]
    ]
    # The next page continues after the cursor.
    after = await gql(
        client,
        "query($id: ID!, $a: String) { node(id: $id) { ... on Campaign { contents(first: 5, after: $a) { edges { node { id } } pageInfo { hasNextPage } } } } }",
        {"id": first["id"], "a": first["contents"]["pageInfo"]["endCursor"]},
        headers=owner.headers,
    )
    rest = after["data"]["node"]["contents"]
    assert len(rest["edges"]) == 2 and rest["pageInfo"]["hasNextPage"] is False


async def _seed_contents(
    app: Starlette, ws: str, owner: Account, campaign_id: str, count: int
) -> None:
    import base64
    import uuid

    from app.ai.metrics import analyze, voice_key
    from app.models import Content, ContentComment, ContentVariation

    voice = {"banned_words": ["body", "variation"]}
    measured = {  # as a writer stores them (app/services/content/text_metrics.py)
        "text_metrics": analyze("Body 0 " * 20, brand_voice=voice).stored(voice_key(voice)),
        "text_metrics_version": 1,
    }
    of_variation = {
        "text_metrics": analyze("Variation 0", brand_voice=voice).stored(voice_key(voice)),
        "text_metrics_version": 1,
    }

    def raw(gid: str) -> uuid.UUID:
        return uuid.UUID(base64.b64decode(gid).decode().split(":", 1)[1])

    async with app.state.smartcontent.session_factory() as session, session.begin():
        for i in range(count):
            content_id = uuid.uuid4()
            session.add(
                Content(
                    id=content_id,
                    workspace_id=raw(ws),
                    title=f"Item {i}",
                    body=f"Body {i} " * 20,
                    content_type="SOCIAL_POST",
                    format="PLAIN",
                    status="DRAFT",
                    tags=[],
                    created_by_id=raw(owner.user_id),
                    campaign_id=raw(campaign_id),
                    version=1,
                    **measured,
                )
            )
            await session.flush()
            for platform in ("X", "LINKEDIN"):
                session.add(
                    ContentVariation(
                        id=uuid.uuid4(),
                        content_id=content_id,
                        workspace_id=raw(ws),
                        platform=platform,
                        body=f"Variation {i}",
                        media_ids=[],
                        **of_variation,
                    )
                )
            session.add(
                ContentComment(
                    id=uuid.uuid4(),
                    content_id=content_id,
                    author_id=raw(owner.user_id),
                    author_name="O",
                    body="c",
                )
            )


async def test_approval_requirement_is_a_workspace_setting(client: httpx.AsyncClient) -> None:
    _owner, ws, people = await _team(client)
    setting = "mutation($id: ID!, $v: Boolean!) { updateWorkspace(id: $id, input: {approvalRequired: $v}) { workspace { approvalRequired } errors { code } } }"
    member = await gql(client, setting, {"id": ws, "v": False}, headers=people["member"].headers)
    assert member["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    off = await gql(client, setting, {"id": ws, "v": False}, headers=people["admin"].headers)
    assert off["data"]["updateWorkspace"]["workspace"]["approvalRequired"] is False
    content_id = (await _create(client, people["member"], ws))["content"]["id"]
    await _step(client, people["member"], "submitForReview", content_id)
    await _step(client, people["admin"], "approveContent", content_id)
    edited = await gql(
        client,
        UPDATE,
        {"id": content_id, "i": {"body": "Tweak"}, "v": 1},
        headers=people["admin"].headers,
    )
    assert edited["data"]["updateContent"]["content"]["status"] == "APPROVED", (
        "no re-review without the requirement"
    )
