"""Tenant isolation matrix, generated from the schema.

Every root field of Query, Mutation and Subscription is called as: anonymous, a member of
another workspace, each role of the target workspace, and API keys with each allowed role.
The expected allow/deny comes from `app.access.OPERATION_ACCESS` and the PERMISSIONS table.
An operation without a rule, or without a call below, fails the test.

Longer than 400 lines because it holds one call per root operation: the matrix must list
them all in one place.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from graphql import GraphQLObjectType
from httpx_ws import aconnect_ws
from httpx_ws.transport import ASGIWebSocketTransport
from sqlalchemy import func, select
from starlette.applications import Starlette

from app.access import OPERATION_ACCESS, Audience
from app.models import (
    AbTest,
    AbTestArm,
    ApiKey,
    AudienceSegment,
    AuditEntry,
    Campaign,
    Content,
    ContentVariant,
    ContentVariation,
    ContentVersion,
    Generation,
    Invitation,
    Job,
    MediaAsset,
    Membership,
    MetricSnapshot,
    PostTarget,
    RefreshToken,
    ReviewLink,
    ScheduledPost,
    SocialAccount,
    User,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEventRow,
    Workspace,
)
from app.permissions import PERMISSIONS, Role
from app.platforms.publishing import Credentials
from app.security import passwords, tokens
from app.services.publishing.accounts import seal
from app.settings import Settings
from schema.schema import build_schema
from tests.helpers import PASSWORD

PASSWORD_HASH = passwords.hash_password(PASSWORD)
ROLES = ("OWNER", "ADMIN", "MEMBER", "VIEWER")
KEY_ROLES = ("ADMIN", "MEMBER", "VIEWER")
PRINCIPALS = (
    "anonymous",
    "outsider",
    *(r.lower() for r in ROLES),
    *(f"key_{r.lower()}" for r in KEY_ROLES),
)
DENY_CODES = {"UNAUTHENTICATED", "FORBIDDEN"}
NIL = uuid.UUID(int=0)


def _gid(type_name: str, value: uuid.UUID) -> str:
    return base64.b64encode(f"{type_name}:{value}".encode()).decode()


@dataclass
class World:
    """Workspace W with one user per role, a target member, a key, a job, an invitation;
    workspace X owned by the outsider."""

    workspace_id: uuid.UUID
    users: dict[str, uuid.UUID] = field(default_factory=dict)  # principal name -> user id
    emails: dict[str, str] = field(default_factory=dict)
    credentials: dict[str, str] = field(default_factory=dict)  # principal name -> bearer value
    refresh: dict[str, str] = field(default_factory=dict)
    target_user_id: uuid.UUID = NIL
    target_key_id: uuid.UUID = NIL
    job_id: uuid.UUID = NIL
    generation_job_id: uuid.UUID = NIL
    draft_id: uuid.UUID = NIL  # a DRAFT item (version 1) with an X variation
    review_id: uuid.UUID = NIL  # an IN_REVIEW item
    version_id: uuid.UUID = NIL
    variation_id: uuid.UUID = NIL
    campaign_id: uuid.UUID = NIL
    segment_id: uuid.UUID = NIL
    review_link_id: uuid.UUID = NIL
    review_token: str = ""
    media_id: uuid.UUID = NIL
    approved_id: uuid.UUID = NIL  # an APPROVED item, scheduled once (post_id)
    account_id: uuid.UUID = NIL  # a connected webhook account
    post_id: uuid.UUID = NIL  # a post with a PENDING target (pending_target_id)
    pending_target_id: uuid.UUID = NIL
    unknown_target_id: uuid.UUID = NIL  # a target whose outcome is UNKNOWN
    endpoint_id: uuid.UUID = NIL  # a webhook endpoint with one failed delivery
    webhook_delivery_id: uuid.UUID = NIL
    draft_variant_id: uuid.UUID = NIL  # variant B of the DRAFT item (createAbTest)
    ab_test_id: uuid.UUID = NIL  # a RUNNING A/B test of the APPROVED item and its variant B

    @property
    def ws(self) -> str:
        return _gid("Workspace", self.workspace_id)


async def _build_world(app: Starlette) -> World:
    state = app.state.smartcontent
    secret = state.keys.signing_secret
    world = World(workspace_id=uuid.uuid4())
    other_workspace = uuid.uuid4()
    async with state.session_factory() as session, session.begin():
        session.add_all(
            [
                Workspace(id=world.workspace_id, name="W", brand_voice={}),
                Workspace(id=other_workspace, name="X", brand_voice={}),
            ]
        )
        people = {"outsider": ("OWNER", other_workspace), "target": ("MEMBER", world.workspace_id)}
        people.update({r.lower(): (r, world.workspace_id) for r in ROLES})
        for name, (role, ws) in people.items():
            user_id = uuid.uuid4()
            email = f"{name}-{user_id.hex[:6]}@example.com"
            session.add(
                User(
                    id=user_id, email=email, name=name, password_hash=PASSWORD_HASH, token_version=0
                )
            )
            await session.flush()
            session.add(Membership(workspace_id=ws, user_id=user_id, role=role))
            if name == "target":
                world.target_user_id = user_id
                continue
            world.users[name], world.emails[name] = user_id, email
            access, _ = tokens.issue_access_token(secret, user_id, 0, 15)
            world.credentials[name] = f"Bearer {access}"
            refresh = tokens.new_opaque_token("rt_")
            session.add(
                RefreshToken(
                    id=uuid.uuid4(),
                    user_id=user_id,
                    family_id=uuid.uuid4(),
                    token_hash=tokens.token_hash(refresh),
                    expires_at=datetime.now(UTC) + timedelta(days=1),
                )
            )
            world.refresh[name] = refresh
        for role in (*KEY_ROLES, "VIEWER"):
            key_id, prefix = uuid.uuid4(), uuid.uuid4().hex[:10]
            secret_value = f"sk_{prefix}_{uuid.uuid4().hex}"
            session.add(
                ApiKey(
                    id=key_id,
                    workspace_id=world.workspace_id,
                    name=role,
                    role=role,
                    prefix=prefix,
                    secret_hash=tokens.token_hash(secret_value),
                )
            )
            key_name = f"key_{role.lower()}"
            if key_name in world.credentials:
                world.target_key_id = key_id  # the second VIEWER key: a revocation target
            else:
                world.credentials[key_name] = f"Bearer {secret_value}"
        owner_id = world.users["owner"]
        world.segment_id = uuid.uuid4()
        session.add(
            AudienceSegment(id=world.segment_id, workspace_id=world.workspace_id, name="Devs")
        )
        world.campaign_id = uuid.uuid4()
        session.add(Campaign(id=world.campaign_id, workspace_id=world.workspace_id, name="C"))
        for attr, status in (
            ("draft_id", "DRAFT"),
            ("review_id", "IN_REVIEW"),
            ("approved_id", "APPROVED"),
        ):
            item_id = uuid.uuid4()
            setattr(world, attr, item_id)
            session.add(
                Content(
                    id=item_id,
                    workspace_id=world.workspace_id,
                    title=f"{status} item",
                    body="Body text about launches",
                    content_type="SOCIAL_POST",
                    format="PLAIN",
                    status=status,
                    tags=[],
                    created_by_id=owner_id,
                    version=1,
                )
            )
        await session.flush()
        world.version_id = uuid.uuid4()
        session.add(
            ContentVersion(
                id=world.version_id,
                content_id=world.draft_id,
                version=1,
                title="DRAFT item",
                body="Body text about launches",
                format="PLAIN",
                created_by_id=owner_id,
            )
        )
        world.variation_id = uuid.uuid4()
        session.add(
            ContentVariation(
                id=world.variation_id,
                content_id=world.draft_id,
                workspace_id=world.workspace_id,
                platform="X",
                body="Short",
                media_ids=[],
            )
        )
        world.media_id = uuid.uuid4()
        session.add(
            MediaAsset(
                id=world.media_id,
                workspace_id=world.workspace_id,
                kind="IMAGE",
                mime_type="image/png",
                filename="x.png",
                size_bytes=10,
                sha256="0" * 64,
                storage_key=f"{world.workspace_id}/x.png",
                created_by_id=owner_id,
            )
        )
        world.review_link_id = uuid.uuid4()
        world.review_token = tokens.new_opaque_token("rv_")
        session.add(
            ReviewLink(
                id=world.review_link_id,
                content_id=world.review_id,
                workspace_id=world.workspace_id,
                token_hash=tokens.token_hash(world.review_token),
                expires_at=datetime.now(UTC) + timedelta(days=1),
            )
        )
        world.account_id = uuid.uuid4()
        session.add(
            SocialAccount(
                id=world.account_id,
                workspace_id=world.workspace_id,
                platform="WEBHOOK",
                name="Hook",
                status="CONNECTED",
                credentials=seal(
                    state.keys.box,
                    Credentials(extra={"url": "https://93.184.215.14/h", "secret": "s" * 20}),
                ),
            )
        )
        # An account whose token was refused: socialAccountStatusChanged starts with it.
        session.add(
            SocialAccount(
                id=uuid.uuid4(),
                workspace_id=world.workspace_id,
                platform="WEBHOOK",
                name="Refused",
                status="NEEDS_RECONNECT",
                status_reason="401",
            )
        )
        world.post_id = uuid.uuid4()
        due = datetime.now(UTC) + timedelta(days=1)
        session.add(
            ScheduledPost(
                id=world.post_id,
                workspace_id=world.workspace_id,
                content_id=world.approved_id,
                scheduled_at=due,
                timezone="Europe/Berlin",
            )
        )
        await session.flush()
        world.pending_target_id, world.unknown_target_id = uuid.uuid4(), uuid.uuid4()
        for target_id, status in (
            (world.pending_target_id, "PENDING"),
            (world.unknown_target_id, "UNKNOWN"),
        ):
            account_id = world.account_id
            if status == "UNKNOWN":  # one target per account and post
                account_id = uuid.uuid4()
                session.add(
                    SocialAccount(
                        id=account_id,
                        workspace_id=world.workspace_id,
                        platform="WEBHOOK",
                        name="Hook 2",
                        status="CONNECTED",
                        credentials=seal(state.keys.box, Credentials(extra={})),
                    )
                )
                await session.flush()
            session.add(
                PostTarget(
                    id=target_id,
                    post_id=world.post_id,
                    workspace_id=world.workspace_id,
                    social_account_id=account_id,
                    platform="WEBHOOK",
                    status=status,
                    scheduled_at=due,
                    timezone="Europe/Berlin",
                    next_attempt_at=due,
                    idempotency_key=f"sc-{target_id.hex}",
                )
            )
        # A published target with a metrics snapshot (contentPerformance, performanceUpdated).
        published_post, published_target = uuid.uuid4(), uuid.uuid4()
        went_out = datetime.now(UTC) - timedelta(days=1)
        session.add(
            ScheduledPost(
                id=published_post,
                workspace_id=world.workspace_id,
                content_id=world.approved_id,
                scheduled_at=went_out,
                timezone="UTC",
            )
        )
        await session.flush()
        session.add(
            PostTarget(
                id=published_target,
                post_id=published_post,
                workspace_id=world.workspace_id,
                social_account_id=world.account_id,
                platform="WEBHOOK",
                status="PUBLISHED",
                scheduled_at=went_out,
                timezone="UTC",
                next_attempt_at=went_out,
                idempotency_key=f"sc-{published_target.hex}",
                platform_post_id="wh-published",
                published_at=went_out,
            )
        )
        await session.flush()
        session.add(
            MetricSnapshot(
                workspace_id=world.workspace_id,
                content_id=world.approved_id,
                target_id=published_target,
                platform="WEBHOOK",
                step=0,
                collected_at=went_out + timedelta(hours=1),
                likes=3,
                raw={},
            )
        )
        world.endpoint_id, event_id = uuid.uuid4(), uuid.uuid4()
        world.webhook_delivery_id = uuid.uuid4()
        session.add(
            WebhookEndpoint(
                id=world.endpoint_id,
                workspace_id=world.workspace_id,
                url="https://93.184.215.14/events",
                events=["POST_PUBLISHED"],
                secret=state.keys.box.encrypt("whsec_test"),
            )
        )
        session.add(
            WebhookEventRow(
                id=event_id, workspace_id=world.workspace_id, event="POST_PUBLISHED", payload={}
            )
        )
        await session.flush()
        session.add(
            WebhookDelivery(
                id=world.webhook_delivery_id,
                workspace_id=world.workspace_id,
                endpoint_id=world.endpoint_id,
                event_id=event_id,
                event="POST_PUBLISHED",
                status="FAILED",
                attempts=1,
                response_status=410,
            )
        )
        world.job_id = uuid.uuid4()
        session.add(
            Job(
                id=world.job_id,
                workspace_id=world.workspace_id,
                kind="ping",
                status="QUEUED",
                payload={},
                max_attempts=3,
                attempts=0,
                event_seq=0,
                progress=0.0,
            )
        )
        world.generation_job_id = uuid.uuid4()
        session.add(
            Job(
                id=world.generation_job_id,
                workspace_id=world.workspace_id,
                kind="generate_content",
                status="QUEUED",
                payload={},
                max_attempts=3,
                attempts=0,
                event_seq=0,
                progress=0.0,
            )
        )
        await session.flush()
        session.add(
            Generation(
                workspace_id=world.workspace_id,
                job_id=world.generation_job_id,
                operation="GENERATE",
                content_type="SOCIAL_POST",
                request={},
                fingerprint="0" * 64,
                prompt_template="generate_social_post",
                prompt_version=1,
            )
        )
        approved_variant = uuid.uuid4()
        world.draft_variant_id, world.ab_test_id = uuid.uuid4(), uuid.uuid4()
        for variant_id, item_id in (
            (world.draft_variant_id, world.draft_id),
            (approved_variant, world.approved_id),
        ):
            session.add(
                ContentVariant(
                    id=variant_id,
                    workspace_id=world.workspace_id,
                    content_id=item_id,
                    label="B",
                    title="B",
                    body="Variant B",
                    angle="a",
                    based_on_version=1,
                )
            )
        session.add(
            AbTest(
                id=world.ab_test_id,
                workspace_id=world.workspace_id,
                content_id=world.approved_id,
                metric="CTR",
                status="RUNNING",
                started_at=datetime.now(UTC),
            )
        )
        await session.flush()
        session.add_all(
            [
                AbTestArm(test_id=world.ab_test_id, position=0, label="A", share=0.5),
                AbTestArm(
                    test_id=world.ab_test_id,
                    position=1,
                    label="B",
                    variant_id=approved_variant,
                    share=0.5,
                ),
            ]
        )
    return world


Call = tuple[str, Callable[[World, str], dict[str, Any]]]

CALLS: dict[str, Call] = {
    "health": ("{ health { version } }", lambda w, p: {}),
    "node": ("query($id: ID!) { node(id: $id) { id } }", lambda w, p: {"id": w.ws}),
    "me": ("{ me { id } }", lambda w, p: {}),
    "workspaces": ("{ workspaces(first: 5) { edges { node { id } } } }", lambda w, p: {}),
    "workspace": ("query($id: ID!) { workspace(id: $id) { id name } }", lambda w, p: {"id": w.ws}),
    "apiKeys": (
        "query($ws: ID!) { apiKeys(workspaceId: $ws) { edges { node { prefix } } } }",
        lambda w, p: {"ws": w.ws},
    ),
    "auditLog": (
        "query($ws: ID!) { auditLog(workspaceId: $ws) { edges { node { action } } } }",
        lambda w, p: {"ws": w.ws},
    ),
    "job": ("query($id: ID!) { job(id: $id) { id } }", lambda w, p: {"id": _gid("Job", w.job_id)}),
    "register": (
        "mutation($i: RegisterInput!) { register(input: $i) { errors { code } } }",
        lambda w, p: {
            "i": {
                "email": f"new-{uuid.uuid4().hex[:8]}@example.com",
                "password": PASSWORD,
                "name": "N",
            }
        },
    ),
    "login": (
        "mutation($i: LoginInput!) { login(input: $i) { errors { code } } }",
        lambda w, p: {"i": {"email": w.emails["member"], "password": PASSWORD}},
    ),
    "refreshToken": (
        "mutation($t: String!) { refreshToken(refreshToken: $t) { errors { code } } }",
        lambda w, p: {"t": w.refresh["member"]},
    ),
    "logout": (
        "mutation($t: String!) { logout(refreshToken: $t) { errors { code } } }",
        lambda w, p: {"t": w.refresh.get(p, w.refresh["member"])},
    ),
    "requestPasswordReset": (
        "mutation($e: String!) { requestPasswordReset(email: $e) { errors { code } } }",
        lambda w, p: {"e": w.emails["member"]},
    ),
    "resetPassword": (
        "mutation($i: ResetPasswordInput!) { resetPassword(input: $i) { errors { code } } }",
        lambda w, p: {"i": {"token": "pr_bogus", "newPassword": PASSWORD + "x"}},
    ),
    "updateProfile": (
        'mutation { updateProfile(input: {name: "Renamed"}) { errors { code } } }',
        lambda w, p: {},
    ),
    "changePassword": (
        "mutation($i: ChangePasswordInput!) { changePassword(input: $i) { errors { code } } }",
        lambda w, p: {"i": {"currentPassword": PASSWORD, "newPassword": PASSWORD + " and more"}},
    ),
    "enableTwoFactor": ("mutation { enableTwoFactor { errors { code } } }", lambda w, p: {}),
    "confirmTwoFactor": (
        'mutation { confirmTwoFactor(code: "000000") { errors { code } } }',
        lambda w, p: {},
    ),
    "disableTwoFactor": (
        "mutation($p: String!) {"
        ' disableTwoFactor(password: $p, code: "000000") { errors { code } } }',
        lambda w, p: {"p": PASSWORD},
    ),
    "exportMyData": ("mutation { exportMyData { errors { code } } }", lambda w, p: {}),
    "deleteAccount": (
        "mutation($p: String!) { deleteAccount(password: $p) { errors { code } } }",
        lambda w, p: {"p": PASSWORD},
    ),
    "createWorkspace": (
        'mutation { createWorkspace(input: {name: "Mine"}) { errors { code } } }',
        lambda w, p: {},
    ),
    "acceptInvitation": (
        'mutation { acceptInvitation(token: "inv_bogus") { errors { code } } }',
        lambda w, p: {},
    ),
    "updateWorkspace": (
        'mutation($id: ID!) { updateWorkspace(id: $id, input: {name: "W2"}) { errors { code } } }',
        lambda w, p: {"id": w.ws},
    ),
    "inviteMember": (
        "mutation($ws: ID!, $e: String!) { inviteMember(workspaceId: $ws, email: $e, role: VIEWER)"
        " { errors { code } } }",
        lambda w, p: {"ws": w.ws, "e": f"invitee-{uuid.uuid4().hex[:6]}@example.com"},
    ),
    "updateMemberRole": (
        "mutation($ws: ID!, $u: ID!) { updateMemberRole(workspaceId: $ws, userId: $u, role: VIEWER)"
        " { errors { code } } }",
        lambda w, p: {"ws": w.ws, "u": _gid("User", w.target_user_id)},
    ),
    "removeMember": (
        "mutation($ws: ID!, $u: ID!) { removeMember(workspaceId: $ws, userId: $u)"
        " { errors { code } } }",
        lambda w, p: {"ws": w.ws, "u": _gid("User", w.target_user_id)},
    ),
    "transferOwnership": (
        "mutation($ws: ID!, $u: ID!) { transferOwnership(workspaceId: $ws, userId: $u)"
        " { errors { code } } }",
        lambda w, p: {"ws": w.ws, "u": _gid("User", w.target_user_id)},
    ),
    "createApiKey": (
        "mutation($ws: ID!) {"
        ' createApiKey(workspaceId: $ws, name: "k", role: VIEWER) { errors { code } } }',
        lambda w, p: {"ws": w.ws},
    ),
    "revokeApiKey": (
        "mutation($id: ID!) { revokeApiKey(id: $id) { errors { code } } }",
        lambda w, p: {"id": _gid("ApiKey", w.target_key_id)},
    ),
    "ping": (
        "mutation($ws: ID!) { ping(workspaceId: $ws) { errors { code } } }",
        lambda w, p: {"ws": w.ws},
    ),
    "generateContent": (
        'mutation($ws: ID!) { generateContent(input: {workspaceId: $ws, brief: "Tea"}) { job { id } errors { code } } }',
        lambda w, p: {"ws": w.ws},
    ),
    "refineContent": (
        'mutation($id: ID!) { refineContent(contentId: $id, instruction: "shorter") { job { id } errors { code } } }',
        lambda w, p: {"id": _gid("Content", w.draft_id)},
    ),
    "transformContent": (
        "mutation($id: ID!) { transformContent(contentId: $id, platforms: [X]) { job { id } errors { code } } }",
        lambda w, p: {"id": _gid("Content", w.draft_id)},
    ),
    "personalizeContent": (
        "mutation($id: ID!, $s: [ID!]!) { personalizeContent(contentId: $id, segmentIds: $s)"
        " { job { id } errors { code } } }",
        lambda w, p: {
            "id": _gid("Content", w.draft_id),
            "s": [_gid("AudienceSegment", w.segment_id)],
        },
    ),
    "generateVariants": (
        "mutation($id: ID!) { generateVariants(contentId: $id, count: 2)"
        " { job { id } errors { code } } }",
        lambda w, p: {"id": _gid("Content", w.draft_id)},
    ),
    "cancelGeneration": (
        "mutation($id: ID!) { cancelGeneration(jobId: $id) { job { status } errors { code } } }",
        lambda w, p: {"id": _gid("Job", w.generation_job_id)},
    ),
    "generationJobs": (
        "query($ws: ID!) { generationJobs(workspaceId: $ws) { edges { node { operation } } } }",
        lambda w, p: {"ws": w.ws},
    ),
    "generationJob": (
        "query($id: ID!) { generationJob(id: $id) { promptTemplate } }",
        lambda w, p: {"id": _gid("Job", w.generation_job_id)},
    ),
    "content": (
        "query($id: ID!) { content(id: $id) { id } }",
        lambda w, p: {"id": _gid("Content", w.draft_id)},
    ),
    "contents": (
        "query($ws: ID!) { contents(workspaceId: $ws) { edges { node { id } } } }",
        lambda w, p: {"ws": w.ws},
    ),
    "searchContent": (
        'query($ws: ID!) { searchContent(workspaceId: $ws, query: "launches") { score } }',
        lambda w, p: {"ws": w.ws},
    ),
    "campaigns": (
        "query($ws: ID!) { campaigns(workspaceId: $ws) { edges { node { id } } } }",
        lambda w, p: {"ws": w.ws},
    ),
    "campaign": (
        "query($id: ID!) { campaign(id: $id) { id } }",
        lambda w, p: {"id": _gid("Campaign", w.campaign_id)},
    ),
    "createContent": (
        'mutation($ws: ID!) { createContent(input: {workspaceId: $ws, title: "T", body: "B"})'
        " { errors { code } } }",
        lambda w, p: {"ws": w.ws},
    ),
    "updateContent": (
        'mutation($id: ID!) { updateContent(id: $id, input: {body: "New"}, expectedVersion: 1)'
        " { errors { code } } }",
        lambda w, p: {"id": _gid("Content", w.draft_id)},
    ),
    "deleteContent": (
        "mutation($id: ID!) { deleteContent(id: $id) { errors { code } } }",
        lambda w, p: {"id": _gid("Content", w.draft_id)},
    ),
    "restoreContent": (
        "mutation($id: ID!) { restoreContent(id: $id) { errors { code } } }",
        lambda w, p: {"id": _gid("Content", w.draft_id)},
    ),
    "restoreContentVersion": (
        "mutation($id: ID!) { restoreContentVersion(versionId: $id) { errors { code } } }",
        lambda w, p: {"id": _gid("ContentVersion", w.version_id)},
    ),
    "submitForReview": (
        "mutation($id: ID!) { submitForReview(id: $id) { errors { code } } }",
        lambda w, p: {"id": _gid("Content", w.draft_id)},
    ),
    "approveContent": (
        "mutation($id: ID!) { approveContent(id: $id) { errors { code } } }",
        lambda w, p: {"id": _gid("Content", w.review_id)},
    ),
    "requestChanges": (
        'mutation($id: ID!) { requestChanges(id: $id, comment: "Shorter") { errors { code } } }',
        lambda w, p: {"id": _gid("Content", w.review_id)},
    ),
    "archiveContent": (
        "mutation($id: ID!) { archiveContent(id: $id) { errors { code } } }",
        lambda w, p: {"id": _gid("Content", w.draft_id)},
    ),
    # Unarchiving a draft is a workflow error for those allowed; the decision comes first.
    "unarchiveContent": (
        "mutation($id: ID!) { unarchiveContent(id: $id) { errors { code } } }",
        lambda w, p: {"id": _gid("Content", w.draft_id)},
    ),
    "addComment": (
        'mutation($id: ID!) { addComment(contentId: $id, body: "Nice") { errors { code } } }',
        lambda w, p: {"id": _gid("Content", w.draft_id)},
    ),
    "createVariation": (
        "mutation($id: ID!) { createVariation(contentId: $id, platform: LINKEDIN)"
        " { errors { code } } }",
        lambda w, p: {"id": _gid("Content", w.draft_id)},
    ),
    "updateVariation": (
        'mutation($id: ID!) { updateVariation(id: $id, input: {body: "Hi"}) { errors { code } } }',
        lambda w, p: {"id": _gid("ContentVariation", w.variation_id)},
    ),
    "createCampaign": (
        'mutation($ws: ID!) { createCampaign(workspaceId: $ws, name: "Spring")'
        " { errors { code } } }",
        lambda w, p: {"ws": w.ws},
    ),
    "updateCampaign": (
        'mutation($id: ID!) { updateCampaign(id: $id, input: {name: "Renamed"})'
        " { errors { code } } }",
        lambda w, p: {"id": _gid("Campaign", w.campaign_id)},
    ),
    "deleteCampaign": (
        "mutation($id: ID!) { deleteCampaign(id: $id) { errors { code } } }",
        lambda w, p: {"id": _gid("Campaign", w.campaign_id)},
    ),
    "audienceSegments": (
        "query($ws: ID!) { audienceSegments(workspaceId: $ws) { edges { node { id } } } }",
        lambda w, p: {"ws": w.ws},
    ),
    "createAudienceSegment": (
        'mutation($ws: ID!) { createAudienceSegment(workspaceId: $ws, name: "CTOs") { errors { code } } }',
        lambda w, p: {"ws": w.ws},
    ),
    "updateAudienceSegment": (
        'mutation($id: ID!) { updateAudienceSegment(id: $id, input: {description: "d"}) { errors { code } } }',
        lambda w, p: {"id": _gid("AudienceSegment", w.segment_id)},
    ),
    "deleteAudienceSegment": (
        "mutation($id: ID!) { deleteAudienceSegment(id: $id) { errors { code } } }",
        lambda w, p: {"id": _gid("AudienceSegment", w.segment_id)},
    ),
    "mediaAssets": (
        "query($ws: ID!) { mediaAssets(workspaceId: $ws) { edges { node { id } } } }",
        lambda w, p: {"ws": w.ws},
    ),
    "uploadMedia": (
        "mutation($ws: ID!, $file: Upload!) { uploadMedia(workspaceId: $ws, file: $file) { errors { code } } }",
        lambda w, p: {"ws": w.ws, "file": None},
    ),
    "importSchedule": (
        "mutation($ws: ID!, $file: Upload!) { importSchedule(workspaceId: $ws, file: $file) { report { total } errors { code } } }",
        lambda w, p: {"ws": w.ws, "file": None},
    ),
    "updateMedia": (
        'mutation($id: ID!) { updateMedia(id: $id, altText: "alt") { errors { code } } }',
        lambda w, p: {"id": _gid("MediaAsset", w.media_id)},
    ),
    "deleteMedia": (
        "mutation($id: ID!) { deleteMedia(id: $id) { errors { code } } }",
        lambda w, p: {"id": _gid("MediaAsset", w.media_id)},
    ),
    "setContentMedia": (
        "mutation($c: ID!, $m: [ID!]!) { setContentMedia(contentId: $c, mediaIds: $m) { errors { code } } }",
        lambda w, p: {"c": _gid("Content", w.draft_id), "m": [_gid("MediaAsset", w.media_id)]},
    ),
    "reviewLinks": (
        "query($id: ID!) { reviewLinks(contentId: $id) { id } }",
        lambda w, p: {"id": _gid("Content", w.review_id)},
    ),
    "createReviewLink": (
        "mutation($id: ID!) { createReviewLink(contentId: $id) { url errors { code } } }",
        lambda w, p: {"id": _gid("Content", w.review_id)},
    ),
    "revokeReviewLink": (
        "mutation($id: ID!) { revokeReviewLink(id: $id) { errors { code } } }",
        lambda w, p: {"id": _gid("ReviewLink", w.review_link_id)},
    ),
    "reviewLinkContent": (
        "query($t: String!) { reviewLinkContent(token: $t) { title } }",
        lambda w, p: {"t": w.review_token},
    ),
    "respondToReviewLink": (
        'mutation($t: String!) { respondToReviewLink(token: $t, decision: COMMENT, reviewerName: "Client", comment: "Looks good") { errors { code } } }',
        lambda w, p: {"t": w.review_token},
    ),
    "socialAccounts": (
        "query($ws: ID!) { socialAccounts(workspaceId: $ws) { edges { node { id name } } } }",
        lambda w, p: {"ws": w.ws},
    ),
    "scheduledPosts": (
        "query($ws: ID!) { scheduledPosts(workspaceId: $ws) { edges { node { id status } } } }",
        lambda w, p: {"ws": w.ws},
    ),
    "calendar": (
        'query($ws: ID!, $f: DateTime!, $t: DateTime!) { calendar(workspaceId: $ws, from: $f, to: $t, timezone: "Europe/Berlin") { date posts { id } } }',
        lambda w, p: {
            "ws": w.ws,
            "f": datetime.now(UTC).isoformat(),
            "t": (datetime.now(UTC) + timedelta(days=3)).isoformat(),
        },
    ),
    "connectWebhookAccount": (
        'mutation($ws: ID!) { connectWebhookAccount(input: {workspaceId: $ws, name: "H", url: "https://93.184.215.14/hook", secret: "0123456789abcdefgh"}) { account { id } errors { code } } }',
        lambda w, p: {"ws": w.ws},
    ),
    "startAccountConnection": (
        "mutation($ws: ID!) { startAccountConnection(workspaceId: $ws, platform: X) { authorizeUrl errors { code } } }",
        lambda w, p: {"ws": w.ws},
    ),
    "connectBlueskyAccount": (
        'mutation($ws: ID!) { connectBlueskyAccount(input: {workspaceId: $ws, handle: "a.bsky.social", appPassword: ""}) { account { id } errors { code } } }',
        lambda w, p: {"ws": w.ws},
    ),
    "connectEmailAccount": (
        'mutation($ws: ID!) { connectEmailAccount(input: {workspaceId: $ws, name: "News", fromAddress: "news@example.com", recipients: ["a@example.com"]}) { account { id } errors { code } } }',
        lambda w, p: {"ws": w.ws},
    ),
    "disconnectSocialAccount": (
        "mutation($id: ID!) { disconnectSocialAccount(id: $id) { account { status } errors { code } } }",
        lambda w, p: {"id": _gid("SocialAccount", w.account_id)},
    ),
    "schedulePost": (
        "mutation($c: ID!, $a: ID!, $t: DateTime!) { schedulePost(input: {contentId: $c, socialAccountId: $a, scheduledAt: $t}) { post { id } errors { code } } }",
        lambda w, p: {
            "c": _gid("Content", w.approved_id),
            "a": _gid("SocialAccount", w.account_id),
            "t": (datetime.now(UTC) + timedelta(days=2)).isoformat(),
        },
    ),
    "reschedulePost": (
        "mutation($id: ID!, $t: DateTime!) { reschedulePost(input: {postId: $id, scheduledAt: $t}) { post { id } errors { code } } }",
        lambda w, p: {
            "id": _gid("ScheduledPost", w.post_id),
            "t": (datetime.now(UTC) + timedelta(days=3)).isoformat(),
        },
    ),
    "cancelScheduledPost": (
        "mutation($id: ID!) { cancelScheduledPost(id: $id) { post { id } errors { code } } }",
        lambda w, p: {"id": _gid("ScheduledPost", w.post_id)},
    ),
    "publishNow": (
        "mutation($id: ID!) { publishNow(id: $id) { post { id } errors { code } } }",
        lambda w, p: {"id": _gid("ScheduledPost", w.post_id)},
    ),
    "confirmPostPublished": (
        "mutation($id: ID!) { confirmPostPublished(id: $id) { target { status } errors { code } } }",
        lambda w, p: {"id": _gid("PostTarget", w.unknown_target_id)},
    ),
    "retryPost": (
        "mutation($id: ID!) { retryPost(id: $id) { target { status } errors { code } } }",
        lambda w, p: {"id": _gid("PostTarget", w.unknown_target_id)},
    ),
    "setPostingSlots": (
        'mutation($id: ID!) { setPostingSlots(input: {socialAccountId: $id, timezone: "Europe/Berlin", slots: [{weekday: 0, time: "09:00"}]}) { slots { weekday time } errors { code } } }',
        lambda w, p: {"id": _gid("SocialAccount", w.account_id)},
    ),
    "addToQueue": (
        "mutation($c: ID!, $a: ID!) { addToQueue(input: {contentId: $c, socialAccountId: $a}) { post { id } errors { code } } }",
        lambda w, p: {
            "c": _gid("Content", w.approved_id),
            "a": _gid("SocialAccount", w.account_id),
        },
    ),
    "contentPerformance": (
        "query($id: ID!) { contentPerformance(contentId: $id) { impressions engagementRate"
        " platforms { platform targets { target { id } } history { likes } } } }",
        lambda w, p: {"id": _gid("Content", w.approved_id)},
    ),
    "predictEngagement": (
        'query($ws: ID!) { predictEngagement(input: {workspaceId: $ws, text: "Tea", platform: X, contentType: SOCIAL_POST, scheduledAt: "2030-01-01T09:00:00Z"}) { basis } }',
        lambda w, p: {"ws": w.ws},
    ),
    "optimalPostingTimes": (
        'query($ws: ID!) { optimalPostingTimes(workspaceId: $ws, platform: X, timezone: "Europe/Berlin") { source sampleSize } }',
        lambda w, p: {"ws": w.ws},
    ),
    "insights": (
        'query($ws: ID!) { insights(workspaceId: $ws, from: "2026-01-01T00:00:00Z", to: "2026-12-01T00:00:00Z") { statement } }',
        lambda w, p: {"ws": w.ws},
    ),
    "engagementTrends": (
        'query($ws: ID!) { engagementTrends(workspaceId: $ws, interval: DAY, from: "2026-11-01T00:00:00Z", to: "2026-11-08T00:00:00Z") { bucketStart views } }',
        lambda w, p: {"ws": w.ws},
    ),
    "recommendations": (
        "query($ws: ID!) { recommendations(workspaceId: $ws, kind: CONTENT_TO_REPURPOSE, first: 5) { kind score contents { id } } }",
        lambda w, p: {"ws": w.ws},
    ),
    "compareContent": (
        "query($a: ID!, $b: ID!) { compareContent(ids: [$a, $b]) { metrics { metric winnerId } items { events { views } } } }",
        lambda w, p: {"a": _gid("Content", w.approved_id), "b": _gid("Content", w.draft_id)},
    ),
    "campaignPerformance": (
        "query($id: ID!) { campaignPerformance(campaignId: $id) { publishedPosts figures { likes } events { views } contents { rank } } }",
        lambda w, p: {"id": _gid("Campaign", w.campaign_id)},
    ),
    "analyticsDashboard": (
        'query($ws: ID!) { analyticsDashboard(workspaceId: $ws, from: "2026-11-01T00:00:00Z", to: "2026-11-08T00:00:00Z") { posts impressions topPerformers { content { id } } } }',
        lambda w, p: {"ws": w.ws},
    ),
    "exportAnalytics": (
        'query($ws: ID!) { exportAnalytics(workspaceId: $ws, from: "2026-11-01T00:00:00Z", to: "2026-11-08T00:00:00Z", format: CSV) { url } }',
        lambda w, p: {"ws": w.ws},
    ),
    "engagementModels": (
        "query($ws: ID!) { engagementModels(workspaceId: $ws) { version } }",
        lambda w, p: {"ws": w.ws},
    ),
    "trainEngagementModel": (
        "mutation($ws: ID!) { trainEngagementModel(workspaceId: $ws) { job { id } errors { code } } }",
        lambda w, p: {"ws": w.ws},
    ),
    "recordEngagementEvents": (
        "mutation($ws: ID!, $c: ID!, $id: String!, $t: DateTime!) { recordEngagementEvents(workspaceId: $ws, events: [{id: $id, contentId: $c, type: VIEW, occurredAt: $t}]) { accepted refusals { reason } errors { code } } }",
        lambda w, p: {
            "ws": w.ws,
            "c": _gid("Content", w.draft_id),
            "id": f"matrix-{p}",
            "t": datetime.now(UTC).isoformat(),
        },
    ),
    "abTest": (
        "query($id: ID!) { abTest(id: $id) { id arms { label trials pValue } verdict { reason } } }",
        lambda w, p: {"id": _gid("AbTest", w.ab_test_id)},
    ),
    "abTests": (
        "query($ws: ID!) { abTests(workspaceId: $ws) { edges { node { id labels } } } }",
        lambda w, p: {"ws": w.ws},
    ),
    "abTestAssignment": (
        'query($id: ID!) { abTestAssignment(testId: $id, visitorKey: "visitor-1") { label } }',
        lambda w, p: {"id": _gid("AbTest", w.ab_test_id)},
    ),
    "createAbTest": (
        "mutation($c: ID!, $v: ID!) { createAbTest(input: {contentId: $c, variantIds: [$v], metric: CTR}) { abTest { id } errors { code } } }",
        lambda w, p: {
            "c": _gid("Content", w.draft_id),
            "v": _gid("ContentVariant", w.draft_variant_id),
        },
    ),
    "stopAbTest": (
        "mutation($id: ID!) { stopAbTest(id: $id) { abTest { status } errors { code } } }",
        lambda w, p: {"id": _gid("AbTest", w.ab_test_id)},
    ),
    "webhookEndpoints": (
        "query($ws: ID!) { webhookEndpoints(workspaceId: $ws) { edges { node { id url } } } }",
        lambda w, p: {"ws": w.ws},
    ),
    "webhookDeliveries": (
        "query($id: ID!) { webhookDeliveries(endpointId: $id) { edges { node { id status } } } }",
        lambda w, p: {"id": _gid("WebhookEndpoint", w.endpoint_id)},
    ),
    "createWebhookEndpoint": (
        'mutation($ws: ID!) { createWebhookEndpoint(input: {workspaceId: $ws, url: "https://93.184.215.14/in", events: [POST_FAILED]}) { secret errors { code } } }',
        lambda w, p: {"ws": w.ws},
    ),
    "updateWebhookEndpoint": (
        "mutation($id: ID!) { updateWebhookEndpoint(input: {id: $id, active: false}) { endpoint { active } errors { code } } }",
        lambda w, p: {"id": _gid("WebhookEndpoint", w.endpoint_id)},
    ),
    "deleteWebhookEndpoint": (
        "mutation($id: ID!) { deleteWebhookEndpoint(id: $id) { deletedId errors { code } } }",
        lambda w, p: {"id": _gid("WebhookEndpoint", w.endpoint_id)},
    ),
    "rotateWebhookSecret": (
        "mutation($id: ID!) { rotateWebhookSecret(id: $id) { secret errors { code } } }",
        lambda w, p: {"id": _gid("WebhookEndpoint", w.endpoint_id)},
    ),
    "redeliverWebhook": (
        "mutation($id: ID!) { redeliverWebhook(deliveryId: $id) { delivery { id status } errors { code } } }",
        lambda w, p: {"id": _gid("WebhookDelivery", w.webhook_delivery_id)},
    ),
    "postStatusChanged": (
        "subscription($ws: ID!) { postStatusChanged(workspaceId: $ws) { status target { id } } }",
        lambda w, p: {"ws": w.ws},
    ),
    "performanceUpdated": (
        'subscription($ws: ID!) { performanceUpdated(workspaceId: $ws, since: "2000-01-01T00:00:00Z")'
        " { likes target { id } } }",
        lambda w, p: {"ws": w.ws},
    ),
    "socialAccountStatusChanged": (
        "subscription($ws: ID!) { socialAccountStatusChanged(workspaceId: $ws) { status account { id } } }",
        lambda w, p: {"ws": w.ws},
    ),
    "jobEvents": (
        "subscription($id: ID!) { jobEvents(id: $id) { status } }",
        lambda w, p: {"id": _gid("Job", w.job_id)},
    ),
    "generationProgress": (
        "subscription($id: ID!) { generationProgress(jobId: $id) { status } }",
        lambda w, p: {"id": _gid("Job", w.generation_job_id)},
    ),
    "workspaceEvents": (
        "subscription($ws: ID!) { workspaceEvents(workspaceId: $ws) { snapshot jobs { jobId } } }",
        lambda w, p: {"ws": w.ws},
    ),
}


def _root_fields() -> dict[str, str]:
    schema = build_schema(Settings(_env_file=None))._schema  # type: ignore[call-arg]
    out: dict[str, str] = {}
    for kind, root in (
        ("query", schema.query_type),
        ("mutation", schema.mutation_type),
        ("subscription", schema.subscription_type),
    ):
        assert isinstance(root, GraphQLObjectType)
        out.update({name: kind for name in root.fields})
    return out


ROOT_FIELDS = _root_fields()


@pytest.mark.no_db
def test_every_operation_has_a_rule_and_a_call() -> None:
    assert set(ROOT_FIELDS) - set(OPERATION_ACCESS) == set(), "add a rule to app/access.py"
    assert set(OPERATION_ACCESS) - set(ROOT_FIELDS) == set(), "stale rule in app/access.py"
    assert set(ROOT_FIELDS) - set(CALLS) == set(), "add a call to this test's CALLS"


def expected_allowed(operation: str, principal: str) -> bool:
    rule = OPERATION_ACCESS[operation]
    if rule.audience is Audience.PUBLIC:
        return True
    if principal == "anonymous":
        return False
    if rule.audience is Audience.SIGNED_IN:
        return True
    if rule.audience is Audience.USER:
        return not principal.startswith("key_")
    if principal == "outsider":
        return False
    assert rule.action is not None
    role = Role[principal.removeprefix("key_").upper()]
    return role >= PERMISSIONS[rule.action]


def _tiny_png() -> bytes:
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (4, 4)).save(buffer, "PNG")
    return buffer.getvalue()


async def _run_http(
    app: Starlette, document: str, variables: dict[str, Any], credential: str | None
) -> dict[str, Any]:
    headers = {"Authorization": credential} if credential else {}
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://t"
    ) as client:
        if "file" in variables:  # a GraphQL multipart request, as uploads are sent
            operations = json.dumps({"query": document, "variables": variables})
            response = await client.post(
                "/graphql",
                data={"operations": operations, "map": json.dumps({"0": ["variables.file"]})},
                files={"0": ("x.png", _tiny_png(), "image/png")},
                headers={**headers, "Apollo-Require-Preflight": "true"},
            )
        else:
            response = await client.post(
                "/graphql", json={"query": document, "variables": variables}, headers=headers
            )
    assert response.status_code in (200, 401, 403), response.text
    body: dict[str, Any] = response.json()
    return body


async def _run_ws(
    app: Starlette, document: str, variables: dict[str, Any], credential: str | None
) -> dict[str, Any]:
    params = {"authorization": credential} if credential else {}
    async with (
        httpx.AsyncClient(transport=ASGIWebSocketTransport(app), base_url="http://t") as client,
        aconnect_ws("http://t/graphql", client, subprotocols=["graphql-transport-ws"]) as ws,
    ):
        await ws.send_json({"type": "connection_init", "payload": params})
        assert (await ws.receive_json(timeout=5))["type"] == "connection_ack"
        await ws.send_json(
            {"id": "1", "type": "subscribe", "payload": {"query": document, "variables": variables}}
        )
        message: dict[str, Any] = await ws.receive_json(timeout=5)
        await ws.send_json({"id": "1", "type": "complete"})
    if message["type"] == "error":
        return {"errors": message["payload"]}
    payload: dict[str, Any] = message["payload"]
    return payload


def _denied(operation: str, body: dict[str, Any]) -> bool:
    codes = {e.get("extensions", {}).get("code") for e in body.get("errors") or []}
    if OPERATION_ACCESS[operation].audience is Audience.HIDDEN:
        data = body.get("data") or {}
        return bool(codes & (DENY_CODES | {"NOT_FOUND"})) or data.get(operation, "absent") is None
    assert codes <= DENY_CODES | {None}, body  # anything else is a bug, not a decision
    return bool(codes & DENY_CODES)


def _user_errors(operation: str, body: dict[str, Any]) -> list[Any]:
    payload = (body.get("data") or {}).get(operation)
    return payload.get("errors", []) if isinstance(payload, dict) else []


async def _audit_count(app: Starlette) -> int:
    async with app.state.smartcontent.session_factory() as session:
        return int(await session.scalar(select(func.count()).select_from(AuditEntry)) or 0)


@pytest.mark.parametrize("principal", PRINCIPALS)
@pytest.mark.parametrize("operation", sorted(ROOT_FIELDS))
async def test_isolation(app: Starlette, operation: str, principal: str) -> None:
    world = await _build_world(app)
    document, make_variables = CALLS[operation]
    credential = world.credentials.get(principal)
    before = await _audit_count(app)
    runner = _run_ws if ROOT_FIELDS[operation] == "subscription" else _run_http
    body = await runner(app, document, make_variables(world, principal), credential)
    allowed = expected_allowed(operation, principal)
    assert _denied(operation, body) is not allowed, (operation, principal, body)
    if allowed and ROOT_FIELDS[operation] == "mutation" and not _user_errors(operation, body):
        assert await _audit_count(app) > before, f"{operation} changed data without an audit entry"
    if not allowed:
        # A refused call changes nothing, and leaves no trace of the target's data.
        async with app.state.smartcontent.session_factory() as session:
            members = await session.scalar(
                select(func.count())
                .select_from(Membership)
                .where(Membership.workspace_id == world.workspace_id)
            )
            invitations = await session.scalar(select(func.count()).select_from(Invitation))
        assert members == 5 and invitations == 0
