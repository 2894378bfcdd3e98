"""The one `Schema`: root types, limits and extensions wired from settings."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from functools import partial
from typing import Any

import strawberry
from graphql import ASTValidationRule, GraphQLError
from strawberry.extensions import (
    AddValidationRules,
    DisableIntrospection,
    MaxTokensLimiter,
    SchemaExtension,
    ValidationCache,
)
from strawberry.extensions.max_aliases import create_validator as alias_rule
from strawberry.schema.config import StrawberryConfig
from strawberry.types.execution import ExecutionResult
from strawberry.types.graphql import OperationType

from app.settings import Settings
from resolvers.mutation import Mutation
from resolvers.query import Query
from resolvers.subscription import Subscription
from schema.extensions import (
    ErrorPolicy,
    OperationMetrics,
    OperationScope,
    format_errors,
    timeout_error,
)
from schema.limits import SafeParserCache, depth_rule

# Bounded caches: distinct query texts come from clients and must not grow memory forever.
CACHE_SIZE = 512


class SmartContentSchema(strawberry.Schema):
    """Adds a per-operation execution timeout to queries and mutations over HTTP."""

    execution_timeout: float = 15.0
    max_errors: int = 20

    def process_errors(self, errors: list[GraphQLError], execution_context: Any = None) -> None:
        """Client mistakes are not server errors: ErrorPolicy logs the masked (internal) ones."""

    async def execute(self, *args: Any, **kwargs: Any) -> ExecutionResult:
        # Subscriptions need a websocket; over plain HTTP they are refused with a 400.
        allowed = kwargs.get("allowed_operation_types")
        if allowed is not None:
            kwargs["allowed_operation_types"] = set(allowed) - {OperationType.SUBSCRIPTION}
        try:
            async with asyncio.timeout(self.execution_timeout):
                return await super().execute(*args, **kwargs)
        except TimeoutError:
            errors = format_errors([timeout_error(self.execution_timeout)], self.max_errors)
            return ExecutionResult(data=None, errors=errors)


def build_schema(settings: Settings | None = None) -> SmartContentSchema:
    settings = settings or Settings()
    validation_rules: list[type[ASTValidationRule]] = [
        depth_rule(settings.max_query_depth),
        alias_rule(settings.max_aliases),
    ]
    # Factories, not instances: each operation gets fresh extension objects (they hold
    # per-operation state such as the execution context).
    extensions: list[Callable[[], SchemaExtension] | type[SchemaExtension]] = [
        OperationScope,
        OperationMetrics,  # outside ErrorPolicy: sees the codes it assigned
        partial(ErrorPolicy, max_errors=settings.max_errors),
        partial(MaxTokensLimiter, max_token_count=settings.max_tokens),
        # Rule classes made once: the validation cache keys on them, so a class per operation
        # (what the stock limiter extensions do) would make every lookup miss.
        partial(AddValidationRules, validation_rules),
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
