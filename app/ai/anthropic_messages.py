"""Anthropic messages, streamed, through the official SDK (`AsyncAnthropic`).

Usage comes from the stream itself: input tokens in `message_start`, the final output
count in `message_delta` (a count missing from them is estimated with tiktoken, app/ai/
tokens.py, and marked so). SDK retries are off (the router retries and falls back).
"""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator

import anthropic
from anthropic import AsyncAnthropic

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
from app.ai.tokens import reported, usage_counts

NAME = "anthropic"


def map_error(exc: Exception) -> ProviderError:
    return sdk_error(NAME, anthropic, exc)


class AnthropicMessages(ModelChoice):
    def __init__(
        self,
        *,
        api_key: str | None,
        base_url: str | None,
        model: str,
        fast_model: str | None = None,
        timeout_seconds: float = 30.0,
    ) -> None:
        self._client = AsyncAnthropic(
            api_key=api_key or "not-needed",
            base_url=base_url,
            timeout=timeout_seconds,
            max_retries=0,
        )
        super().__init__(model, fast_model)
        self.name = NAME

    async def stream(self, request: CompletionRequest) -> AsyncGenerator[StreamItem, None]:
        model = self.model_for(request.task)
        started = time.perf_counter()
        first: float | None = None
        input_tokens: int | None = None
        output_tokens: int | None = None
        reported_model = model
        produced: list[str] = []
        stopped = False
        try:
            stream = await self._client.messages.create(
                model=model,
                system=request.system,
                messages=[{"role": "user", "content": request.prompt}],
                max_tokens=request.max_tokens,
                # No `temperature`: current Anthropic models and SDKs no longer take it.
                stream=True,
            )
            async with stream:
                async for event in stream:
                    if event.type == "message_start":
                        reported_model = event.message.model or model
                        # Its output count is the first token or so, not the final one.
                        input_tokens = reported(event.message.usage, "input_tokens")
                    elif event.type == "content_block_delta":
                        if event.delta.type == "text_delta" and event.delta.text:
                            if first is None:
                                first = time.perf_counter()
                            produced.append(event.delta.text)
                            yield Delta(event.delta.text)
                    elif event.type == "message_delta":
                        output_tokens = reported(getattr(event, "usage", None), "output_tokens")
                    elif event.type == "message_stop":
                        stopped = True
        except ProviderError:
            raise
        except Exception as exc:
            raise map_error(exc) from exc
        output = "".join(produced)
        if not stopped:
            raise ProviderError(NAME, "the stream ended before message_stop", retryable=True)
        if not output:
            raise ProviderError(NAME, "the stream ended without any text", retryable=True)
        input_tokens, output_tokens, estimated = await usage_counts(
            request, output, input_tokens=input_tokens, output_tokens=output_tokens
        )
        finished = time.perf_counter()
        yield Finished(
            Usage(
                provider=NAME,
                model=reported_model,
                input_tokens=input_tokens,
                output_tokens=output_tokens,
                estimated=estimated,
                first_token_ms=(first - started) * 1000 if first is not None else None,
                total_ms=(finished - started) * 1000,
            )
        )
