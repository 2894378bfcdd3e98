"""The closed sets of values the domain uses, each declared once.

The database checks (below, `one_of`) and the GraphQL enums (schema/enums.py) are derived
from these classes, so a new member reaches the table constraint and the schema together.
"""

from __future__ import annotations

from enum import StrEnum


class ContentType(StrEnum):
    BLOG_POST = "BLOG_POST"
    SOCIAL_POST = "SOCIAL_POST"
    EMAIL = "EMAIL"
    AD_COPY = "AD_COPY"


class ContentFormat(StrEnum):
    MARKDOWN = "MARKDOWN"
    HTML = "HTML"
    PLAIN = "PLAIN"


class ContentStatus(StrEnum):
    DRAFT = "DRAFT"
    IN_REVIEW = "IN_REVIEW"
    APPROVED = "APPROVED"
    SCHEDULED = "SCHEDULED"
    PUBLISHED = "PUBLISHED"
    ARCHIVED = "ARCHIVED"


class CampaignStatus(StrEnum):
    DRAFT = "DRAFT"
    ACTIVE = "ACTIVE"
    PAUSED = "PAUSED"
    COMPLETED = "COMPLETED"


class Platform(StrEnum):
    """Where content goes: one list for variations, rules and (later) publishing."""

    X = "X"
    LINKEDIN = "LINKEDIN"
    FACEBOOK = "FACEBOOK"
    INSTAGRAM = "INSTAGRAM"
    THREADS = "THREADS"
    MASTODON = "MASTODON"
    BLUESKY = "BLUESKY"
    EMAIL = "EMAIL"
    WEBHOOK = "WEBHOOK"


class GenerationLength(StrEnum):
    """How long an AI draft should be."""

    SHORT = "SHORT"
    MEDIUM = "MEDIUM"
    LONG = "LONG"


class GenerationOperation(StrEnum):
    """What an AI job does to content."""

    GENERATE = "GENERATE"
    REFINE = "REFINE"
    TRANSFORM = "TRANSFORM"
    PERSONALIZE = "PERSONALIZE"
    VARIANTS = "VARIANTS"


class CommentKind(StrEnum):
    COMMENT = "COMMENT"
    CHANGES_REQUESTED = "CHANGES_REQUESTED"
    APPROVAL = "APPROVAL"


class MediaKind(StrEnum):
    IMAGE = "IMAGE"
    VIDEO = "VIDEO"


class SentimentLabel(StrEnum):
    """How a text reads (VADER's compound score, thresholds +-0.05)."""

    POSITIVE = "POSITIVE"
    NEUTRAL = "NEUTRAL"
    NEGATIVE = "NEGATIVE"


class ContentWarningCode(StrEnum):
    """A brand-voice check a text fails (app/ai/metrics.py)."""

    BANNED_WORD = "BANNED_WORD"
    KEYWORD_MISSING = "KEYWORD_MISSING"
    TONE = "TONE"


class EngagementEventType(StrEnum):
    """What a first-party engagement event records (POST /ingest/events)."""

    VIEW = "VIEW"
    CLICK = "CLICK"
    LIKE = "LIKE"
    SHARE = "SHARE"
    COMMENT = "COMMENT"
    IMPRESSION = "IMPRESSION"
    CONVERSION = "CONVERSION"


class WebhookEvent(StrEnum):
    """What a workspace's outgoing webhooks can be told about."""

    POST_PUBLISHED = "POST_PUBLISHED"
    POST_FAILED = "POST_FAILED"
    CONTENT_APPROVED = "CONTENT_APPROVED"
    ACCOUNT_NEEDS_RECONNECT = "ACCOUNT_NEEDS_RECONNECT"


class WebhookDeliveryStatus(StrEnum):
    """One event's delivery to one endpoint: PENDING (retrying) -> SUCCEEDED | FAILED."""

    PENDING = "PENDING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"


