"""Per-request GraphQL context, and each operation's DataLoaders composed from the domains'."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from contextvars import ContextVar, Token
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any

import strawberry
from sqlalchemy import select
from starlette.requests import Request
from starlette.responses import Response
from starlette.websockets import WebSocket
from strawberry.dataloader import DataLoader

from app.auth import ANONYMOUS, Principal
from app.errors import AppError
from app.models import Membership
from schema.loaders.ab_tests import AbTestLoaders
from schema.loaders.base import uuid_or_nil
from schema.loaders.content import ContentLoaders
from schema.loaders.identity import IdentityLoaders
from schema.loaders.jobs import JobLoaders
from schema.loaders.performance import PerformanceLoaders
from schema.loaders.publishing import PublishingLoaders
from schema.loaders.workspaces import WorkspaceLoaders

if TYPE_CHECKING:
    from app.state import AppState


class DataLoaders:
    """Every domain's loaders for one operation: one batch per relation per tick, cached for
    the operation (see schema/loaders/). Each domain's are made when first used: most
    operations touch one or two of them, and every operation gets a fresh set."""

    def __init__(self, state: AppState) -> None:
        self.state = state
        self._visible_users: set[uuid.UUID] | None = None

    # Each domain's loaders are built on first use: a subscription takes new loaders per
    # event, and most events use one domain or none (a shared result, schema.shared_events).
    @cached_property
    def identity(self) -> IdentityLoaders:
        return IdentityLoaders(self.state)

    @cached_property
    def workspaces(self) -> WorkspaceLoaders:
        return WorkspaceLoaders(self.state)

    @cached_property
    def content(self) -> ContentLoaders:
        return ContentLoaders(self.state)

    @cached_property
    def jobs(self) -> JobLoaders:
        return JobLoaders(self.state)

    @cached_property
    def publishing(self) -> PublishingLoaders:
        return PublishingLoaders(self.state)

    @cached_property
    def performance(self) -> PerformanceLoaders:
        return PerformanceLoaders(self.state)

    @cached_property
    def ab_tests(self) -> AbTestLoaders:
        return AbTestLoaders(self.state)

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
        """Every operation starts with empty loaders (see `OperationEdge`)."""
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
    rows = await loader.load_many([uuid_or_nil(i) for i in node_ids])
    principal = context.principal
    return [
        r if r is not None and principal.role_in(r.workspace_id) is not None else None for r in rows
    ]


# What every resolver receives as `info`.
Info = strawberry.Info[Context, Any]
