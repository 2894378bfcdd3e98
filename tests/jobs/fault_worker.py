"""A real worker process for tests/jobs/test_worker_faults.py: the product's worker with
the `ping` handler wrapped to record each execution, plus a job that kills its worker.

Run as `python -m tests.jobs.fault_worker` with DATABASE_URL / REDIS_URL set.
"""

from __future__ import annotations

import os
import signal
from typing import Any

from arq.worker import Worker
from sqlalchemy import text

from app.jobs.runner import Handler, JobContext
from app.logging import configure_logging
from app.services.ops.diagnostics import PING_KIND, run_ping
from app.settings import get_settings
from workers.settings import worker_settings
from workers.tasks import HANDLERS

RUNS_TABLE = "fault_runs"
SUICIDE_KIND = "fault_suicide"
READY_SET = "fault:workers"  # pids of workers that finished starting


async def recorded_ping(ctx: JobContext) -> dict[str, Any]:
    """`ping`, noting in Postgres when an execution starts and when it completes."""
    async with ctx.factory() as session, session.begin():
        run_id = await session.scalar(
            text(
                f"INSERT INTO {RUNS_TABLE} (job_id, attempt, pid) "
                "VALUES (:job, :attempt, :pid) RETURNING id"
            ),
            {"job": ctx.job.id, "attempt": ctx.job.attempts, "pid": os.getpid()},
        )
    result = await run_ping(ctx)
    async with ctx.factory() as session, session.begin():
        await session.execute(
            text(f"UPDATE {RUNS_TABLE} SET finished = true WHERE id = :id"), {"id": run_id}
        )
    return result


async def suicide(ctx: JobContext) -> dict[str, Any]:
    """Kills the worker running it, every time (a poison job)."""
    os.kill(os.getpid(), signal.SIGKILL)
    raise AssertionError("unreachable")


FAULT_HANDLERS: dict[str, Handler] = {
    **HANDLERS,
    PING_KIND: recorded_ping,
    SUICIDE_KIND: suicide,
}


def main() -> None:
    settings = get_settings()
    configure_logging(settings.log_level, settings.log_json)
    kwargs = worker_settings(settings, handlers=FAULT_HANDLERS)
    startup = kwargs["on_startup"]

    async def on_startup(ctx: dict[str, Any]) -> None:
        await startup(ctx)
        await ctx["redis"].sadd(READY_SET, os.getpid())

    kwargs["on_startup"] = on_startup
    Worker(**kwargs).run()


if __name__ == "__main__":
    main()
