"""Analytics: engagement predictions and the model behind them."""

from __future__ import annotations

from typing import Annotated

import strawberry

from app.services.analytics import engagement_model, engagement_scores
from resolvers.common import WorkspaceId, attempt, principal_of, state_of, workspace_of
from schema.context import Info
from schema.types.analytics.prediction import (
    EngagementModelVersion,
    EngagementPrediction,
    PredictEngagementInput,
    TrainEngagementModelPayload,
)
from schema.types.jobs import Job


@strawberry.type
class PredictionQuery:
    @strawberry.field(
        description="Predict a draft's engagement (score 0-100, expected engagement rate, "
        "confidence, the factors behind it) from the workspace's model, or the instance "
        "prior when the workspace has too little history. Requires viewer role."
    )
    async def predict_engagement(
        self,
        info: Info,
        input: Annotated[PredictEngagementInput, strawberry.argument(description="The draft.")],
    ) -> EngagementPrediction:
        state = state_of(info)
        answer = await engagement_scores.predict_engagement(
            state.read_session_factory,
            principal_of(info),
            input.to_request(),
            state.keys.signing_secret,
        )
        return EngagementPrediction.of(answer)

    @strawberry.field(
        description="A workspace's engagement model versions with their held-out quality, "
        "newest first. Requires viewer role."
    )
    async def engagement_models(
        self,
        info: Info,
        workspace_id: WorkspaceId,
        first: Annotated[int, strawberry.argument(description="At most this many (1-50).")] = 10,
    ) -> list[EngagementModelVersion]:
        rows = await engagement_scores.versions(
            state_of(info).read_session_factory,
            principal_of(info),
            workspace_of(workspace_id),
            max(1, min(first, 50)),
        )
        return [EngagementModelVersion.from_row(r) for r in rows]


@strawberry.type
class PredictionMutation:
    @strawberry.mutation(
        description="Train a new version of the workspace's engagement model now (a job; the "
        "worker also retrains weekly). Fails with a clear job error when there are fewer "
        "than 40 published posts with impressions. Requires editor role."
    )
    async def train_engagement_model(
        self, info: Info, workspace_id: WorkspaceId
    ) -> TrainEngagementModelPayload:
        state = state_of(info)
        row, errors = await attempt(
            engagement_model.request_training(
                state.session_factory,
                state.arq,
                principal_of(info),
                workspace_of(workspace_id),
                max_attempts=state.settings.job_max_attempts,
            )
        )
        return TrainEngagementModelPayload(job=Job.from_row(row) if row else None, errors=errors)
