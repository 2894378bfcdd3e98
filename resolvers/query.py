"""Root query fields."""

from __future__ import annotations

from typing import Annotated, Any

import strawberry
from strawberry import relay

from app.errors import BadUserInput
from app.services import health
from schema.context import Context
from schema.types.health import Health
from schema.types.job import Job


@strawberry.type(description="Entry points for reading data.")
class Query:
    @strawberry.field(
        description="Fetch any object by its global ID (Relay). Null when it does not exist."
    )
    async def node(
        self,
        info: strawberry.Info[Context, Any],
        id: Annotated[relay.GlobalID, strawberry.argument(description="Global ID of the object.")],
    ) -> relay.Node | None:
        # Written out rather than `relay.node()`, whose field extension can serve only one
        # schema per process (tests and tools build several).
        try:
            node: relay.Node | None = await id.resolve_node(info, required=False)
        except (KeyError, ValueError, AssertionError) as exc:
            raise BadUserInput(f"Unknown object type in id: {id.type_name!r}") from exc
        return node

    @strawberry.field(description="Reachability of PostgreSQL and Redis, and the server version.")
    async def health(self, info: strawberry.Info[Context, Any]) -> Health:
        state = info.context.state
        return Health.from_report(await health.check(state.session_factory, state.redis))

    @strawberry.field(description="A background job by its global ID.")
    async def job(
        self,
        info: strawberry.Info[Context, Any],
        id: Annotated[relay.GlobalID, strawberry.argument(description="Global ID of the job.")],
    ) -> Job | None:
        if id.type_name != "Job":
            return None
        nodes = await Job.resolve_nodes(info=info, node_ids=[id.node_id])
        return nodes[0]
