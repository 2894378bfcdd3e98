"""DataLoaders of publishing: accounts, scheduled posts, their targets and series."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import TYPE_CHECKING

from strawberry.dataloader import DataLoader

from app.models import PostingSlot, PostSeries, PostTarget, ScheduledPost, SocialAccount
from app.services.publishing import calendar, recurrence, slots
from schema.loaders.base import by_id, mapped

if TYPE_CHECKING:
    from app.state import AppState


class PublishingLoaders:
    def __init__(self, state: AppState) -> None:
        self.accounts: DataLoader[uuid.UUID, SocialAccount | None] = DataLoader(
            load_fn=lambda ids: by_id(state, SocialAccount, ids)
        )
        self.posts: DataLoader[uuid.UUID, ScheduledPost | None] = DataLoader(
            load_fn=lambda ids: by_id(state, ScheduledPost, ids)
        )
        self.targets: DataLoader[uuid.UUID, PostTarget | None] = DataLoader(
            load_fn=lambda ids: by_id(state, PostTarget, ids)
        )
        self.targets_by_post: DataLoader[uuid.UUID, list[PostTarget]] = DataLoader(
            load_fn=lambda ids: mapped(state, calendar.targets_for, ids, list)
        )
        self.series: DataLoader[uuid.UUID, PostSeries | None] = DataLoader(
            load_fn=lambda ids: by_id(state, PostSeries, ids)
        )
        # The time of the occurrence after a post, where it exists already.
        self.next_occurrence: DataLoader[uuid.UUID, datetime | None] = DataLoader(
            load_fn=lambda ids: mapped(state, recurrence.next_times, ids, lambda: None)
        )
        self.slots_by_account: DataLoader[uuid.UUID, list[PostingSlot]] = DataLoader(
            load_fn=lambda ids: mapped(state, slots.slots_for, ids, list)
        )
