"""OpenAI chat completions, streamed, through the official SDK (`AsyncOpenAI`).

Any OpenAI-compatible server works through `OPENAI_BASE_URL` (vLLM, Ollama, llama.cpp,
Azure's OpenAI endpoint). What every SDK-backed provider shares (retries off, timing,
error mapping, the usage estimate) is in app/ai/sdk_stream.py.

Usage: the request asks for it (`stream_options.include_usage`), and OpenAI then sends it
in a last chunk with no choices; servers that ignore the option (older Ollama and
llama.cpp builds) send none, and a count missing from the report is estimated with
tiktoken (app/ai/tokens.py) and marked so.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import openai
from openai import AsyncOpenAI

from app.ai.llm import CompletionRequest
from app.ai.sdk_stream import SdkProvider, Tally
from app.ai.tokens import reported

NAME = "openai"


class OpenAIChat(SdkProvider):
    name = NAME
    sdk = openai

    def __init__(
        self,
        *,
        api_key: str | None,
        base_url: str | None,
        model: str,
        fast_model: str | None = None,
        timeout_seconds: float = 30.0,
    ) -> None:
        super().__init__(
            AsyncOpenAI,
            api_key=api_key,
            base_url=base_url,
            model=model,
            fast_model=fast_model,
            timeout_seconds=timeout_seconds,
        )

    async def _texts(
        self, request: CompletionRequest, model: str, tally: Tally
    ) -> AsyncIterator[str]:
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
                    tally.model = chunk.model
                if chunk.usage is not None:
                    tally.input_tokens = reported(chunk.usage, "prompt_tokens")
                    tally.output_tokens = reported(chunk.usage, "completion_tokens")
                for choice in chunk.choices:
                    text = choice.delta.content if choice.delta is not None else None
                    if text:
                        yield text
