"""Roles and the one permission table, checked in services.

owner > admin > member > viewer. Viewer reads; member creates and edits drafts and submits
them for review; admin approves, publishes, manages accounts, members and keys; owner also
transfers ownership and deletes the workspace.
"""

from __future__ import annotations

from enum import IntEnum, StrEnum


class Role(IntEnum):
    # Listed highest first (the schema's order); compared by value.
    OWNER = 4
    ADMIN = 3
    MEMBER = 2
    VIEWER = 1

    @classmethod
    def parse(cls, name: str) -> Role:
        return cls[name.upper()]


class Action(StrEnum):
    WORKSPACE_READ = "workspace.read"
    WORKSPACE_UPDATE = "workspace.update"
    WORKSPACE_DELETE = "workspace.delete"
    MEMBER_READ = "member.read"
    MEMBER_INVITE = "member.invite"
    MEMBER_MANAGE = "member.manage"
    OWNERSHIP_TRANSFER = "ownership.transfer"
    API_KEY_MANAGE = "api_key.manage"
    AUDIT_READ = "audit.read"
    SECURITY_POLICY = "security.policy"
    JOB_RUN = "job.run"
    # Content and publishing (used from the content issue on).
    CONTENT_READ = "content.read"
    CONTENT_EDIT = "content.edit"
    CONTENT_SUBMIT = "content.submit"
    CONTENT_APPROVE = "content.approve"
    CONTENT_PUBLISH = "content.publish"
    ACCOUNT_MANAGE = "account.manage"
    # Analytics: recording first-party engagement events (partners' API keys, members).
    ENGAGEMENT_RECORD = "engagement.record"


# The minimum role for each action. One table; every service check reads it.
PERMISSIONS: dict[Action, Role] = {
    Action.WORKSPACE_READ: Role.VIEWER,
    Action.MEMBER_READ: Role.VIEWER,
    Action.CONTENT_READ: Role.VIEWER,
    Action.JOB_RUN: Role.MEMBER,
    Action.CONTENT_EDIT: Role.MEMBER,
    Action.CONTENT_SUBMIT: Role.MEMBER,
    Action.ENGAGEMENT_RECORD: Role.MEMBER,
    Action.WORKSPACE_UPDATE: Role.ADMIN,
    Action.MEMBER_INVITE: Role.ADMIN,
    Action.MEMBER_MANAGE: Role.ADMIN,
    Action.API_KEY_MANAGE: Role.ADMIN,
    Action.AUDIT_READ: Role.ADMIN,
    Action.CONTENT_APPROVE: Role.ADMIN,
    Action.CONTENT_PUBLISH: Role.ADMIN,
    Action.ACCOUNT_MANAGE: Role.ADMIN,
    Action.SECURITY_POLICY: Role.OWNER,
    Action.OWNERSHIP_TRANSFER: Role.OWNER,
    Action.WORKSPACE_DELETE: Role.OWNER,
}


def allows(role: Role, action: Action) -> bool:
    return role >= PERMISSIONS[action]
