"""DataLoaders of background jobs."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from strawberry.dataloader import DataLoader

from app.models import Job
from schema.loaders.base import by_id

if TYPE_CHECKING:
    from app.state import AppState


class JobLoaders:
    def __init__(self, state: AppState) -> None:
        self.job: DataLoader[uuid.UUID, Job | None] = DataLoader(
            load_fn=lambda ids: by_id(state, Job, ids)
        )
