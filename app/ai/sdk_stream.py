"""What the SDK-backed providers share around their different streams.

OpenAI's chat completions and Anthropic's messages stream different event shapes, but
everything around reading them is the same: a client with the SDK's own retries off (the
router retries and falls back), the timing of the first token, the text collected for
the token estimate, SDK exceptions mapped to `ProviderError`, refusing a stream that ended
early or empty, and one `Finished` with the usage. A provider only says how to start its
stream and which text pieces and counts its events carry (`_texts`).
"""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from app.ai.llm import (
    CompletionRequest,
    Delta,
    Finished,
    ModelChoice,
    ProviderError,
    StreamItem,
    Usage,
    sdk_error,
)
from app.ai.tokens import usage_counts


@dataclass
class Tally:
    """What a provider's events reported while its text streamed."""

    model: str
    input_tokens: int | None = None
    output_tokens: int | None = None
    # Why the stream is not complete yet (None once it is): Anthropic ends with
    # `message_stop`, and a stream cut before it must not count as a finished answer.
    unfinished: str | None = None


class SdkProvider(ModelChoice):
    """A provider backed by an official SDK client. `sdk` is the SDK module (its exception
    classes map errors); `client_class` its async client."""

    name: str
    sdk: ModuleType

    def __init__(
        self,
        client_class: Any,
        *,
        api_key: str | None,
        base_url: str | None,
        model: str,
        fast_model: str | None = None,
        timeout_seconds: float = 30.0,
    ) -> None:
        # A local server (Ollama, llama.cpp) takes any key; the SDKs insist on one. The
        # timeout is the time allowed between bytes.
        self._client = client_class(
            api_key=api_key or "not-needed",
            base_url=base_url,
            timeout=timeout_seconds,
            max_retries=0,
        )
        super().__init__(model, fast_model)

    def _texts(self, request: CompletionRequest, model: str, tally: Tally) -> AsyncIterator[str]:
        """Start the stream and yield its text pieces, noting counts in `tally`."""
        raise NotImplementedError

    async def stream(self, request: CompletionRequest) -> AsyncGenerator[StreamItem, None]:
        model = self.model_for(request.task)
        tally = Tally(model=model)
        started = time.perf_counter()
        first: float | None = None
        produced: list[str] = []
        try:
            async for text in self._texts(request, model, tally):
                if first is None:
                    first = time.perf_counter()
                produced.append(text)
                yield Delta(text)
        except ProviderError:
            raise
        except Exception as exc:
            raise sdk_error(self.name, self.sdk, exc) from exc
        output = "".join(produced)
        if tally.unfinished is not None:
            raise ProviderError(self.name, tally.unfinished, retryable=True)
        if not output:
            raise ProviderError(self.name, "the stream ended without any text", retryable=True)
        input_tokens, output_tokens, estimated = await usage_counts(
            request, output, input_tokens=tally.input_tokens, output_tokens=tally.output_tokens
        )
        yield Finished(
            Usage(
                provider=self.name,
                model=tally.model,
                input_tokens=input_tokens,
                output_tokens=output_tokens,
                estimated=estimated,
                first_token_ms=(first - started) * 1000 if first is not None else None,
                total_ms=(time.perf_counter() - started) * 1000,
            )
        )
