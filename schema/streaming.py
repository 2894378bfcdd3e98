"""Each streamed result's extension hooks, skipped where they cannot change it.

For every result a subscription yields, Strawberry awaits every extension's `get_results`
and builds an exit stack of every extension's `on_stream_result` hook (a context manager
made per extension per result): about a third of the CPU a shared event costs each
subscriber. Ours need neither for a result without errors: none reports results, and the
stream hooks we have only rewrite a result's errors (each says so with
`stream_hook_touches_errors_only = True`). An extension with any other stream hook or
with results, or a result with errors, takes Strawberry's own path.
"""

from __future__ import annotations

from types import TracebackType
from typing import Any

from strawberry.extensions import SchemaExtension
from strawberry.extensions.context import StreamResultContextManager
from strawberry.extensions.runner import SchemaExtensionsRunner
from strawberry.types import ExecutionContext

ERRORS_ONLY = "stream_hook_touches_errors_only"


class _NoHooks(StreamResultContextManager):
    """Enters and leaves nothing (no state: one instance serves every result)."""

    def __init__(self) -> None:  # nothing to gather: no hook runs
        self.hooks = []

    def __enter__(self) -> None:
        return None

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_val: BaseException | None,
        exc_tb: TracebackType | None,
    ) -> None:
        return None

    async def __aenter__(self) -> None:
        return None

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc_val: BaseException | None,
        exc_tb: TracebackType | None,
    ) -> None:
        return None


_NO_HOOKS = _NoHooks()


def _errors_only(extension: SchemaExtension) -> bool:
    cls = type(extension)
    return cls.on_stream_result is SchemaExtension.on_stream_result or bool(
        getattr(cls, ERRORS_ONLY, False)
    )


class StreamExtensionsRunner(SchemaExtensionsRunner):
    """Strawberry's runner, with the per-result work skipped where it is a no-op."""

    def __init__(
        self, execution_context: ExecutionContext, extensions: list[SchemaExtension]
    ) -> None:
        super().__init__(execution_context, extensions)
        self.skips_clean_results = all(_errors_only(e) for e in self.extensions)
        self.reports = any(
            type(e).get_results is not SchemaExtension.get_results for e in self.extensions
        )

    def on_stream_result(self, result: Any) -> StreamResultContextManager:
        if self.skips_clean_results and not getattr(result, "errors", None):
            return _NO_HOOKS
        return super().on_stream_result(result)

    async def get_extensions_results(self, ctx: ExecutionContext) -> dict[str, Any]:
        if self.reports:
            return await super().get_extensions_results(ctx)
        return dict(ctx.extensions_results)
