"""OpenAI chat completions, streamed, through the official SDK (`AsyncOpenAI`).

Any OpenAI-compatible server works through `OPENAI_BASE_URL` (vLLM, Ollama, llama.cpp,
Azure's OpenAI endpoint). The SDK's own retries are off: the router retries with
jittered backoff and falls back, and the timeout is the time allowed between bytes.

Usage: the request asks for it (`stream_options.include_usage`), and OpenAI then sends it
in a last chunk with no choices; servers that ignore the option (older Ollama and
llama.cpp builds) send none, and a count missing from the report is estimated with
tiktoken (app/ai/tokens.py) and marked so.
"""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator
from typing import Any

import openai
from openai import AsyncOpenAI

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

NAME = "openai"


def map_error(exc: Exception) -> ProviderError:
    return sdk_error(NAME, openai, exc)


class OpenAIChat(ModelChoice):
    def __init__(
        self,
        *,
        api_key: str | None,
        base_url: str | None,
        model: str,
        fast_model: str | None = None,
        timeout_seconds: float = 30.0,
    ) -> None:
        # A local server (Ollama, llama.cpp) takes any key; the SDK insists on one.
        self._client = AsyncOpenAI(
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
        usage: Any = None
        reported_model = model
        produced: list[str] = []
        try:
            stream = await self._client.chat.completions.create(
                model=model,
                messages=[
                    {"role": "system", "content": request.system},
                    {"role": "user", "content": request.prompt},
                ],
                max_tokens=request.max_tokens,
                temperature=request.temperature,
                stream=True,
                stream_options={"include_usage": True},
            )
            async with stream:
                async for chunk in stream:
                    if chunk.model:
                        reported_model = chunk.model
                    if chunk.usage is not None:
                        usage = chunk.usage
                    for choice in chunk.choices:
                        text = choice.delta.content if choice.delta is not None else None
                        if text:
                            if first is None:
                                first = time.perf_counter()
                            produced.append(text)
                            yield Delta(text)
        except ProviderError:
            raise
        except Exception as exc:
            raise map_error(exc) from exc
        output = "".join(produced)
        if not output:
            raise ProviderError(NAME, "the stream ended without any text", retryable=True)
        input_tokens, output_tokens, estimated = await usage_counts(
            request,
            output,
            input_tokens=reported(usage, "prompt_tokens"),
            output_tokens=reported(usage, "completion_tokens"),
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
