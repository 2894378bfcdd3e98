"""Per-request GraphQL context and the per-operation DataLoaders."""

from __future__ import annotations

import uuid
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.websockets import WebSocket
from strawberry.dataloader import DataLoader

from app.models import Job
from app.services import jobs

if TYPE_CHECKING:
    from app.state import AppState


@dataclass
class DataLoaders:
    """One loader per relation, batched into one statement per tick, cached per operation."""

    state: AppState
    job: DataLoader[uuid.UUID, Job | None] = field(init=False)

    def __post_init__(self) -> None:
        self.job = DataLoader(load_fn=self._load_jobs)

    async def _load_jobs(self, ids: list[uuid.UUID]) -> list[Job | None]:
        async with self.state.session_factory() as session:
            return await jobs.get_jobs(session, ids)


# Websocket operations share one context per connection; each operation runs in its own
# task, so a ContextVar gives each its own loaders (stale rows never cross operations).
_loaders: ContextVar[DataLoaders | None] = ContextVar("loaders", default=None)


@dataclass
class Context:
    state: AppState
    request: Request | WebSocket
    response: Response | WebSocket | None
    request_id: str
    connection_params: dict[str, Any] | None = None

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

    @property
    def client_ip(self) -> str | None:
        return self.request.client.host if self.request.client else None
