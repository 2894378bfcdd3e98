"""Workspaces, their settings, members and invitations."""

from __future__ import annotations

from typing import Annotated

import strawberry
from strawberry import relay

from app.services.workspaces import members
from app.services.workspaces import teams as workspaces
from resolvers.common import (
    After,
    First,
    WorkspaceId,
    attempt,
    page_limit,
    principal_of,
    state_of,
    workspace_of,
)
from schema.context import Info
from schema.ids import parse_id
from schema.pagination import Connection, page_size
from schema.types.errors import SuccessPayload
from schema.types.vocabulary import Role
from schema.types.workspaces.teams import (
    BrandVoiceInput,
    CreateWorkspaceInput,
    Invitation,
    InvitationPayload,
    Member,
    MemberPayload,
    UpdateWorkspaceInput,
    Workspace,
    WorkspacePayload,
)

UserId = Annotated[relay.GlobalID, strawberry.argument(description="Global ID of the user.")]


def _workspace_payload(row: object, errors: list) -> WorkspacePayload:  # type: ignore[type-arg]
    return WorkspacePayload(workspace=Workspace.from_row(row) if row else None, errors=errors)  # type: ignore[arg-type]


def _voice(value: BrandVoiceInput | None) -> workspaces.BrandVoice | None:
    return value.to_value() if value is not None else None


@strawberry.type
class WorkspaceQuery:
    @strawberry.field(
        description="Workspaces you belong to, newest first. An API key sees its own."
    )
    async def workspaces(
        self, info: Info, first: First = 50, after: After = None
    ) -> Connection[Workspace]:
        page = await workspaces.list_mine(
            state_of(info),
            principal_of(info),
            first=page_size(first, page_limit(info)),
            after=after,
        )
        return Connection.of(page, Workspace.from_row)

    @strawberry.field(description="One workspace. Requires viewer role.")
    async def workspace(self, info: Info, id: WorkspaceId) -> Workspace:
        row = await workspaces.get(state_of(info), principal_of(info), parse_id(id, "Workspace"))
        return Workspace.from_row(row)


@strawberry.type
class WorkspaceMutation:
    @strawberry.mutation(
        description="Create a workspace; you become its owner. Requires a user session."
    )
    async def create_workspace(
        self,
        info: Info,
        input: Annotated[CreateWorkspaceInput, strawberry.argument(description="The fields.")],
    ) -> WorkspacePayload:
        row, errors = await attempt(
            workspaces.create(
                state_of(info),
                principal_of(info),
                name=input.name,
                brand_voice=_voice(input.brand_voice) or workspaces.BrandVoice(),
            )
        )
        return _workspace_payload(row, errors)

    @strawberry.mutation(
        description="Rename, change the brand voice, or (owner) require two-factor authentication. "
        "Requires admin role."
    )
    async def update_workspace(
        self,
        info: Info,
        id: WorkspaceId,
        input: Annotated[UpdateWorkspaceInput, strawberry.argument(description="The changes.")],
    ) -> WorkspacePayload:
        row, errors = await attempt(
            workspaces.update_workspace(
                state_of(info),
                principal_of(info),
                parse_id(id, "Workspace"),
                name=input.name,
                brand_voice=_voice(input.brand_voice),
                require_two_factor=input.require_two_factor,
                approval_required=input.approval_required,
            )
        )
        return _workspace_payload(row, errors)

    @strawberry.mutation(
        description="Invite someone by email; returns the token. Requires admin role."
    )
    async def invite_member(
        self,
        info: Info,
        workspace_id: WorkspaceId,
        email: Annotated[str, strawberry.argument(description="Who to invite.")],
        role: Annotated[Role, strawberry.argument(description="Role on joining (not OWNER).")],
    ) -> InvitationPayload:
        result, errors = await attempt(
            members.invite(
                state_of(info),
                principal_of(info),
                workspace_of(workspace_id),
                email=email,
                role=role,
            )
        )
        if result is None:
            return InvitationPayload(invitation=None, invitation_token=None, errors=errors)
        invitation, token = result
        return InvitationPayload(
            invitation=Invitation.from_row(invitation), invitation_token=token, errors=[]
        )

    @strawberry.mutation(
        description="Join a workspace with an invitation token sent to your email."
    )
    async def accept_invitation(
        self,
        info: Info,
        token: Annotated[str, strawberry.argument(description="Invitation token.")],
    ) -> WorkspacePayload:
        row, errors = await attempt(
            members.accept_invitation(state_of(info), principal_of(info), token)
        )
        return _workspace_payload(row, errors)

    @strawberry.mutation(
        description="Change a member's role (not to or from OWNER). Requires admin role."
    )
    async def update_member_role(
        self,
        info: Info,
        workspace_id: WorkspaceId,
        user_id: UserId,
        role: Annotated[Role, strawberry.argument(description="The new role.")],
    ) -> MemberPayload:
        row, errors = await attempt(
            members.update_member_role(
                state_of(info),
                principal_of(info),
                workspace_of(workspace_id),
                parse_id(user_id, "User", "userId"),
                role,
            )
        )
        return MemberPayload(member=Member.from_row(row) if row else None, errors=errors)

    @strawberry.mutation(description="Remove a member (admin role), or leave (yourself).")
    async def remove_member(
        self, info: Info, workspace_id: WorkspaceId, user_id: UserId
    ) -> SuccessPayload:
        _, errors = await attempt(
            members.remove_member(
                state_of(info),
                principal_of(info),
                workspace_of(workspace_id),
                parse_id(user_id, "User", "userId"),
            )
        )
        return SuccessPayload.of(errors)

    @strawberry.mutation(description="Make another member the owner; you become admin. Owner only.")
    async def transfer_ownership(
        self, info: Info, workspace_id: WorkspaceId, user_id: UserId
    ) -> WorkspacePayload:
        ws_id = workspace_of(workspace_id)
        _, errors = await attempt(
            members.transfer_ownership(
                state_of(info), principal_of(info), ws_id, parse_id(user_id, "User", "userId")
            )
        )
        row = None if errors else await workspaces.get(state_of(info), principal_of(info), ws_id)
        return _workspace_payload(row, errors)
