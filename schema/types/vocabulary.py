"""The GraphQL face of the domain's closed value sets: each domain enum registered once,
with a description per value (schema/enums.py).

Longer than 400 lines because it is the one registry of every domain enum and the
description of each of its values: split by domain, an enum could be registered twice or
used before its registration ran.

Types and resolvers import these enums from here, so the registration has always run
before Strawberry sees one in an annotation.
"""

from __future__ import annotations

from app.errors import USER_ERROR_DESCRIPTIONS, UserErrorCode
from app.models.job import JobStatus
from app.models.publishing import AccountStatus, CommentStatus, TargetStatus
from app.models.vocabulary import (
    AbTestMetric,
    AbTestStatus,
    AbTestVerdictReason,
    CampaignStatus,
    ContentFormat,
    ContentStatus,
    ContentType,
    ContentWarningCode,
    EngagementEventType,
    ExportFormat,
    FigureSource,
    GenerationLength,
    GenerationOperation,
    PerformanceMetric,
    Platform,
    PredictionBasis,
    RecommendationKind,
    SentimentLabel,
    TimingSource,
    TrendInterval,
    WebhookDeliveryStatus,
    WebhookEvent,
)
from app.permissions import Role
from app.services.analytics.ab_test_results import METRICS
from app.services.content.library import ContentOrder
from app.services.content.review_links import Decision
from app.services.content.search import SearchMode
from schema.enums import domain_enum

__all__ = [
    "AbTestMetric",
    "AbTestStatus",
    "AbTestVerdictReason",
    "AccountStatus",
    "CampaignStatus",
    "CommentStatus",
    "ContentFormat",
    "ContentOrder",
    "ContentStatus",
    "ContentType",
    "ContentWarningCode",
    "Decision",
    "EngagementEventType",
    "ExportFormat",
    "FigureSource",
    "GenerationLength",
    "GenerationOperation",
    "JobStatus",
    "PerformanceMetric",
    "Platform",
    "PredictionBasis",
    "RecommendationKind",
    "Role",
    "SearchMode",
    "SentimentLabel",
    "TargetStatus",
    "TimingSource",
    "TrendInterval",
    "UserErrorCode",
    "WebhookDeliveryStatus",
    "WebhookEvent",
]

domain_enum(
    PredictionBasis,
    description="Which engagement model answered a prediction.",
    values={
        PredictionBasis.WORKSPACE_MODEL: "The workspace's own model, trained on its posts.",
        PredictionBasis.INSTANCE_MODEL: "The instance-wide prior: the workspace has too "
        "little history of its own yet.",
        PredictionBasis.NONE: "No model exists yet: no prediction is made.",
    },
)

domain_enum(
    RecommendationKind,
    description="What a recommendation suggests.",
    values={
        RecommendationKind.TOPICS: "Topics (clusters of published items by meaning) that "
        "perform well and are under-covered in recent content.",
        RecommendationKind.CONTENT_TO_REPURPOSE: "High performers not yet (or not recently) "
        "published on a connected platform, with the platforms to take them to.",
        RecommendationKind.SIMILAR_HIGH_PERFORMERS: "Past top performers nearest in meaning "
        "to a draft (or to the workspace's recent drafts).",
    },
)

domain_enum(
    ExportFormat,
    description="The file format of an analytics export.",
    values={
        ExportFormat.CSV: "Comma-separated values, UTF-8, one row per item, platform and source."
    },
)

domain_enum(
    TrendInterval,
    description="The bucket of an engagement trend (UTC).",
    values={
        TrendInterval.HOUR: "One point per hour.",
        TrendInterval.DAY: "One point per day.",
        TrendInterval.WEEK: "One point per week, starting on Monday.",
    },
)

domain_enum(
    TimingSource,
    description="Where best posting times come from.",
    values={
        TimingSource.HISTORY: "The workspace's own published posts (shrunk toward the "
        "platform's typical pattern where they are few).",
        TimingSource.PLATFORM_PRIOR: "Too little history yet: typical good times for the platform.",
    },
)

domain_enum(
    CampaignStatus,
    description="Campaign lifecycle.",
    values={
        CampaignStatus.DRAFT: "Being planned.",
        CampaignStatus.ACTIVE: "Running.",
        CampaignStatus.PAUSED: "On hold.",
        CampaignStatus.COMPLETED: "Finished.",
    },
)

domain_enum(
    ContentType,
    description="What kind of piece this is.",
    values={
        ContentType.BLOG_POST: "Long-form article.",
        ContentType.SOCIAL_POST: "A post for social networks.",
        ContentType.EMAIL: "A newsletter or campaign email.",
        ContentType.AD_COPY: "Advertising copy.",
    },
)

