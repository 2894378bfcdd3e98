"""DataLoaders of analytics' platform metrics: a content item's snapshot history."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from strawberry.dataloader import DataLoader

from app.services.analytics import performance
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
