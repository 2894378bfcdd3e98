"""DataLoaders of workspaces, their members, roles and API keys."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING

from sqlalchemy import select, tuple_
from strawberry.dataloader import DataLoader

from app.models import ApiKey, Membership, Workspace
from app.pagination import Page
from app.services.workspaces import members
from schema.loaders.base import PageKey, by_id, mapped, pages

if TYPE_CHECKING:
    from app.state import AppState


class WorkspaceLoaders:
    def __init__(self, state: AppState) -> None:
        self._state = state
        self.workspaces: DataLoader[uuid.UUID, Workspace | None] = DataLoader(
            load_fn=lambda ids: by_id(state, Workspace, ids)
        )
        self.api_keys: DataLoader[uuid.UUID, ApiKey | None] = DataLoader(
            load_fn=lambda ids: by_id(state, ApiKey, ids)
        )
        self.member_counts: DataLoader[uuid.UUID, int] = DataLoader(
            load_fn=lambda ids: mapped(state, members.members_count, ids, int)
        )
        # (workspace id, first, after) -> a page of members: nested lists batch too.
        self.members_page: DataLoader[PageKey, Page[Membership]] = DataLoader(
            load_fn=lambda keys: pages(state, members.members_pages, keys)
        )
        # (user id, workspace id) -> role name: current even within the request that made it.
        self.roles: DataLoader[tuple[uuid.UUID, uuid.UUID], str | None] = DataLoader(
            load_fn=self._roles
        )

    async def _roles(self, keys: Sequence[tuple[uuid.UUID, uuid.UUID]]) -> list[str | None]:
        async with self._state.read_session_factory() as session:
            rows = await session.execute(
                select(Membership.user_id, Membership.workspace_id, Membership.role).where(
                    tuple_(Membership.user_id, Membership.workspace_id).in_(list(keys))
                )
            )
            found = {(u, w): role for u, w, role in rows.all()}
        return [found.get(key) for key in keys]
