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
    "generationJob": hidden(Action.WORKSPACE_READ),
    "generationJobs": workspace(Action.WORKSPACE_READ),
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
    # AI generation
    "generateContent": workspace(Action.CONTENT_EDIT),
    "refineContent": hidden(Action.CONTENT_EDIT),
    "transformContent": hidden(Action.CONTENT_EDIT),
    "personalizeContent": hidden(Action.CONTENT_EDIT),
    "generateVariants": hidden(Action.CONTENT_EDIT),
    "cancelGeneration": hidden(Action.CONTENT_EDIT),
    # Content library (items addressed by their own id are HIDDEN outside their workspace)
    "content": hidden(Action.CONTENT_READ),
    "contents": workspace(Action.CONTENT_READ),
    "searchContent": workspace(Action.CONTENT_READ),
    "campaigns": workspace(Action.CONTENT_READ),
    "campaign": hidden(Action.CONTENT_READ),
    "createContent": workspace(Action.CONTENT_EDIT),
    "updateContent": hidden(Action.CONTENT_EDIT),
    "deleteContent": hidden(Action.CONTENT_EDIT),
    "restoreContent": hidden(Action.CONTENT_EDIT),
    "restoreContentVersion": hidden(Action.CONTENT_EDIT),
    "submitForReview": hidden(Action.CONTENT_SUBMIT),
    "approveContent": hidden(Action.CONTENT_APPROVE),
    "requestChanges": hidden(Action.CONTENT_APPROVE),
    "archiveContent": hidden(Action.CONTENT_APPROVE),
    "unarchiveContent": hidden(Action.CONTENT_APPROVE),
    "addComment": hidden(Action.CONTENT_EDIT),
    "createVariation": hidden(Action.CONTENT_EDIT),
    "updateVariation": hidden(Action.CONTENT_EDIT),
    "createCampaign": workspace(Action.CONTENT_EDIT),
    "updateCampaign": hidden(Action.CONTENT_EDIT),
    "deleteCampaign": hidden(Action.CONTENT_APPROVE),
    "audienceSegments": workspace(Action.CONTENT_READ),
    "createAudienceSegment": workspace(Action.CONTENT_EDIT),
    "updateAudienceSegment": hidden(Action.CONTENT_EDIT),
    "deleteAudienceSegment": hidden(Action.CONTENT_APPROVE),
    "mediaAssets": workspace(Action.CONTENT_READ),
    "uploadMedia": workspace(Action.CONTENT_EDIT),
    "updateMedia": hidden(Action.CONTENT_EDIT),
    "deleteMedia": hidden(Action.CONTENT_EDIT),
    "setContentMedia": hidden(Action.CONTENT_EDIT),
    "reviewLinks": hidden(Action.CONTENT_SUBMIT),
    "createReviewLink": hidden(Action.CONTENT_SUBMIT),
    "revokeReviewLink": hidden(Action.CONTENT_SUBMIT),
    # The review token is the permission: public, audited, rate-limited per IP.
    "reviewLinkContent": PUBLIC,
    "respondToReviewLink": PUBLIC,
    # Publishing (posts and targets addressed by their own id are HIDDEN outside their
    # workspace; scheduling is content.publish, accounts account.manage)
    "socialAccounts": workspace(Action.CONTENT_READ),
    "scheduledPosts": workspace(Action.CONTENT_READ),
    "calendar": workspace(Action.CONTENT_READ),
    "connectWebhookAccount": workspace(Action.ACCOUNT_MANAGE),
    "startAccountConnection": workspace(Action.ACCOUNT_MANAGE),
    "connectBlueskyAccount": workspace(Action.ACCOUNT_MANAGE),
    "connectEmailAccount": workspace(Action.ACCOUNT_MANAGE),
    "disconnectSocialAccount": hidden(Action.ACCOUNT_MANAGE),
    "schedulePost": hidden(Action.CONTENT_PUBLISH),
    "reschedulePost": hidden(Action.CONTENT_PUBLISH),
    "cancelScheduledPost": hidden(Action.CONTENT_PUBLISH),
    "publishNow": hidden(Action.CONTENT_PUBLISH),
    "confirmPostPublished": hidden(Action.CONTENT_PUBLISH),
    "retryPost": hidden(Action.CONTENT_PUBLISH),
    "setPostingSlots": hidden(Action.CONTENT_PUBLISH),
    "addToQueue": hidden(Action.CONTENT_PUBLISH),
    # Analytics (a content item's figures are HIDDEN outside its workspace, like the item)
    "contentPerformance": hidden(Action.CONTENT_READ),
    "predictEngagement": workspace(Action.CONTENT_READ),
    "optimalPostingTimes": workspace(Action.CONTENT_READ),
    "insights": workspace(Action.CONTENT_READ),
    "engagementTrends": workspace(Action.CONTENT_READ),
    "recommendations": workspace(Action.CONTENT_READ),
    "compareContent": hidden(Action.CONTENT_READ),
    "campaignPerformance": hidden(Action.CONTENT_READ),
    "analyticsDashboard": workspace(Action.CONTENT_READ),
    "exportAnalytics": workspace(Action.CONTENT_READ),
    "engagementModels": workspace(Action.CONTENT_READ),
    "trainEngagementModel": workspace(Action.CONTENT_EDIT),
    # A/B tests: addressed by their own id (or their content's) they are HIDDEN outside
    # their workspace; members start and stop them, viewers read them and assign visitors
    "abTest": hidden(Action.CONTENT_READ),
    "abTests": workspace(Action.CONTENT_READ),
    "abTestAssignment": hidden(Action.CONTENT_READ),
    "createAbTest": hidden(Action.CONTENT_EDIT),
    "stopAbTest": hidden(Action.CONTENT_EDIT),
    # Analytics: engagement events
    "recordEngagementEvents": workspace(Action.ENGAGEMENT_RECORD),
    "importSchedule": workspace(Action.CONTENT_PUBLISH),
    # Outgoing webhooks (endpoints and deliveries addressed by their own id are HIDDEN
    # outside their workspace; admins only: URLs and delivery errors are theirs to see)
    "webhookEndpoints": workspace(Action.ACCOUNT_MANAGE),
    "webhookDeliveries": hidden(Action.ACCOUNT_MANAGE),
    "createWebhookEndpoint": workspace(Action.ACCOUNT_MANAGE),
    "updateWebhookEndpoint": hidden(Action.ACCOUNT_MANAGE),
    "deleteWebhookEndpoint": hidden(Action.ACCOUNT_MANAGE),
    "rotateWebhookSecret": hidden(Action.ACCOUNT_MANAGE),
    "redeliverWebhook": hidden(Action.ACCOUNT_MANAGE),
    # Subscriptions
    "postStatusChanged": workspace(Action.CONTENT_READ),
    "performanceUpdated": workspace(Action.CONTENT_READ),
    "socialAccountStatusChanged": workspace(Action.CONTENT_EDIT),
    "jobEvents": hidden(Action.WORKSPACE_READ),
    "generationProgress": hidden(Action.WORKSPACE_READ),
    "workspaceEvents": workspace(Action.WORKSPACE_READ),
}
