"""Client review links: a guest reads, approves, requests changes and comments with only a
token; every use is audited; links expire and can be revoked."""

from __future__ import annotations

import base64
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import select, update
from starlette.applications import Starlette

from app.models import AuditEntry, ReviewLink
from app.security.tokens import token_hash
from tests.helpers import Account, create_workspace, gql, register
from tests.teams import join

VIEW = """
query($t: String!) {
  reviewLinkContent(token: $t, reviewerName: "Casey") {
    workspaceName title body status variations { platform body withinLimits } comments { authorName kind body }
  }
}
"""
RESPOND = """
mutation($t: String!, $d: ReviewDecision!, $c: String) {
  respondToReviewLink(token: $t, decision: $d, reviewerName: "Casey Client", comment: $c) {
    content { status comments { authorName kind body } } errors { field code }
  }
}
"""


async def _item_in_review(client: httpx.AsyncClient) -> tuple[Account, str]:
    owner = await register(client)
    ws = await create_workspace(client, owner, "Agency")
    made = await gql(
        client,
        'mutation($ws: ID!) { createContent(input: {workspaceId: $ws, title: "Launch post", body: "We launch today."}) { content { id } } }',
        {"ws": ws},
        headers=owner.headers,
    )
    content_id = made["data"]["createContent"]["content"]["id"]
    await gql(
        client,
        "mutation($id: ID!) { createVariation(contentId: $id, platform: LINKEDIN) { errors { code } } }",
        {"id": content_id},
        headers=owner.headers,
    )
    await gql(
        client,
        "mutation($id: ID!) { submitForReview(id: $id) { errors { code } } }",
        {"id": content_id},
        headers=owner.headers,
    )
    return owner, content_id


async def _link(
    client: httpx.AsyncClient, owner: Account, content_id: str, **extra: Any
) -> dict[str, Any]:
    body = await gql(
        client,
        "mutation($id: ID!, $e: DateTime) { createReviewLink(contentId: $id, expiresAt: $e) { reviewLink { id expiresAt } url token errors { field code } } }",
        {"id": content_id, "e": extra.get("expires_at")},
        headers=owner.headers,
    )
    payload: dict[str, Any] = body["data"]["createReviewLink"]
    return payload


async def test_guest_reviews_and_requests_changes(
    app: Starlette, client: httpx.AsyncClient
) -> None:
    owner, content_id = await _item_in_review(client)
    link = await _link(client, owner, content_id)
    assert link["url"].endswith(f"/review/{link['token']}")
    async with app.state.smartcontent.session_factory() as session:
        stored = await session.scalar(select(ReviewLink.token_hash))
    assert stored == token_hash(link["token"]), "only the hash is stored"
    seen = (await gql(client, VIEW, {"t": link["token"]}))["data"][
        "reviewLinkContent"
    ]  # no credentials
    assert seen["workspaceName"] == "Agency" and seen["status"] == "IN_REVIEW"
    assert [v["platform"] for v in seen["variations"]] == ["LINKEDIN"]
    no_comment = (await gql(client, RESPOND, {"t": link["token"], "d": "REQUEST_CHANGES"}))["data"][
        "respondToReviewLink"
    ]
    assert no_comment["errors"] == [{"field": "comment", "code": "REQUIRED"}]
    changed = (
        await gql(client, RESPOND, {"t": link["token"], "d": "REQUEST_CHANGES", "c": "Add a date"})
    )["data"]["respondToReviewLink"]
    assert changed["content"]["status"] == "DRAFT"
    assert changed["content"]["comments"] == [
        {"authorName": "Casey Client", "kind": "CHANGES_REQUESTED", "body": "Add a date"}
    ]
    # The team sees the guest's comment in the item's thread.
    thread = await gql(
        client,
        "query($id: ID!) { content(id: $id) { comments { authorName viaReviewLink } } }",
        {"id": content_id},
        headers=owner.headers,
    )
    assert thread["data"]["content"]["comments"] == [
        {"authorName": "Casey Client", "viaReviewLink": True}
    ]
    async with app.state.smartcontent.session_factory() as session:
        trail = (
            await session.execute(
                select(AuditEntry.action, AuditEntry.actor_label).order_by(AuditEntry.id)
            )
        ).all()
    guest_uses = [(a, label) for a, label in trail if label.startswith("review-link:")]
    assert ("viewReviewLink", "review-link:Casey") in guest_uses
    assert ("respondToReviewLink", "review-link:Casey Client") in guest_uses


async def test_guest_approval_follows_the_workflow(client: httpx.AsyncClient) -> None:
    owner, content_id = await _item_in_review(client)
    token = (await _link(client, owner, content_id))["token"]
    approved = (await gql(client, RESPOND, {"t": token, "d": "APPROVE"}))["data"][
        "respondToReviewLink"
    ]
    assert approved["content"]["status"] == "APPROVED"
    assert approved["content"]["comments"][-1]["kind"] == "APPROVAL"
    again = (await gql(client, RESPOND, {"t": token, "d": "APPROVE"}))["data"][
        "respondToReviewLink"
    ]
    assert again["errors"] == [{"field": "decision", "code": "INVALID_TRANSITION"}]


