"""predictEngagement, trainEngagementModel and engagementModels: the engagement model's
answers and its versions."""

from __future__ import annotations

import uuid
from datetime import datetime

import strawberry
from strawberry import relay

from app.models import EngagementModel as EngagementModelRow
from app.services.analytics import engagement_scores
from schema.context import Info
from schema.ids import parse_id
from schema.types.errors import UserError
from schema.types.jobs import Job
from schema.types.vocabulary import ContentType, Platform, PredictionBasis


@strawberry.input(description="A draft to score before it goes out.")
class PredictEngagementInput:
    workspace_id: relay.GlobalID = strawberry.field(
        description="Workspace whose model answers (its own, else the instance prior)."
    )
    text: str = strawberry.field(description="The post's text (at most 100,000 characters).")
    platform: Platform | None = strawberry.field(
        default=None,
        description="Where it would go out; null: not decided (averaged over the platforms "
        "of past posts).",
    )
    content_type: ContentType = strawberry.field(description="What kind of piece it is.")
    scheduled_at: datetime | None = strawberry.field(
        default=None,
        description="When it would go out; a time without an offset is read in `timezone`. "
        "Null: not decided (the model's neutral time: averaged over past posts' times).",
    )
    timezone: str = strawberry.field(
        default="UTC",
        description="IANA zone whose weekday and hour count (the audience's, usually).",
    )
    has_media: bool = strawberry.field(default=False, description="Whether it carries media.")

    def to_request(self) -> engagement_scores.PredictRequest:
        return engagement_scores.PredictRequest(
            workspace_id=parse_id(self.workspace_id, "Workspace", "workspaceId"),
            text=self.text,
            platform=Platform(self.platform).value if self.platform is not None else None,
            content_type=ContentType(self.content_type).value,
            scheduled_at=self.scheduled_at,
            timezone=self.timezone,
            has_media=self.has_media,
        )


@strawberry.type(description="One thing that moved a prediction, and by how much.")
class PredictionFactor:
    name: str = strawberry.field(
        description="The feature group: length, readability, sentiment, questions, call to "
        "action, hashtags, media, posting time, platform, content type."
    )
    impact: float = strawberry.field(
        description="Change in expected engagement rate this factor makes, against past "
        "posts' mix of it (positive helps)."
    )


@strawberry.type(description="A post's predicted engagement.")
class EngagementPrediction:
    score: float | None = strawberry.field(
        description="0-100: where the prediction falls among the model's training posts "
        "(50 is a typical post). Null when no model exists yet."
    )
    expected_engagement_rate: float | None = strawberry.field(
        description="Predicted (likes + comments + shares) / impressions."
    )
    confidence: float = strawberry.field(
        description="0-1, from the model's held-out rank correlation and its sample size; 0 "
        "without a model."
    )
    factors: list[PredictionFactor] = strawberry.field(
        description="The factors that moved the prediction most, strongest first."
    )
    basis: PredictionBasis = strawberry.field(description="Which model answered.")
    model_version: int | None = strawberry.field(description="Version of that model.")
    explanation: str = strawberry.field(description="Where the numbers come from, in words.")

    @classmethod
    def of(cls, answer: engagement_scores.Answer) -> EngagementPrediction:
        found = answer.prediction
        return cls(
            score=found.score if found else None,
            expected_engagement_rate=found.expected_engagement_rate if found else None,
            confidence=found.confidence if found else 0.0,
            factors=[PredictionFactor(name=f.name, impact=f.impact) for f in found.factors]
            if found
            else [],
            basis=answer.basis,
            model_version=answer.model.version if answer.model else None,
            explanation=answer.explanation,
        )


@strawberry.type(description="One trained version of a workspace's engagement model.")
class EngagementModelVersion:
    version: int = strawberry.field(description="1, 2, ... per workspace.")
    algorithm: str = strawberry.field(description="The learning algorithm and its revision.")
    trained_at: datetime = strawberry.field(description="When it was trained.")
    train_size: int = strawberry.field(description="Posts it learned from.")
    test_size: int = strawberry.field(
        description="Newest posts held out to measure it (not seen in the measurement)."
    )
    mae: float = strawberry.field(description="Mean absolute error on the held-out posts.")
    baseline_mae: float = strawberry.field(
        description="The same for a constant guess (the training median): the model is "
        "useful when `mae` is clearly below it."
    )
    spearman: float | None = strawberry.field(
        description="Rank correlation of predictions and outcomes on the held-out posts."
    )

    @classmethod
    def from_row(cls, row: EngagementModelRow) -> EngagementModelVersion:
        return cls(
            version=row.version,
            algorithm=row.algorithm,
            trained_at=row.trained_at,
            train_size=row.n_train,
            test_size=row.n_test,
            mae=row.mae,
            baseline_mae=row.baseline_mae,
            spearman=row.spearman,
        )


@strawberry.type(description="The result of trainEngagementModel.")
class TrainEngagementModelPayload:
    job: Job | None = strawberry.field(
        description="The queued training job (follow it with jobEvents); null on error."
    )
    errors: list[UserError] = strawberry.field(description="Why nothing was queued, if so.")


PREDICTED_DESCRIPTION = (
    "The draft's predicted engagement, as predictEngagement answers for the same text, "
    "platform and content type with no posting time (the model's neutral time). Computed "
    "when asked for, batched per request."
)
PLATFORM_ARGUMENT = strawberry.argument(
    description="Score it for this platform; null: not for one platform (averaged over the "
    "platforms of past posts)."
)


async def predicted_engagement(
    info: Info,
    *,
    workspace_id: uuid.UUID,
    text: str,
    platform: str | None,
    content_type: str,
    has_media: bool = False,
) -> EngagementPrediction:
    """A draft's prediction through the request's loader (longer texts: their first
    MAX_TEXT characters, as predictEngagement accepts)."""
    request = engagement_scores.PredictRequest(
        workspace_id=workspace_id,
        text=text[: engagement_scores.MAX_TEXT],
        platform=platform,
        content_type=content_type,
        has_media=has_media,
    )
    return EngagementPrediction.of(await info.context.loaders.performance.predictions.load(request))


async def content_type_of(info: Info, content_id: uuid.UUID) -> str | None:
    """The content type of the item a draft belongs to (batched)."""
    row = await info.context.loaders.content.contents.load(content_id)
    return row.content_type if row is not None else None
