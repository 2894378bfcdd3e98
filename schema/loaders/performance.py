"""DataLoaders of analytics: a content item's snapshot history, and drafts' predicted
engagement."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from strawberry.dataloader import DataLoader

from app.services.analytics import engagement_scores, performance
from schema.loaders.base import mapped

if TYPE_CHECKING:
    from app.state import AppState


class PerformanceLoaders:
    def __init__(self, state: AppState) -> None:
        # Every `history` of one contentPerformance (per target, per platform, in all) reads
        # its snapshots from one statement.
        self.history: DataLoader[uuid.UUID, list[performance.Snapshot]] = DataLoader(
            load_fn=lambda ids: mapped(state, performance.history_for, ids, list)
        )
        # Every `predictedEngagement` of a request: one model look-up per workspace and
        # all predictions in one worker thread; the same text asked twice is scored once.
        self.predictions: DataLoader[engagement_scores.PredictRequest, engagement_scores.Answer] = (
            DataLoader(
                load_fn=lambda requests: engagement_scores.predict_many(
                    state.read_session_factory, requests, state.keys.signing_secret
                )
            )
        )