async def test_revoked_and_expired_links_stop_working(
    app: Starlette, client: httpx.AsyncClient
) -> None:
    owner, content_id = await _item_in_review(client)
    past = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    assert (await _link(client, owner, content_id, expires_at=past))["errors"] == [
        {"field": "expiresAt", "code": "IN_THE_PAST"}
    ]
    link = await _link(client, owner, content_id)
    revoked = await gql(
        client,
        "mutation($id: ID!) { revokeReviewLink(id: $id) { reviewLink { revokedAt } } }",
        {"id": link["reviewLink"]["id"]},
        headers=owner.headers,
    )
    assert revoked["data"]["revokeReviewLink"]["reviewLink"]["revokedAt"] is not None
    assert (await gql(client, VIEW, {"t": link["token"]}))["data"]["reviewLinkContent"] is None
    dead = (await gql(client, RESPOND, {"t": link["token"], "d": "COMMENT", "c": "hi"}))["data"][
        "respondToReviewLink"
    ]
    assert dead["errors"] == [{"field": "token", "code": "INVALID_LINK"}]
    fresh = await _link(client, owner, content_id)
    raw = uuid.UUID(base64.b64decode(fresh["reviewLink"]["id"]).decode().split(":", 1)[1])
    async with app.state.smartcontent.session_factory() as session, session.begin():
        await session.execute(
            update(ReviewLink)
            .where(ReviewLink.id == raw)
            .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
    assert (await gql(client, VIEW, {"t": fresh["token"]}))["data"]["reviewLinkContent"] is None
    assert (await gql(client, VIEW, {"t": "rv_made_up"}))["data"]["reviewLinkContent"] is None


async def _member_item_in_review(
    client: httpx.AsyncClient,
) -> tuple[Account, Account, str, str]:
    """(owner, member, workspace id, content id): an item the member wrote and submitted."""
    owner = await register(client)
    ws = await create_workspace(client, owner, "Agency")
    member = await join(client, owner, ws, "MEMBER", name="Mia")
    made = await gql(
        client,
        'mutation($ws: ID!) { createContent(input: {workspaceId: $ws, title: "Mine", body: "Mine."}) { content { id } } }',
        {"ws": ws},
        headers=member.headers,
    )
    content_id = made["data"]["createContent"]["content"]["id"]
    submitted = await gql(
        client,
        "mutation($id: ID!) { submitForReview(id: $id) { errors { code } } }",
        {"id": content_id},
        headers=member.headers,
    )
    assert submitted["data"]["submitForReview"]["errors"] == []
    return owner, member, ws, content_id


async def _respond(
    token: str, client: httpx.AsyncClient, decision: str, comment: str | None = None
) -> dict[str, Any]:
    body = await gql(client, RESPOND, {"t": token, "d": decision, "c": comment})
    payload: dict[str, Any] = body["data"]["respondToReviewLink"]
    return payload


async def test_a_members_link_cannot_approve(client: httpx.AsyncClient) -> None:
    """A member may not approve, so neither may a guest with the member's link: it can
    comment and send the item back, nothing more."""
    owner, member, _, content_id = await _member_item_in_review(client)
    link = await _link(client, member, content_id)
    assert link["errors"] == []
    refused = await _respond(link["token"], client, "APPROVE")
    assert refused["errors"] == [{"field": "decision", "code": "NOT_ALLOWED"}]
    assert refused["content"] is None
    status = await gql(
        client,
        "query($id: ID!) { content(id: $id) { status } }",
        {"id": content_id},
        headers=owner.headers,
    )
    assert status["data"]["content"]["status"] == "IN_REVIEW", "nothing changed"
    commented = await _respond(link["token"], client, "COMMENT", "Looks good to me")
    assert commented["errors"] == [] and commented["content"]["status"] == "IN_REVIEW"
    changes = await _respond(link["token"], client, "REQUEST_CHANGES", "Shorter please")
    assert changes["errors"] == [] and changes["content"]["status"] == "DRAFT"


async def test_an_admins_link_approves_while_its_creator_may(client: httpx.AsyncClient) -> None:
    owner, _, ws, content_id = await _member_item_in_review(client)
    admin = await join(client, owner, ws, "ADMIN", name="Ada")
    token = (await _link(client, admin, content_id))["token"]
    approved = await _respond(token, client, "APPROVE")
    assert approved["errors"] == [] and approved["content"]["status"] == "APPROVED"
    # Undoing the approval is an approver's decision too: after the creator is demoted
    # the link can no longer do either.
    demoted = await gql(
        client,
        "mutation($ws: ID!, $u: ID!) { updateMemberRole(workspaceId: $ws, userId: $u, role: MEMBER) { errors { code } } }",
        {"ws": ws, "u": admin.user_id},
        headers=owner.headers,
    )
    assert demoted["data"]["updateMemberRole"]["errors"] == []
    back = await _respond(token, client, "REQUEST_CHANGES", "Wait, one more thing")
    assert back["errors"] == [{"field": "decision", "code": "NOT_ALLOWED"}]
    assert (await _respond(token, client, "COMMENT", "Still a note"))["errors"] == []