def one_of(column: str, values: type[StrEnum]) -> str:
    """A CHECK constraint's SQL: `column` holds one of the enum's values."""
    return f"{column} IN ({', '.join(repr(v.value) for v in values)})"


class PredictionBasis(StrEnum):
    """Which engagement model answered a prediction (app/services/analytics/
    engagement_model.py)."""

    WORKSPACE_MODEL = "WORKSPACE_MODEL"
    INSTANCE_MODEL = "INSTANCE_MODEL"
    NONE = "NONE"


class TimingSource(StrEnum):
    """Where best posting times come from (app/services/analytics/posting_times.py)."""

    HISTORY = "HISTORY"
    PLATFORM_PRIOR = "PLATFORM_PRIOR"


class ExportFormat(StrEnum):
    """The file format of an analytics export (app/services/analytics/export.py)."""

    CSV = "CSV"


class TrendInterval(StrEnum):
    """The bucket of an engagement trend (app/services/analytics/trends.py)."""

    HOUR = "HOUR"
    DAY = "DAY"
    WEEK = "WEEK"


class AbTestMetric(StrEnum):
    """What an A/B test compares: successes over trials, counted from first-party events
    (app/services/analytics/ab_test_results.py METRICS says which events are which)."""

    CTR = "CTR"
    CONVERSION_RATE = "CONVERSION_RATE"
    ENGAGEMENT_RATE = "ENGAGEMENT_RATE"


class AbTestStatus(StrEnum):
    """An A/B test counts events while RUNNING; STOPPED freezes the end of its window."""

    RUNNING = "RUNNING"
    STOPPED = "STOPPED"


class AbTestVerdictReason(StrEnum):
    """Why an A/B test has (or has not yet) a winner (app/services/analytics/
    ab_test_results.py)."""

    SIGNIFICANT = "SIGNIFICANT"
    NOT_SIGNIFICANT = "NOT_SIGNIFICANT"
    TOO_FEW_TRIALS = "TOO_FEW_TRIALS"
    NO_VARIANCE = "NO_VARIANCE"
    INCONSISTENT_COUNTS = "INCONSISTENT_COUNTS"


class RecommendationKind(StrEnum):
    """What `recommendations` suggests (app/services/analytics/recommend/)."""

    TOPICS = "TOPICS"
    CONTENT_TO_REPURPOSE = "CONTENT_TO_REPURPOSE"
    SIMILAR_HIGH_PERFORMERS = "SIMILAR_HIGH_PERFORMERS"


class FigureSource(StrEnum):
    """Where an analytics figure comes from: the platforms' metric snapshots (collected
    after publishing) or first-party events (ingested, rolled up)."""

    PLATFORM_SNAPSHOTS = "PLATFORM_SNAPSHOTS"
    FIRST_PARTY_EVENTS = "FIRST_PARTY_EVENTS"


class PerformanceMetric(StrEnum):
    """A figure content items are compared and ranked by (app/services/analytics/
    comparison.py): platform counters and rates, then first-party event counts (EVENT_)."""

    IMPRESSIONS = "IMPRESSIONS"
    REACH = "REACH"
    LIKES = "LIKES"
    COMMENTS = "COMMENTS"
    SHARES = "SHARES"
    CLICKS = "CLICKS"
    SAVES = "SAVES"
    ENGAGEMENT_RATE = "ENGAGEMENT_RATE"
    CTR = "CTR"
    EVENT_VIEWS = "EVENT_VIEWS"
    EVENT_IMPRESSIONS = "EVENT_IMPRESSIONS"
    EVENT_CLICKS = "EVENT_CLICKS"
    EVENT_LIKES = "EVENT_LIKES"
    EVENT_COMMENTS = "EVENT_COMMENTS"
    EVENT_SHARES = "EVENT_SHARES"
    EVENT_CONVERSIONS = "EVENT_CONVERSIONS"
    EVENT_CONVERSION_VALUE = "EVENT_CONVERSION_VALUE"
