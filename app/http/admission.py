"""Admitting an operation: rate limits, rejected credentials and an unavailable database
turned into the errors clients see (shared by HTTP and websockets)."""

from __future__ import annotations

from graphql import GraphQLError
from strawberry.types.execution import ExecutionResult

from app.auth import AuthenticationFailed
from app.errors import AppError, RateLimited, ServiceUnavailable
from app.infra.ratelimit import Decision
from app.metrics import Metrics
from schema.context import Context
from schema.extensions import format_errors


def rate_limited(decision: Decision) -> RateLimited:
    """The refusal, naming the limit that refused (operations, or rejected credentials)."""
    return RateLimited(decision.message(), extra={"retryAfter": decision.retry_after})


def error_result(error: AppError, max_errors: int, metrics: Metrics) -> ExecutionResult:
    """An answer refused before the schema ran; counted like the errors the schema returns."""
    graphql_error = GraphQLError(error.message, original_error=error)
    errors = format_errors([graphql_error], max_errors)
    metrics.count_errors(errors)
    return ExecutionResult(data=None, errors=errors)


class DatabaseDown(Exception):
    """Raised from `on_ws_connect` when the credential cannot be checked: the handlers
    close the socket with 1013 (try again later) instead of rejecting the credential."""

    def __init__(self, error: ServiceUnavailable) -> None:
        super().__init__(error.message)
        self.error = error


async def admit(context: Context) -> Decision:
    principal = context.principal
    # A request with a credential is also refused while its address is over the limit of
    # rejected credentials (see RateLimiter.hit).
    ip = principal.meta.ip if context.authorization else None
    return await context.state.rate_limiter.hit(principal.rate_limit_key, principal.plan, ip=ip)


async def rejected(context: Context, failure: AuthenticationFailed) -> AppError:
    """What to answer a rejected credential: UNAUTHENTICATED, or RATE_LIMITED once its
    address has presented too many that were never valid (token or key guessing)."""
    if not failure.guess:
        return failure
    decision = await context.state.rate_limiter.reject(context.principal.meta.ip)
    return failure if decision.allowed else rate_limited(decision)