domain_enum(
    ContentFormat,
    description="How the body is written.",
    values={
        ContentFormat.MARKDOWN: "Markdown.",
        ContentFormat.HTML: "HTML.",
        ContentFormat.PLAIN: "Plain text.",
    },
)

domain_enum(
    ContentStatus,
    description="Review workflow: DRAFT -> IN_REVIEW -> APPROVED -> SCHEDULED -> PUBLISHED -> "
    "ARCHIVED, and back to DRAFT when changes are requested.",
    values={
        ContentStatus.DRAFT: "Being written; members edit it.",
        ContentStatus.IN_REVIEW: "Submitted; waiting for an admin.",
        ContentStatus.APPROVED: "Approved by an admin.",
        ContentStatus.SCHEDULED: "Scheduled for publishing (schedulePost); PUBLISHED once a "
        "target goes out, back to APPROVED when nothing of it is left to go.",
        ContentStatus.PUBLISHED: "Out in the world.",
        ContentStatus.ARCHIVED: "Kept for the record.",
    },
)

domain_enum(
    ContentOrder,
    description="Sort order of a content list.",
    values={
        ContentOrder.CREATED_DESC: "Newest first.",
        ContentOrder.CREATED_ASC: "Oldest first.",
        ContentOrder.UPDATED_DESC: "Recently changed first.",
        ContentOrder.TITLE_ASC: "By title, A to Z.",
    },
)

domain_enum(
    Decision,
    name="ReviewDecision",
    description="What a reviewer decides.",
    values={
        Decision.APPROVE: "Approve (content in review becomes APPROVED); only through a link made "
        "by an admin or owner.",
        Decision.REQUEST_CHANGES: "Send back to DRAFT, with a comment.",
        Decision.COMMENT: "Only comment.",
    },
)

domain_enum(
    SearchMode,
    description="How searchContent matches.",
    values={
        SearchMode.KEYWORD: "Words (Postgres full-text search, ranked).",
        SearchMode.SEMANTIC: "Meaning (embeddings, cosine similarity).",
        SearchMode.HYBRID: "Both, merged by reciprocal rank fusion.",
    },
)

domain_enum(
    GenerationLength,
    description="How long a generated draft should be (blog posts are longer at each step).",
    values={
        GenerationLength.SHORT: "About 50 words (a 300-word blog post).",
        GenerationLength.MEDIUM: "About 150 words (an 800-word blog post).",
        GenerationLength.LONG: "About 600 words (a 1,500-word blog post).",
    },
)

domain_enum(
    GenerationOperation,
    description="What an AI generation job does.",
    values={
        GenerationOperation.GENERATE: "Drafts a new item (generateContent).",
        GenerationOperation.REFINE: "Rewrites an item as its next version (refineContent).",
        GenerationOperation.TRANSFORM: "Writes platform variations (transformContent).",
        GenerationOperation.PERSONALIZE: "Writes one version of an item per audience segment "
        "(personalizeContent).",
        GenerationOperation.VARIANTS: "Writes A/B-test variants of an item (generateVariants).",
    },
)

domain_enum(
    Platform,
    description="Where content goes. One list, used everywhere.",
    values={
        Platform.X: "X (Twitter): 280 weighted per post (CJK and emoji 2, links 23), numbered "
        "threads, 4 images or 1 video.",
        Platform.LINKEDIN: "LinkedIn: 3,000 characters.",
        Platform.FACEBOOK: "Facebook: 63,206 characters.",
        Platform.INSTAGRAM: "Instagram: 2,200 characters, 30 hashtags, needs media.",
        Platform.THREADS: "Threads: 500 characters.",
        Platform.MASTODON: "Mastodon: 500 characters.",
        Platform.BLUESKY: "Bluesky: 300 graphemes.",
        Platform.EMAIL: "Email: subject up to 100, preheader.",
        Platform.WEBHOOK: "Your own webhook: a signed JSON POST (X-SmartContent-Signature), no "
        "text limits.",
    },
)

domain_enum(
    UserErrorCode,
    description="Why a mutation refused its input: the stable, machine-readable `code` of "
    "a UserError (the same string on the wire).",
    values=USER_ERROR_DESCRIPTIONS,
)

