"""A real worker process for the publishing fault test: the product's worker, which notes
in Redis when it has started. Run as `python -m tests.publishing.fault_worker` with
DATABASE_URL / REDIS_URL set."""

from __future__ import annotations

import os
from typing import Any

from arq.worker import Worker

from app.logging import configure_logging
from app.settings import get_settings
from workers.settings import publish_worker_settings

READY_SET = "publish-fault:workers"  # pids of workers that finished starting


def main() -> None:
    settings = get_settings()
    configure_logging(settings.log_level, settings.log_json)
    kwargs = publish_worker_settings(settings)
    startup = kwargs["on_startup"]

    async def on_startup(ctx: dict[str, Any]) -> None:
        await startup(ctx)
        await ctx["redis"].sadd(READY_SET, os.getpid())

    kwargs["on_startup"] = on_startup
    Worker(**kwargs).run()


if __name__ == "__main__":
    main()
