"""The one small interface every text provider implements.

A provider streams text deltas for a request and ends with one `Finished` carrying the
usage it reported (or an estimate where it reports none). Errors are mapped to
`ProviderError` with a `retryable` flag, so the router (app/ai/router.py) decides about
retries and fallback without knowing any SDK's exception classes.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from dataclasses import dataclass, field, replace
from typing import Any, Literal, Protocol

# What a request is for: the router can send short transforms to a cheaper model.
Task = Literal["generate", "refine", "transform"]


@dataclass(frozen=True)
class DraftSpec:
    """The structured inputs of a draft, for the offline writer (LLMs get the rendered
    prompt instead, which carries the same information as text)."""

    brief: str
    content_type: str = "SOCIAL_POST"
    tone: str = ""
    length: str = "MEDIUM"
    keywords: tuple[str, ...] = ()
    platform: str | None = None
    brand_voice: dict[str, Any] = field(default_factory=dict)
    segment: dict[str, Any] | None = None
    max_chars: int | None = None
    max_hashtags: int | None = None
    # Which of several alternative drafts this is (0 = the first): varies the wording.
    alternative: int = 0
    # Refining or repurposing existing text: the text (with its title) and the instruction.
    source: str | None = None
    source_title: str | None = None
    instruction: str | None = None
    # Personalising `source` for `segment`, or writing an A/B variant of it with this angle
    # (app/services/ai/personalization.py, variants.py).
    personalize: bool = False
    angle: str | None = None


@dataclass(frozen=True)
class CompletionRequest:
    system: str
    prompt: str
    max_tokens: int = 1024
    temperature: float = 0.7
    task: Task = "generate"
    draft: DraftSpec | None = None


@dataclass(frozen=True)
class Usage:
    """What one completion cost and how fast it was."""

    provider: str
    model: str
    input_tokens: int
    output_tokens: int
    # True when the provider reported no usage and the counts were estimated.
    estimated: bool = False
    first_token_ms: float | None = None
    total_ms: float = 0.0
    attempts: int = 1
    fallback_from: str | None = None

    def with_(self, **changes: Any) -> Usage:
        return replace(self, **changes)


@dataclass(frozen=True)
class Delta:
    text: str


@dataclass(frozen=True)
class Finished:
    usage: Usage


StreamItem = Delta | Finished


class ProviderError(Exception):
    """A provider call failed. `retryable`: rate limit, 5xx, timeout or connection trouble
    (worth another try or the secondary provider); otherwise retrying cannot help."""

    def __init__(
        self,
        provider: str,
        message: str,
        *,
        retryable: bool,
        status: int | None = None,
        rate_limited: bool = False,
    ) -> None:
        super().__init__(f"{provider}: {message}")
        self.provider = provider
        self.retryable = retryable
        self.status = status
        self.rate_limited = rate_limited


class ModelChoice:
    """Which model a task uses: the fast one for per-platform rewrites, else the main one
    (shared by the SDK-backed providers)."""

    def __init__(self, model: str, fast_model: str | None) -> None:
        self._model = model
        self._fast_model = fast_model or model

    def model_for(self, task: Task) -> str:
        return self._fast_model if task == "transform" else self._model


def sdk_error(provider: str, sdk: Any, exc: Exception) -> ProviderError:
    """An official SDK's exception as a ProviderError: retryable for 429, 5xx (Anthropic's
    529 "overloaded" included), timeouts and connection trouble. The OpenAI and Anthropic
    SDKs are generated from one template and name these classes alike (`sdk` is the module);
    anything else while reading a stream is a malformed response."""
    if isinstance(exc, sdk.APITimeoutError):
        return ProviderError(provider, "timed out", retryable=True)
    if isinstance(exc, sdk.APIConnectionError):
        return ProviderError(provider, "connection failed", retryable=True)
    if isinstance(exc, sdk.APIStatusError):
        status = int(exc.status_code)
        return ProviderError(
            provider,
            f"HTTP {status}",
            retryable=status == 429 or status >= 500,
            status=status,
            rate_limited=status == 429,
        )
    return ProviderError(provider, f"malformed response ({type(exc).__name__})", retryable=True)


class Provider(Protocol):
    name: str

    def model_for(self, task: Task) -> str: ...

    def stream(self, request: CompletionRequest) -> AsyncGenerator[StreamItem, None]: ...