domain_enum(
    JobStatus,
    description="Lifecycle of a background job: QUEUED -> RUNNING -> SUCCEEDED or FAILED "
    "(a failed attempt with attempts left goes back to QUEUED); CANCELLED when stopped on "
    "request.",
    values={
        JobStatus.QUEUED: "Waiting for a worker.",
        JobStatus.RUNNING: "A worker holds the job's lease.",
        JobStatus.SUCCEEDED: "Finished; `result` is set.",
        JobStatus.FAILED: "Gave up; `error` says why.",
        JobStatus.CANCELLED: "Stopped on request (cancelGeneration); final.",
    },
)

domain_enum(
    Role,
    description="What a member (or API key) may do in a workspace.",
    values={
        Role.OWNER: "Everything an admin does, plus security policy and ownership transfer.",
        Role.ADMIN: "Approve, publish, manage members and keys.",
        Role.MEMBER: "Create and edit drafts, submit them.",
        Role.VIEWER: "Read only.",
    },
)

domain_enum(
    SentimentLabel,
    description="How a text reads, from its sentiment score (VADER compound, -1..1).",
    values={
        SentimentLabel.POSITIVE: "Score 0.05 or more.",
        SentimentLabel.NEUTRAL: "Between -0.05 and 0.05.",
        SentimentLabel.NEGATIVE: "Score -0.05 or less.",
    },
)

domain_enum(
    AccountStatus,
    name="SocialAccountStatus",
    description="Whether a connected account can publish.",
    values={
        AccountStatus.CONNECTED: "Ready to publish.",
        AccountStatus.NEEDS_RECONNECT: "The platform refused its token (revoked, or the refresh "
        "failed): an admin must connect it again. Posts due meanwhile fail with the reason.",
        AccountStatus.DISCONNECTED: "Disconnected by an admin; its credentials are erased.",
    },
)

domain_enum(
    ContentWarningCode,
    description="A brand-voice check a text fails.",
    values={
        ContentWarningCode.BANNED_WORD: "Uses a word the brand voice bans (`term`).",
        ContentWarningCode.KEYWORD_MISSING: "Does not mention a keyword (`term`): one of the "
        "item's tags or the brand voice's keywords (a hashtag of it counts).",
        ContentWarningCode.TONE: "Reads negative while the brand voice's tone is positive "
        "(friendly, upbeat, warm...).",
    },
)

domain_enum(
    TargetStatus,
    name="PostStatus",
    description="Delivery of a scheduled post to one account: PENDING -> PUBLISHING -> "
    "PUBLISHED, FAILED or UNKNOWN; CANCELLED before it went out. A retryable failure goes "
    "back to PENDING with the next attempt's time.",
    values={
        TargetStatus.PENDING: "Waiting for its time (or for its next attempt after a retryable "
        "failure).",
        TargetStatus.PUBLISHING: "A worker is sending it now.",
        TargetStatus.PUBLISHED: "Out on the platform; platformPostId and platformUrl are set.",
        TargetStatus.FAILED: "Not published; `error` says why (the platform's own message).",
        TargetStatus.CANCELLED: "Cancelled before it went out.",
        TargetStatus.UNKNOWN: "The platform may have published it but never told us, and it "
        "cannot be asked: confirm it (confirmPostPublished) or send it again (retryPost).",
    },
)

domain_enum(
    EngagementEventType,
    description="What a first-party engagement event records.",
    values={
        EngagementEventType.VIEW: "Someone viewed the content (a page view, a read).",
        EngagementEventType.CLICK: "Someone clicked a link in it.",
        EngagementEventType.LIKE: "Someone liked it.",
        EngagementEventType.SHARE: "Someone shared it.",
        EngagementEventType.COMMENT: "Someone commented on it.",
        EngagementEventType.IMPRESSION: "It was shown to someone (seen or not).",
        EngagementEventType.CONVERSION: "Someone converted after it (sign-up, purchase); "
        "`value` may carry the amount.",
    },
)

domain_enum(
    WebhookEvent,
    description="What an outgoing webhook can be told about.",
    values={
        WebhookEvent.POST_PUBLISHED: "A post went out on one account (one target published).",
        WebhookEvent.POST_FAILED: "A post failed for good on one account (one target failed).",
        WebhookEvent.CONTENT_APPROVED: "Content in review was approved.",
        WebhookEvent.ACCOUNT_NEEDS_RECONNECT: "A connected account's token was refused: a "
        "person must reconnect it.",
    },
)

domain_enum(
    WebhookDeliveryStatus,
    description="Where one event's delivery to one endpoint stands.",
    values={
        WebhookDeliveryStatus.PENDING: "Not delivered yet (waiting, or retrying after a "
        "network error, 408, 429 or 5xx).",
        WebhookDeliveryStatus.SUCCEEDED: "The endpoint answered 2xx.",
        WebhookDeliveryStatus.FAILED: "Given up: a final answer (another 4xx, a refused "
        "address) or out of attempts.",
    },
)

