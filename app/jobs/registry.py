"""Which coroutine performs each job kind.

Each domain declares its kinds in a `JOB_HANDLERS` table next to the handlers; the worker
(workers/tasks.py) lists the domains and combines their tables here. Nothing registers by
import side effect, so a table that is not listed is visibly missing (and a test checks
that every kind the code enqueues has a handler).
"""

from __future__ import annotations

from collections.abc import Mapping

from app.jobs.runner import Handler


def combine(*tables: Mapping[str, Handler]) -> dict[str, Handler]:
    """One table from the domains' tables; a kind declared twice is a programming error."""
    combined: dict[str, Handler] = {}
    for table in tables:
        for kind, handler in table.items():
            if kind in combined:
                raise ValueError(f"duplicate job handler for {kind!r}")
            combined[kind] = handler
    return combined
