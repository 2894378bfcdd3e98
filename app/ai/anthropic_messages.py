"""Anthropic messages, streamed, through the official SDK (`AsyncAnthropic`).

Usage comes from the stream itself: input tokens in `message_start`, the final output
count in `message_delta` (a count missing from them is estimated with tiktoken, app/ai/
tokens.py, and marked so). A stream cut before `message_stop` is an error. What every
SDK-backed provider shares is in app/ai/sdk_stream.py.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import anthropic
from anthropic import AsyncAnthropic

from app.ai.llm import CompletionRequest
from app.ai.sdk_stream import SdkProvider, Tally
from app.ai.tokens import reported

NAME = "anthropic"


class AnthropicMessages(SdkProvider):
    name = NAME
    sdk = anthropic

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
            AsyncAnthropic,
            api_key=api_key,
            base_url=base_url,
            model=model,
            fast_model=fast_model,
            timeout_seconds=timeout_seconds,
        )

    async def _texts(
        self, request: CompletionRequest, model: str, tally: Tally
    ) -> AsyncIterator[str]:
        tally.unfinished = "the stream ended before message_stop"
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
                    tally.model = event.message.model or model
                    # Its output count is the first token or so, not the final one.
                    tally.input_tokens = reported(event.message.usage, "input_tokens")
                elif event.type == "content_block_delta":
                    if event.delta.type == "text_delta" and event.delta.text:
                        yield event.delta.text
                elif event.type == "message_delta":
                    tally.output_tokens = reported(getattr(event, "usage", None), "output_tokens")
                elif event.type == "message_stop":
                    tally.unfinished = None
