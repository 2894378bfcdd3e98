"""Workspaces, members, invitations, API keys and audit entries."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime
from typing import Annotated, Any

import strawberry
from strawberry import relay

from app.models import Invitation as InvitationRow
from app.models import Membership as MembershipRow
from app.models import Workspace as WorkspaceRow
from app.permissions import Action
from app.services.workspaces import teams as workspace_service
from schema.context import Context
from schema.ids import to_global_id
from schema.loaders.base import uuid_or_nil
from schema.pagination import Connection, page_size
from schema.types.errors import UserError
from schema.types.identity import User, load_user
from schema.types.vocabulary import Role


@strawberry.type(description="How content from this workspace should sound.")
class BrandVoice:
    tone: str = strawberry.field(description="E.g. 'friendly, expert, no jargon'.")
    style_notes: str = strawberry.field(description="Free-form guidance for writers and the AI.")
    keywords: list[str] = strawberry.field(description="Words and phrases to use.")
    banned_words: list[str] = strawberry.field(description="Words never to use.")
    example_posts: list[str] = strawberry.field(description="Posts that sound right.")

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> BrandVoice:
        return cls(
            tone=data.get("tone", ""),
            style_notes=data.get("style_notes", ""),
            keywords=list(data.get("keywords", [])),
            banned_words=list(data.get("banned_words", [])),
            example_posts=list(data.get("example_posts", [])),
        )


@strawberry.input(description="Brand voice; lists replace the stored ones.")
class BrandVoiceInput:
    tone: str = strawberry.field(default="", description="E.g. 'friendly, expert, no jargon'.")
    style_notes: str = strawberry.field(default="", description="Free-form guidance.")
    keywords: list[str] = strawberry.field(default_factory=list, description="Words to use.")
    banned_words: list[str] = strawberry.field(
        default_factory=list, description="Words never to use."
    )
    example_posts: list[str] = strawberry.field(
        default_factory=list, description="Posts that sound right."
    )

    def to_value(self) -> workspace_service.BrandVoice:
        return workspace_service.BrandVoice(
            tone=self.tone.strip(),
            style_notes=self.style_notes.strip(),
            keywords=tuple(k.strip() for k in self.keywords if k.strip()),
            banned_words=tuple(w.strip() for w in self.banned_words if w.strip()),
            example_posts=tuple(p.strip() for p in self.example_posts if p.strip()),
        )


@strawberry.type(description="A person's place in a workspace.")
class Member:
    role: Role = strawberry.field(description="What they may do here.")
    joined_at: datetime = strawberry.field(description="When they joined.")
    user_id: strawberry.Private[uuid.UUID]

    @strawberry.field(description="The person.")
    async def user(self, info: strawberry.Info[Context, Any]) -> User | None:
        return await load_user(info, self.user_id)

    @classmethod
    def from_row(cls, row: MembershipRow) -> Member:
        return cls(role=Role.parse(row.role), joined_at=row.created_at, user_id=row.user_id)


@strawberry.type(description="A team's shared space: content, members, keys and settings.")
class Workspace(relay.Node):
    id: relay.NodeID[str]
    name: str = strawberry.field(description="Workspace name.")
    brand_voice: BrandVoice = strawberry.field(description="How its content should sound.")
    plan: str = strawberry.field(description="Plan tier: free, pro or enterprise.")
    approval_required: bool = strawberry.field(
        description="When true (the default), editing the text of APPROVED content sends it "
        "back to DRAFT for another review."
    )
    require_two_factor: bool = strawberry.field(
        description="Members must enable two-factor authentication to act here."
    )
    created_at: datetime = strawberry.field(description="When it was created.")

    @strawberry.field(description="Your role here (null for an API key's view of other data).")
    async def viewer_role(self, info: strawberry.Info[Context, Any]) -> Role | None:
        principal = info.context.principal
        workspace_id = uuid.UUID(self.id)
        if principal.user_id is not None:
            role = await info.context.loaders.workspaces.roles.load(
                (principal.user_id, workspace_id)
            )
            return Role.parse(role) if role else None
        key_role = principal.role_in(workspace_id)
        return key_role

    @strawberry.field(description="Number of members.")
    async def member_count(self, info: strawberry.Info[Context, Any]) -> int:
        return await info.context.loaders.workspaces.member_counts.load(uuid.UUID(self.id))

    @strawberry.field(description="Members, in the order they joined.")
    async def members(
        self,
        info: strawberry.Info[Context, Any],
        first: Annotated[int, strawberry.argument(description="Page size (at most 100).")] = 50,
        after: Annotated[
            str | None, strawberry.argument(description="Cursor to start after.")
        ] = None,
    ) -> Connection[Member]:
        workspace_id = uuid.UUID(self.id)
        info.context.principal.require(workspace_id, Action.MEMBER_READ)
        size = page_size(first, info.context.state.settings.max_page_size)
        page = await info.context.loaders.workspaces.members_page.load((workspace_id, size, after))
        return Connection.of(page, Member.from_row)

    @classmethod
    def from_row(cls, row: WorkspaceRow) -> Workspace:
        return cls(
            id=str(row.id),
            name=row.name,
            brand_voice=BrandVoice.from_json(row.brand_voice),
            plan=row.plan,
            require_two_factor=row.require_two_factor,
            approval_required=row.approval_required,
            created_at=row.created_at,
        )

    @classmethod
    async def resolve_nodes(  # type: ignore[override]
        cls, *, info: strawberry.Info[Context, Any], node_ids: Iterable[str], required: bool = False
    ) -> list[Workspace | None]:
        loaders = info.context.loaders
        principal = info.context.principal
        ids = [uuid_or_nil(i) for i in node_ids]
        rows = await loaders.workspaces.workspaces.load_many(ids)
        out: list[Workspace | None] = []
        for row in rows:
            if row is None or principal.role_in(row.id) is None:
                out.append(None)  # not found and not yours look the same
            else:
                principal.require(row.id, Action.WORKSPACE_READ)
                out.append(cls.from_row(row))
        return out


@strawberry.type(description="An invitation to join a workspace.")
class Invitation:
    id: relay.GlobalID = strawberry.field(description="Global ID of the invitation.")
    email: str = strawberry.field(description="Who is invited.")
    role: Role = strawberry.field(description="Role they get on accepting.")
    expires_at: datetime = strawberry.field(description="When the invitation lapses.")
    accepted_at: datetime | None = strawberry.field(description="When it was accepted.")

    @classmethod
    def from_row(cls, row: InvitationRow) -> Invitation:
        return cls(
            id=to_global_id("Invitation", row.id),
            email=row.email,
            role=Role.parse(row.role),
            expires_at=row.expires_at,
            accepted_at=row.accepted_at,
        )


@strawberry.input(description="A new workspace.")
class CreateWorkspaceInput:
    name: str = strawberry.field(description="Workspace name.")
    brand_voice: BrandVoiceInput | None = strawberry.field(
        default=None, description="How it sounds."
    )


@strawberry.input(description="Workspace changes; omitted fields stay as they are.")
class UpdateWorkspaceInput:
    name: str | None = strawberry.field(default=None, description="New name.")
    brand_voice: BrandVoiceInput | None = strawberry.field(
        default=None, description="New brand voice."
    )
    approval_required: bool | None = strawberry.field(
        default=None,
        description="Send APPROVED content back to DRAFT for review when its text is edited.",
    )
    require_two_factor: bool | None = strawberry.field(
        default=None, description="Owner only: require members to use two-factor authentication."
    )


@strawberry.type(description="Result of a mutation that returns a workspace.")
class WorkspacePayload:
    workspace: Workspace | None = strawberry.field(description="The workspace after the change.")
    errors: list[UserError] = strawberry.field(description="Why it failed, if it did.")


@strawberry.type(description="Result of inviteMember.")
class InvitationPayload:
    invitation: Invitation | None = strawberry.field(description="The invitation.")
    invitation_token: str | None = strawberry.field(
        description="Secret to pass to acceptInvitation (also emailed). Shown only now."
    )
    errors: list[UserError] = strawberry.field(description="Why it failed, if it did.")


@strawberry.type(description="Result of updateMemberRole.")
class MemberPayload:
    member: Member | None = strawberry.field(description="The member after the change.")
    errors: list[UserError] = strawberry.field(description="Why it failed, if it did.")
