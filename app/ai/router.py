"""Primary -> secondary routing with bounded, jittered retries and a circuit breaker.

Retries and fallback happen only before the first text arrives: once a delta has gone to
subscribers, starting again elsewhere would repeat text, so a failure mid-stream is raised
(and the job's own retry starts the attempt over, from an empty text).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, Awaitable, Callable
from dataclasses import dataclass

from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt, wait_random_exponential

from app.ai.anthropic_messages import AnthropicMessages
from app.ai.llm import (
    CompletionRequest,
    Delta,
    Finished,
    Provider,
    ProviderError,
    StreamItem,
    Usage,
)
from app.ai.offline import OfflineWriter
from app.ai.openai_chat import OpenAIChat
from app.logging import get_logger
from app.settings import Settings

log = get_logger(__name__)


class CircuitBreaker:
    """Open after `threshold` consecutive failures; after `cooldown` seconds let one trial
    call through (half-open): success closes it, failure opens it again."""

    def __init__(
        self, threshold: int, cooldown: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.threshold = threshold
        self.cooldown = cooldown
        self._clock = clock
        self.failures = 0
        self._opened_at: float | None = None

    @property
    def is_open(self) -> bool:
        return self._opened_at is not None and self._clock() - self._opened_at < self.cooldown

    def allow(self) -> bool:
        return not self.is_open

    def success(self) -> None:
        self.failures = 0
        self._opened_at = None

    def failure(self) -> None:
        self.failures += 1
        if self.failures >= self.threshold:
            self._opened_at = self._clock()


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 2  # per provider, first call included
    backoff_seconds: float = 0.5  # jittered exponential, from this
    backoff_max_seconds: float = 4.0


class Router:
    def __init__(
        self,
        primary: Provider,
        secondary: Provider | None = None,
        *,
        retry: RetryPolicy | None = None,
        breaker_threshold: int = 3,
        breaker_cooldown: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.primary = primary
        self.secondary = secondary
        self.retry = retry or RetryPolicy()
        self.breakers = {
            p.name: CircuitBreaker(breaker_threshold, breaker_cooldown, clock)
            for p in (primary, secondary)
            if p is not None
        }

    @property
    def providers(self) -> list[Provider]:
        return [p for p in (self.primary, self.secondary) if p is not None]

    async def _open(
        self, provider: Provider, request: CompletionRequest, counter: list[int]
    ) -> tuple[AsyncGenerator[StreamItem, None], StreamItem]:
        """Start a stream and wait for its first item: the part that is safe to retry."""
        counter[0] += 1
        stream = provider.stream(request)
        try:
            first = await anext(stream)
        except StopAsyncIteration:
            raise ProviderError(provider.name, "empty stream", retryable=True) from None
        except BaseException:
            await stream.aclose()
            raise
        return stream, first

    async def stream(self, request: CompletionRequest) -> AsyncGenerator[StreamItem, None]:
        providers = self.providers
        last: ProviderError | None = None
        for index, provider in enumerate(providers):
            breaker = self.breakers[provider.name]
            has_next = index + 1 < len(providers)
            if not breaker.allow() and has_next:
                log.info("ai_circuit_open", provider=provider.name)
                last = ProviderError(provider.name, "circuit open", retryable=True)
                continue

            def same_provider(exc: BaseException, has_next: bool = has_next) -> bool:
                # A rate limit is better spent on the secondary than waited out here.
                return (
                    isinstance(exc, ProviderError)
                    and exc.retryable
                    and not (exc.rate_limited and has_next)
                )

            counter = [0]
            retrying = AsyncRetrying(
                stop=stop_after_attempt(self.retry.attempts),
                wait=wait_random_exponential(
                    multiplier=self.retry.backoff_seconds, max=self.retry.backoff_max_seconds
                ),
                retry=retry_if_exception(same_provider),
                reraise=True,
            )
            try:
                opened: tuple[AsyncGenerator[StreamItem, None], StreamItem] = await retrying(
                    self._open, provider, request, counter
                )
                stream, first = opened
            except ProviderError as exc:
                breaker.failure()
                log.warning("ai_provider_failed", provider=provider.name, error=str(exc))
                if not exc.retryable:
                    raise
                last = exc
                continue
            fallback_from = providers[0].name if index > 0 else None
            try:
                item: StreamItem | None = first
                while item is not None:
                    if isinstance(item, Finished):
                        item = Finished(
                            item.usage.with_(attempts=counter[0], fallback_from=fallback_from)
                        )
                    yield item
                    item = await anext(stream, None)
            except ProviderError:
                breaker.failure()
                raise
            finally:
                await stream.aclose()
            breaker.success()
            return
        assert last is not None
        raise last


OnDelta = Callable[[str], Awaitable[None]]


async def complete(
    router: Router, request: CompletionRequest, on_delta: OnDelta, *, deadline_seconds: float
) -> tuple[str, Usage]:
    """Consume a routed stream: hand each delta to `on_delta`, return the text and usage.
    The whole call, retries and fallback included, gets `deadline_seconds` (a coroutine,
    not a generator, so the timeout cannot leak into a caller's code)."""
    parts: list[str] = []
    usage: Usage | None = None
    try:
        async with asyncio.timeout(deadline_seconds):
            async for item in router.stream(request):
                if isinstance(item, Delta):
                    parts.append(item.text)
                    await on_delta(item.text)
                else:
                    usage = item.usage
    except TimeoutError:
        raise ProviderError("router", "deadline exceeded", retryable=True) from None
    if usage is None:
        raise ProviderError("router", "the stream ended without usage", retryable=True)
    return "".join(parts), usage


def build_provider(name: str, settings: Settings) -> Provider:
    if name == "openai":
        key = settings.openai_api_key
        return OpenAIChat(
            api_key=key.get_secret_value() if key else None,
            base_url=settings.openai_base_url,
            model=settings.openai_model,
            fast_model=settings.openai_fast_model,
            timeout_seconds=settings.ai_timeout_seconds,
        )
    if name == "anthropic":
        key = settings.anthropic_api_key
        return AnthropicMessages(
            api_key=key.get_secret_value() if key else None,
            base_url=settings.anthropic_base_url,
            model=settings.anthropic_model,
            fast_model=settings.anthropic_fast_model,
            timeout_seconds=settings.ai_timeout_seconds,
        )
    return OfflineWriter(delay_seconds=settings.ai_offline_delay_ms / 1000)


def build_router(settings: Settings) -> Router:
    primary = settings.resolved_ai_provider
    fallback = settings.ai_fallback_provider
    return Router(
        build_provider(primary, settings),
        build_provider(fallback, settings) if fallback and fallback != primary else None,
        retry=RetryPolicy(
            attempts=settings.ai_max_attempts,
            backoff_seconds=settings.ai_backoff_seconds,
            backoff_max_seconds=settings.ai_backoff_max_seconds,
        ),
        breaker_threshold=settings.ai_breaker_failures,
        breaker_cooldown=settings.ai_breaker_cooldown_seconds,
    )


_ROUTERS: dict[tuple[object, ...], Router] = {}


def router_for(settings: Settings) -> Router:
    """One router (its HTTP clients and breakers) per process and configuration."""
    key = (
        settings.resolved_ai_provider,
        settings.ai_fallback_provider,
        settings.openai_base_url,
        settings.openai_model,
        settings.anthropic_base_url,
        settings.anthropic_model,
        settings.ai_offline_delay_ms,
    )
    if key not in _ROUTERS:
        _ROUTERS[key] = build_router(settings)
    return _ROUTERS[key]
