"""Who may call each GraphQL operation: the contract the isolation matrix test enforces.

Every root field (query, mutation, subscription) has exactly one entry. The services make
the actual decisions (through `Principal.require` and the PERMISSIONS table); this table
states what they must decide, per operation, so a new operation cannot ship without a rule.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from app.permissions import Action


class Audience(StrEnum):
    PUBLIC = "public"  # anyone, signed in or not
    SIGNED_IN = "signed_in"  # a user session or an API key
    USER = "user"  # a user session only (API keys are refused)
    WORKSPACE = "workspace"  # a role in the target workspace allowing `action`
    HIDDEN = "hidden"  # like WORKSPACE, but denial looks like absence (null / NOT_FOUND)


@dataclass(frozen=True)
class Rule:
    audience: Audience
    action: Action | None = None


PUBLIC = Rule(Audience.PUBLIC)
SIGNED_IN = Rule(Audience.SIGNED_IN)
USER = Rule(Audience.USER)


def workspace(action: Action) -> Rule:
    return Rule(Audience.WORKSPACE, action)


def hidden(action: Action) -> Rule:
    return Rule(Audience.HIDDEN, action)


OPERATION_ACCESS: dict[str, Rule] = {
    # Queries
    "health": PUBLIC,
    "node": hidden(Action.WORKSPACE_READ),
    "me": USER,
    "workspaces": SIGNED_IN,
    "workspace": workspace(Action.WORKSPACE_READ),
    "apiKeys": workspace(Action.API_KEY_MANAGE),
    "auditLog": workspace(Action.AUDIT_READ),
    "job": hidden(Action.WORKSPACE_READ),
    # Mutations: accounts and sessions
    "register": PUBLIC,
    "login": PUBLIC,
    "refreshToken": PUBLIC,
    "logout": PUBLIC,
    "requestPasswordReset": PUBLIC,
    "resetPassword": PUBLIC,
    "updateProfile": USER,
    "changePassword": USER,
    "enableTwoFactor": USER,
    "confirmTwoFactor": USER,
    "disableTwoFactor": USER,
    "exportMyData": USER,
    "deleteAccount": USER,
    # Mutations: workspaces and teams
    "createWorkspace": USER,
    "acceptInvitation": USER,
    "updateWorkspace": workspace(Action.WORKSPACE_UPDATE),
    "inviteMember": workspace(Action.MEMBER_INVITE),
    "updateMemberRole": workspace(Action.MEMBER_MANAGE),
    "removeMember": workspace(Action.MEMBER_MANAGE),
    "transferOwnership": workspace(Action.OWNERSHIP_TRANSFER),
    "createApiKey": workspace(Action.API_KEY_MANAGE),
    "revokeApiKey": workspace(Action.API_KEY_MANAGE),
    "ping": workspace(Action.JOB_RUN),
    # Subscriptions
    "jobEvents": hidden(Action.WORKSPACE_READ),
}
