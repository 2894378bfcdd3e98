"""Root mutation fields."""

from __future__ import annotations

from typing import Annotated, Any

import strawberry

from app.errors import ValidationFailed
from app.services import diagnostics
from schema.context import Context
from schema.types.errors import UserError
from schema.types.job import Job, PingPayload


@strawberry.type(description="Entry points for changing data.")
class Mutation:
    @strawberry.mutation(
        description="Queue a `ping` job. The worker completes it and publishes its events; "
        "follow them with the `jobEvents` subscription. Proves API -> worker -> subscriber."
    )
    async def ping(
        self,
        info: strawberry.Info[Context, Any],
        message: Annotated[
            str, strawberry.argument(description="Echoed back in the result.")
        ] = "ping",
        delay_ms: Annotated[
            int,
            strawberry.argument(
                description="How long the worker waits before answering (0-10000 ms)."
            ),
        ] = 0,
    ) -> PingPayload:
        state = info.context.state
        try:
            row = await diagnostics.start_ping(
                state.session_factory,
                state.arq,
                message=message,
                delay_ms=delay_ms,
                max_attempts=state.settings.job_max_attempts,
            )
        except ValidationFailed as exc:
            return PingPayload(job=None, errors=UserError.many(exc.errors))
        return PingPayload(job=Job.from_row(row), errors=[])