domain_enum(
    CommentStatus,
    description="A target's first comment, posted as its own step after the post: PENDING "
    "-> PUBLISHING -> PUBLISHED, FAILED or UNKNOWN. Its failure never changes the post.",
    values={
        CommentStatus.NONE: "No first comment was asked for.",
        CommentStatus.PENDING: "Waiting for the post to go out, or for its next attempt after "
        "a retryable failure.",
        CommentStatus.PUBLISHING: "A worker is sending it now.",
        CommentStatus.PUBLISHED: "Posted; commentPlatformId is the platform's id of it.",
        CommentStatus.FAILED: "Not posted; commentError says why. The post is unaffected.",
        CommentStatus.UNKNOWN: "It may have been posted but the platform never told us and "
        "cannot be asked; check the post on the platform.",
    },
)

domain_enum(
    AbTestMetric,
    description="What an A/B test compares between its arms: successes over trials, each "
    "counted from the first-party events that name the arm as their `variant`.",
    values={metric: definition.meaning for metric, definition in METRICS.items()},
)

domain_enum(
    AbTestStatus,
    description="Whether an A/B test is still counting events.",
    values={
        AbTestStatus.RUNNING: "Counting events, from its start until now.",
        AbTestStatus.STOPPED: "Stopped (stopAbTest): counts events from its start to its "
        "stop only.",
    },
)

domain_enum(
    FigureSource,
    description="Where an analytics figure comes from.",
    values={
        FigureSource.PLATFORM_SNAPSHOTS: "The platforms' own metrics, from each published "
        "target's latest snapshot (collected 1 h, 6 h, 24 h, 72 h and 7 d after publishing).",
        FigureSource.FIRST_PARTY_EVENTS: "Events you send (POST /ingest/events, "
        "recordEngagementEvents), from the rollups.",
    },
)

domain_enum(
    AbTestVerdictReason,
    description="Why an A/B test has a winner, or has none yet.",
    values={
        AbTestVerdictReason.SIGNIFICANT: "A winner is named: a variant beats the control "
        "(and any other variant that does) significantly, or the control beats every variant.",
        AbTestVerdictReason.NOT_SIGNIFICANT: "Enough trials, but no difference is significant "
        "(or two variants beat the control without one beating the other).",
        AbTestVerdictReason.TOO_FEW_TRIALS: "An arm has fewer trials than the test needs per "
        "arm (minTrialsPerArm): no winner is named this early.",
        AbTestVerdictReason.NO_VARIANCE: "Nothing to compare: every arm's rate is 0 (or every "
        "arm's is 1).",
        AbTestVerdictReason.INCONSISTENT_COUNTS: "An arm has more successes than trials: its "
        "trial events (impressions or views) are not all sent with the variant.",
    },
)

domain_enum(
    PerformanceMetric,
    description="A figure content is compared and ranked by; higher is better for each. "
    "EVENT_ metrics count first-party events, the others come from platform snapshots.",
    values={
        PerformanceMetric.IMPRESSIONS: "Times the posts were shown, as the platforms report.",
        PerformanceMetric.REACH: "Distinct accounts reached (Facebook, Instagram).",
        PerformanceMetric.LIKES: "Likes, favourites or reactions on the platforms.",
        PerformanceMetric.COMMENTS: "Comments or replies on the platforms.",
        PerformanceMetric.SHARES: "Shares, reposts and quotes on the platforms.",
        PerformanceMetric.CLICKS: "Link clicks the platforms report.",
        PerformanceMetric.SAVES: "Saves or bookmarks on the platforms.",
        PerformanceMetric.ENGAGEMENT_RATE: "(likes + comments + shares) / impressions on the "
        "platforms.",
        PerformanceMetric.CTR: "Platform clicks / impressions.",
        PerformanceMetric.EVENT_VIEWS: "First-party VIEW events.",
        PerformanceMetric.EVENT_IMPRESSIONS: "First-party IMPRESSION events.",
        PerformanceMetric.EVENT_CLICKS: "First-party CLICK events.",
        PerformanceMetric.EVENT_LIKES: "First-party LIKE events.",
        PerformanceMetric.EVENT_COMMENTS: "First-party COMMENT events.",
        PerformanceMetric.EVENT_SHARES: "First-party SHARE events.",
        PerformanceMetric.EVENT_CONVERSIONS: "First-party CONVERSION events.",
        PerformanceMetric.EVENT_CONVERSION_VALUE: "Sum of the first-party CONVERSION events' "
        "values.",
    },
)
