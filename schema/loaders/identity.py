"""DataLoaders of the identity domain."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from strawberry.dataloader import DataLoader

from app.models import User
from schema.loaders.base import by_id

if TYPE_CHECKING:
    from app.state import AppState


class IdentityLoaders:
    def __init__(self, state: AppState) -> None:
        self.users: DataLoader[uuid.UUID, User | None] = DataLoader(
            load_fn=lambda ids: by_id(state, User, ids)
        )
