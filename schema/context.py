"""Per-request GraphQL context and the per-operation DataLoaders."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from contextvars import ContextVar, Token
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import select, tuple_
from starlette.requests import Request
from starlette.responses import Response
from starlette.websockets import WebSocket
from strawberry.dataloader import DataLoader

from app.auth import ANONYMOUS, Principal
from app.errors import AppError
from app.models import (
    ApiKey,
    AudienceSegment,
    Campaign,
    Content,
    ContentComment,
    ContentVariation,
    ContentVersion,
    Job,
    MediaAsset,
    Membership,
    User,
    Workspace,
)
from app.pagination import Page
from app.services.content import campaigns, comments, media, search, variations, versions
from app.services.content import items as content
from app.services.workspaces import teams as workspaces

if TYPE_CHECKING:
    from app.state import AppState

RowT = TypeVar(
    "RowT",
    Job,
    User,
    Workspace,
    ApiKey,
    Content,
    Campaign,
    ContentVariation,
    MediaAsset,
    AudienceSegment,
)
NIL = uuid.UUID(int=0)


@dataclass
class DataLoaders:
    """One loader per relation, batched into one statement per tick, cached per operation."""

    state: AppState
    job: DataLoader[uuid.UUID, Job | None] = field(init=False)
    users: DataLoader[uuid.UUID, User | None] = field(init=False)
    workspaces: DataLoader[uuid.UUID, Workspace | None] = field(init=False)
    api_keys: DataLoader[uuid.UUID, ApiKey | None] = field(init=False)
    member_counts: DataLoader[uuid.UUID, int] = field(init=False)
    # (workspace id, first, after) -> a page of members: nested lists batch too.
    members_page: DataLoader[tuple[uuid.UUID, int, str | None], Page[Membership]] = field(
        init=False
    )
    contents: DataLoader[uuid.UUID, Content | None] = field(init=False)
    campaigns: DataLoader[uuid.UUID, Campaign | None] = field(init=False)
    variations: DataLoader[uuid.UUID, ContentVariation | None] = field(init=False)
    media: DataLoader[uuid.UUID, MediaAsset | None] = field(init=False)
    segments: DataLoader[uuid.UUID, AudienceSegment | None] = field(init=False)
    # (user id, workspace id) -> role name: current even within the request that created it.
    roles: DataLoader[tuple[uuid.UUID, uuid.UUID], str | None] = field(init=False)
    variations_by_content: DataLoader[uuid.UUID, list[ContentVariation]] = field(init=False)
    versions_by_content: DataLoader[uuid.UUID, list[ContentVersion]] = field(init=False)
    comments_by_content: DataLoader[uuid.UUID, list[ContentComment]] = field(init=False)
    comment_counts: DataLoader[uuid.UUID, int] = field(init=False)
    media_by_content: DataLoader[uuid.UUID, list[MediaAsset]] = field(init=False)
    # (campaign id, first, after) -> a page of the campaign's items
    campaign_contents: DataLoader[tuple[uuid.UUID, int, str | None], Page[Content]] = field(
        init=False
    )
    # (content id, how many) -> [(similar content id, cosine similarity)]
    similar: DataLoader[tuple[uuid.UUID, int], list[tuple[uuid.UUID, float]]] = field(init=False)
    _visible_users: set[uuid.UUID] | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        self.job = DataLoader(load_fn=lambda ids: self._by_id(Job, ids))
        self.users = DataLoader(load_fn=lambda ids: self._by_id(User, ids))
        self.workspaces = DataLoader(load_fn=lambda ids: self._by_id(Workspace, ids))
        self.api_keys = DataLoader(load_fn=lambda ids: self._by_id(ApiKey, ids))
        self.member_counts = DataLoader(load_fn=self._member_counts)
        self.members_page = DataLoader(
            load_fn=lambda keys: self._pages(workspaces.members_pages, keys)
        )
        self.campaign_contents = DataLoader(
            load_fn=lambda keys: self._pages(campaigns.campaign_pages, keys)
        )
        self.contents = DataLoader(load_fn=lambda ids: self._by_id(Content, ids))
        self.campaigns = DataLoader(load_fn=lambda ids: self._by_id(Campaign, ids))
        self.variations = DataLoader(load_fn=lambda ids: self._by_id(ContentVariation, ids))
        self.media = DataLoader(load_fn=lambda ids: self._by_id(MediaAsset, ids))
        self.segments = DataLoader(load_fn=lambda ids: self._by_id(AudienceSegment, ids))
        self.roles = DataLoader(load_fn=self._roles)
        self.variations_by_content = DataLoader(
            load_fn=lambda ids: self._grouped(variations.variations_for, ids)
        )
        self.versions_by_content = DataLoader(
            load_fn=lambda ids: self._grouped(versions.versions_for, ids)
        )
        self.comments_by_content = DataLoader(
            load_fn=lambda ids: self._grouped(comments.comments_for, ids)
        )
        self.comment_counts = DataLoader(load_fn=self._comment_counts)
        self.media_by_content = DataLoader(
            load_fn=lambda ids: self._grouped(media.media_for_contents, ids)
        )
        self.similar = DataLoader(load_fn=self._similar)

    async def _roles(self, keys: Sequence[tuple[uuid.UUID, uuid.UUID]]) -> list[str | None]:
        async with self.state.read_session_factory() as session:
            rows = await session.execute(
                select(Membership.user_id, Membership.workspace_id, Membership.role).where(
                    tuple_(Membership.user_id, Membership.workspace_id).in_(list(keys))
                )
            )
            found = {(u, w): role for u, w, role in rows.all()}
        return [found.get(key) for key in keys]

    async def _grouped(self, fetch: Any, ids: Sequence[uuid.UUID]) -> list[Any]:
        async with self.state.read_session_factory() as session:
            found = await fetch(session, ids)
        return [found.get(i, []) for i in ids]

    async def _comment_counts(self, ids: Sequence[uuid.UUID]) -> list[int]:
        async with self.state.read_session_factory() as session:
            counts = await comments.comment_counts(session, ids)
        return [counts.get(i, 0) for i in ids]

    async def _similar(
        self, keys: Sequence[tuple[uuid.UUID, int]]
    ) -> list[list[tuple[uuid.UUID, float]]]:
        async with self.state.read_session_factory() as session:
            found = await search.similar_many(session, keys)
        return [found.get(key, []) for key in keys]

    async def _by_id(self, model: type[RowT], ids: Sequence[uuid.UUID]) -> list[RowT | None]:
        base = content.select_readable() if model is Content else select(model)
        query = base.where(model.id.in_(ids))
        async with self.state.read_session_factory() as session:
            rows = (await session.scalars(query)).all()
        by_id = {row.id: row for row in rows}
        return [by_id.get(i) for i in ids]

    async def _member_counts(self, ids: Sequence[uuid.UUID]) -> list[int]:
        async with self.state.read_session_factory() as session:
            counts = await workspaces.members_count(session, ids)
        return [counts.get(i, 0) for i in ids]

    async def _pages(
        self, fetch: Any, keys: Sequence[tuple[uuid.UUID, int, str | None]]
    ) -> list[Page[Any] | AppError]:
        """Nested lists: `fetch(session, owner ids, first=, after=)` pages many owners in one
        statement; owners asking for the same page size and cursor go together."""
        groups: dict[tuple[int, str | None], list[uuid.UUID]] = {}
        for owner, first, after in keys:
            groups.setdefault((first, after), []).append(owner)
        pages: dict[tuple[uuid.UUID, int, str | None], Page[Any] | AppError] = {}
        async with self.state.read_session_factory() as session:
            for (first, after), ids in groups.items():
                try:
                    found = await fetch(session, ids, first=first, after=after)
                except AppError as exc:  # a malformed cursor fails its own lists only
                    pages.update({(owner, first, after): exc for owner in ids})
                    continue
                pages.update({(owner, first, after): page for owner, page in found.items()})
        return [pages[key] for key in keys]

    async def visible_user_ids(self, principal: Principal) -> set[uuid.UUID]:
        """The caller and everyone sharing a workspace with it (once per operation)."""
        if self._visible_users is None:
            visible = {principal.user_id} if principal.user_id else set()
            if principal.access:
                async with self.state.read_session_factory() as session:
                    rows = await session.scalars(
                        select(Membership.user_id).where(
                            Membership.workspace_id.in_(list(principal.access))
                        )
                    )
                    visible.update(rows.all())
            self._visible_users = {u for u in visible if u is not None}
        return self._visible_users

    @staticmethod
    def uuid_or_nil(value: str) -> uuid.UUID:
        try:
            return uuid.UUID(value)
        except ValueError:
            return NIL


# Websocket operations share one context per connection; each operation runs in its own
# task, so a ContextVar gives each its own loaders (stale rows never cross operations).
_loaders: ContextVar[DataLoaders | None] = ContextVar("loaders", default=None)


def current_loaders() -> DataLoaders:
    """The loaders of the operation being executed (for values loaded outside a resolver,
    see schema.lookahead.Later)."""
    loaders = _loaders.get()
    if loaders is None:
        raise RuntimeError("no GraphQL operation is being executed")
    return loaders


@dataclass
class Context:
    state: AppState
    request: Request | WebSocket
    response: Response | WebSocket | None
    request_id: str
    principal: Principal = ANONYMOUS
    # A credential was presented but rejected: every operation fails UNAUTHENTICATED.
    auth_error: AppError | None = None
    connection_params: dict[str, Any] | None = None
    # The credential the principal came from (websockets re-check it per operation).
    authorization: str | None = None

    @property
    def loaders(self) -> DataLoaders:
        loaders = _loaders.get()
        if loaders is None or loaders.state is not self.state:
            loaders = self.fresh_loaders()
        return loaders

    def fresh_loaders(self) -> DataLoaders:
        """New loaders for this task: call per subscription event so each sees fresh rows."""
        loaders = DataLoaders(self.state)
        _loaders.set(loaders)
        return loaders

    def begin_operation(self) -> Token[DataLoaders | None]:
        """Every operation starts with empty loaders (see `OperationScope`)."""
        return _loaders.set(DataLoaders(self.state))

    @staticmethod
    def end_operation(token: Token[DataLoaders | None]) -> None:
        _loaders.reset(token)

    @property
    def client_ip(self) -> str | None:
        return self.request.client.host if self.request.client else None


async def visible_rows(
    context: Context, loader: DataLoader[uuid.UUID, Any], node_ids: Iterable[str]
) -> list[Any]:
    """Rows for `node(id:)`: those outside the caller's workspaces look like they do not exist."""
    rows = await loader.load_many([DataLoaders.uuid_or_nil(i) for i in node_ids])
    principal = context.principal
    return [
        r if r is not None and principal.role_in(r.workspace_id) is not None else None for r in rows
    ]
