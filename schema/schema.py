"""The one `Schema`: root types, limits and extensions wired from settings."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from functools import partial
from typing import Any

import strawberry
from strawberry.extensions import (
    DisableIntrospection,
    MaxAliasesLimiter,
    MaxTokensLimiter,
    SchemaExtension,
    ValidationCache,
)
from strawberry.schema.config import StrawberryConfig
from strawberry.types.execution import ExecutionResult

from app.settings import Settings
from resolvers.mutation import Mutation
from resolvers.query import Query
from resolvers.subscription import Subscription
from schema.extensions import ErrorPolicy, OperationMetrics, format_errors, timeout_error
from schema.limits import MaxDepthLimiter, SafeParserCache

# Bounded caches: distinct query texts come from clients and must not grow memory forever.
CACHE_SIZE = 512


class SmartContentSchema(strawberry.Schema):
    """Adds a per-operation execution timeout to queries and mutations over HTTP."""

    execution_timeout: float = 15.0
    max_errors: int = 20

    async def execute(self, *args: Any, **kwargs: Any) -> ExecutionResult:
        try:
            async with asyncio.timeout(self.execution_timeout):
                return await super().execute(*args, **kwargs)
        except TimeoutError:
            errors = format_errors([timeout_error(self.execution_timeout)], self.max_errors)
            return ExecutionResult(data=None, errors=errors)


def build_schema(settings: Settings | None = None) -> SmartContentSchema:
    settings = settings or Settings()
    # Factories, not instances: each operation gets fresh extension objects (they hold
    # per-operation state such as the execution context).
    extensions: list[Callable[[], SchemaExtension] | type[SchemaExtension]] = [
        OperationMetrics,  # outermost: sees the codes ErrorPolicy assigned
        partial(ErrorPolicy, max_errors=settings.max_errors),
        partial(MaxTokensLimiter, max_token_count=settings.max_tokens),
        partial(MaxDepthLimiter, max_depth=settings.max_query_depth),
        partial(MaxAliasesLimiter, max_alias_count=settings.max_aliases),
        # Their LRU caches live at module level, shared by every operation.
        partial(SafeParserCache, maxsize=CACHE_SIZE),
        partial(ValidationCache, maxsize=CACHE_SIZE),
    ]
    if not settings.introspection:
        extensions.append(DisableIntrospection)
    schema = SmartContentSchema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        extensions=extensions,
        config=StrawberryConfig(auto_camel_case=True),
    )
    schema.execution_timeout = settings.execution_timeout_seconds
    schema.max_errors = settings.max_errors
    return schema


def schema_sdl() -> str:
    """The SDL committed as `schema.graphql` (independent of runtime settings)."""
    return build_schema(Settings(_env_file=None)).as_str() + "\n"
