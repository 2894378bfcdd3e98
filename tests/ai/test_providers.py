"""Providers through their real SDKs against a local server speaking their wire protocols;
the router's retries, fallback and circuit breaker; the offline writer."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace

import pytest

from app.ai import prompting as prompts
from app.ai import tokens
from app.ai.anthropic_messages import AnthropicMessages
from app.ai.llm import CompletionRequest, Delta, DraftSpec, Finished, ProviderError, StreamItem
from app.ai.offline import OfflineWriter, adapt, compose
from app.ai.openai_chat import OpenAIChat
from app.ai.router import CircuitBreaker, RetryPolicy, Router, build_router, complete
from app.models.vocabulary import Platform
from app.platforms.rules import RULES
from app.services.ai import drafts
from app.settings import Settings
from tests.ai.fake_llm import FakeLLM, Hang, Malformed, Status, Stream, serve_fake_llm
from tests.ai.test_drafts import blog_post

pytestmark = pytest.mark.no_db

REQUEST = CompletionRequest(system="You write posts.", prompt="Write about tea.", max_tokens=64)
FAST = RetryPolicy(attempts=2, backoff_seconds=0.0, backoff_max_seconds=0.0)


@pytest.fixture
async def fake() -> AsyncIterator[FakeLLM]:
    async with serve_fake_llm() as server:
        yield server


def openai_for(fake: FakeLLM, timeout: float = 5.0) -> OpenAIChat:
    return OpenAIChat(
        api_key="sk-test", base_url=fake.openai_url, model="gpt-test", timeout_seconds=timeout
    )


def anthropic_for(fake: FakeLLM, timeout: float = 5.0) -> AnthropicMessages:
    return AnthropicMessages(
        api_key="sk-ant-test",
        base_url=fake.anthropic_url,
        model="claude-test",
        fast_model="claude-fast",
        timeout_seconds=timeout,
    )


async def drain(stream: AsyncIterator[StreamItem]) -> tuple[list[str], Finished]:
    deltas: list[str] = []
    finished: Finished | None = None
    async for item in stream:
        if isinstance(item, Delta):
            deltas.append(item.text)
        else:
            finished = item
    assert finished is not None
    return deltas, finished


async def test_openai_streams_deltas_and_reports_usage(fake: FakeLLM) -> None:
    fake.openai.steps = [Stream(["Green", " tea", " rocks."], input_tokens=21, output_tokens=3)]
    deltas, finished = await drain(openai_for(fake).stream(REQUEST))
    assert deltas == ["Green", " tea", " rocks."]
    usage = finished.usage
    assert (usage.provider, usage.model, usage.input_tokens, usage.output_tokens) == (
        "openai",
        "gpt-test",
        21,
        3,
    )
    assert not usage.estimated
    assert usage.first_token_ms is not None and usage.total_ms >= usage.first_token_ms
    sent = fake.openai.requests[0]
    assert sent["body"]["stream"] is True
    assert sent["body"]["stream_options"] == {"include_usage": True}
    assert sent["body"]["messages"][0] == {"role": "system", "content": "You write posts."}
    assert sent["headers"]["authorization"] == "Bearer sk-test"


async def test_anthropic_streams_deltas_and_reports_usage(fake: FakeLLM) -> None:
    fake.anthropic.steps = [Stream(["Oolong", " is", " great."], input_tokens=30, output_tokens=4)]
    deltas, finished = await drain(anthropic_for(fake).stream(REQUEST))
    assert deltas == ["Oolong", " is", " great."]
    usage = finished.usage
    assert (usage.provider, usage.model, usage.input_tokens, usage.output_tokens) == (
        "anthropic",
        "claude-test",
        30,
        4,
    )
    sent = fake.anthropic.requests[0]
    assert sent["body"]["system"] == "You write posts."
    assert sent["body"]["stream"] is True
    headers = sent["headers"]
    # SDK versions differ in how they present the key; each sends it one of these ways.
    assert "sk-ant-test" in (headers.get("x-api-key"), headers.get("authorization", "")[7:])
    assert "anthropic-version" in headers


def estimated_input(request: CompletionRequest) -> int:
    return tokens.COUNTER.count_messages(tokens.prompt_messages(request))


async def test_openai_without_usage_is_estimated_with_tiktoken(fake: FakeLLM) -> None:
    """A server that ignores `stream_options.include_usage` (older Ollama, llama.cpp)."""
    fake.openai.steps = [Stream(["Green", " tea", " rocks."], report_usage=False)]
    deltas, finished = await drain(openai_for(fake).stream(REQUEST))
    usage = finished.usage
    assert usage.estimated
    assert usage.input_tokens == estimated_input(REQUEST)
    assert usage.output_tokens == tokens.COUNTER.count("".join(deltas)) == 4


async def test_anthropic_without_an_output_count_estimates_only_that(fake: FakeLLM) -> None:
    fake.anthropic.steps = [
        Stream(["Oolong", " is", " great."], input_tokens=30, report_usage=False)
    ]
    deltas, finished = await drain(anthropic_for(fake).stream(REQUEST))
    usage = finished.usage
    assert usage.estimated and usage.input_tokens == 30, "the reported input count is kept"
    assert usage.output_tokens == tokens.COUNTER.count("".join(deltas))


async def test_short_transforms_route_to_the_fast_model(fake: FakeLLM) -> None:
    fake.anthropic.steps = [Stream(["ok"])]
    request = CompletionRequest(system="s", prompt="p", task="transform")
    _, finished = await drain(anthropic_for(fake).stream(request))
    assert fake.anthropic.requests[0]["body"]["model"] == "claude-fast"
    assert finished.usage.model == "claude-fast"


async def test_429_falls_back_to_the_secondary(fake: FakeLLM) -> None:
    fake.openai.steps = [Status(429, "slow down")]
    fake.anthropic.steps = [Stream(["From", " Claude."])]
    router = Router(openai_for(fake), anthropic_for(fake), retry=FAST)
    deltas, finished = await drain(router.stream(REQUEST))
    assert "".join(deltas) == "From Claude."
    assert finished.usage.provider == "anthropic"
    assert finished.usage.fallback_from == "openai"
    # A rate limit is not waited out on the primary when a secondary exists.
    assert len(fake.openai.requests) == 1


async def test_500_then_retry_succeeds_on_the_same_provider(fake: FakeLLM) -> None:
    fake.openai.steps = [Status(500), Stream(["Second", " time."])]
    fake.anthropic.steps = [Stream(["never"])]
    router = Router(openai_for(fake), anthropic_for(fake), retry=FAST)
    deltas, finished = await drain(router.stream(REQUEST))
    assert "".join(deltas) == "Second time."
    assert finished.usage.provider == "openai"
    assert finished.usage.attempts == 2
    assert finished.usage.fallback_from is None
    assert fake.anthropic.requests == []


async def test_anthropic_overloaded_529_is_retried(fake: FakeLLM) -> None:
    fake.anthropic.steps = [Status(529, "overloaded"), Stream(["fine"])]
    router = Router(anthropic_for(fake), retry=FAST)
    deltas, finished = await drain(router.stream(REQUEST))
    assert deltas == ["fine"] and finished.usage.attempts == 2


async def test_a_timeout_is_a_retryable_provider_error_then_falls_back(fake: FakeLLM) -> None:
    fake.openai.steps = [Hang()]
    with pytest.raises(ProviderError) as raised:
        await drain(openai_for(fake, timeout=0.3).stream(REQUEST))
    assert raised.value.retryable and "timed out" in str(raised.value)

    fake.anthropic.steps = [Stream(["rescued"])]
    router = Router(openai_for(fake, timeout=0.3), anthropic_for(fake), retry=FAST)
    deltas, finished = await drain(router.stream(REQUEST))
    assert deltas == ["rescued"] and finished.usage.fallback_from == "openai"


async def test_anthropic_timeout(fake: FakeLLM) -> None:
    fake.anthropic.steps = [Hang()]
    with pytest.raises(ProviderError, match="timed out"):
        await drain(anthropic_for(fake, timeout=0.3).stream(REQUEST))


@pytest.mark.parametrize("which", ["openai", "anthropic"])
async def test_a_malformed_stream_is_a_clear_provider_error(fake: FakeLLM, which: str) -> None:
    script = fake.openai if which == "openai" else fake.anthropic
    script.steps = [Malformed(["Hel"])]
    provider = openai_for(fake) if which == "openai" else anthropic_for(fake)
    got: list[str] = []
    with pytest.raises(ProviderError) as raised:
        async for item in provider.stream(REQUEST):
            if isinstance(item, Delta):
                got.append(item.text)
    assert "malformed" in str(raised.value) or "ended" in str(raised.value)
    assert raised.value.provider == which
    assert got == ["Hel"], "text before the bad line was delivered"


async def test_a_mid_stream_failure_is_not_retried_elsewhere(fake: FakeLLM) -> None:
    """Text already went to subscribers: starting again on the secondary would repeat it."""
    fake.openai.steps = [Malformed(["Hel"])]
    fake.anthropic.steps = [Stream(["never"])]
    router = Router(openai_for(fake), anthropic_for(fake), retry=FAST)
    with pytest.raises(ProviderError):
        await drain(router.stream(REQUEST))
    assert fake.anthropic.requests == []


async def test_a_client_error_is_not_retried(fake: FakeLLM) -> None:
    fake.openai.steps = [Status(400, "bad request")]
    fake.anthropic.steps = [Stream(["never"])]
    router = Router(openai_for(fake), anthropic_for(fake), retry=FAST)
    with pytest.raises(ProviderError) as raised:
        await drain(router.stream(REQUEST))
    assert raised.value.status == 400 and not raised.value.retryable
    assert len(fake.openai.requests) == 1 and fake.anthropic.requests == []


async def test_retries_are_bounded_then_the_last_error_is_raised(fake: FakeLLM) -> None:
    fake.openai.steps = [Status(503)]
    router = Router(openai_for(fake), retry=RetryPolicy(attempts=3, backoff_seconds=0.0))
    with pytest.raises(ProviderError) as raised:
        await drain(router.stream(REQUEST))
    assert raised.value.status == 503
    assert len(fake.openai.requests) == 3


async def test_circuit_breaker_skips_a_failing_primary_until_cooldown(fake: FakeLLM) -> None:
    now = [0.0]
    fake.openai.steps = [Status(500)]
    fake.anthropic.steps = [Stream(["b"])]
    router = Router(
        openai_for(fake),
        anthropic_for(fake),
        retry=RetryPolicy(attempts=1, backoff_seconds=0.0),
        breaker_threshold=2,
        breaker_cooldown=30.0,
        clock=lambda: now[0],
    )
    for _ in range(2):
        await drain(router.stream(REQUEST))
    assert len(fake.openai.requests) == 2
    assert router.breakers["openai"].is_open
    await drain(router.stream(REQUEST))
    assert len(fake.openai.requests) == 2, "open circuit: the primary is not called"
    now[0] = 31.0
    fake.openai.steps = [Stream(["back"])]
    deltas, finished = await drain(router.stream(REQUEST))
    assert deltas == ["back"] and finished.usage.provider == "openai"
    assert not router.breakers["openai"].is_open


def test_breaker_half_open_failure_reopens() -> None:
    now = [0.0]
    breaker = CircuitBreaker(1, 10.0, clock=lambda: now[0])
    breaker.failure()
    assert not breaker.allow()
    now[0] = 11.0
    assert breaker.allow()
    breaker.failure()
    assert not breaker.allow()


async def test_complete_collects_text_and_honours_the_deadline(fake: FakeLLM) -> None:
    seen: list[str] = []

    async def on_delta(text: str) -> None:
        seen.append(text)

    fake.openai.steps = [Stream(["a", "b"])]
    text, usage = await complete(Router(openai_for(fake)), REQUEST, on_delta, deadline_seconds=10)
    assert text == "ab" and seen == ["a", "b"] and usage.output_tokens == 7

    fake.openai.steps = [Hang()]
    with pytest.raises(ProviderError, match="deadline"):
        await complete(Router(openai_for(fake)), REQUEST, on_delta, deadline_seconds=0.3)


async def test_offline_writer_streams_a_structured_draft_and_says_it_is_offline() -> None:
    spec = DraftSpec(
        brief="Our new oat latte launches Monday. It is creamy and vegan.",
        content_type="SOCIAL_POST",
        tone="friendly",
        keywords=("oat latte", "vegan"),
        brand_voice={"banned_words": ["cheap"], "keywords": ["coffee"]},
        segment={"name": "Students", "interests": ["budget", "coffee"]},
    )
    request = CompletionRequest(system="s", prompt="p", draft=spec)
    deltas, finished = await drain(OfflineWriter().stream(request))
    text = "".join(deltas)
    assert len(deltas) > 3, "streamed in chunks"
    assert text == compose(spec)
    assert text.startswith("Title: Our new oat latte launches Monday")
    assert "Students" in text and "#OatLatte" in text
    usage = finished.usage
    assert usage.provider == "offline" and usage.estimated
    assert usage.input_tokens == estimated_input(request)
    assert usage.output_tokens == tokens.COUNTER.count(text)


@pytest.mark.parametrize("platform", list(Platform))
async def test_offline_writer_adapts_within_limits_and_answers_a_re_ask(platform: Platform) -> None:
    """It repurposes a 1,500-word post within the platform's limits, so it is never asked
    again; asked anyway (the repair prompt, with the broken text as its source), it adapts
    that text within the limits: no rule-following is claimed, and nothing breaks."""
    rule = RULES[platform]
    spec = DraftSpec(
        brief="Repurposing",
        keywords=("content", "marketing"),
        platform=platform.value,
        max_chars=rule.max_chars,
        max_hashtags=rule.max_hashtags,
        source=blog_post(1500),
        source_title="Repurposing without the busywork",
    )
    first = drafts.parse(adapt(spec), fallback_title="T")
    assert drafts.reask_reasons(platform, first) == [], platform
    broken = drafts.Draft("T", blog_post(600) if rule.max_chars else "")
    repair = prompts.render(
        prompts.get(prompts.template_name("repair")),
        platform=platform,
        answer=drafts.as_answer(broken),
        violations=drafts.describe_violations(drafts.reask_reasons(platform, broken)),
    )
    request = CompletionRequest(
        system=repair.system,
        prompt=repair.user,
        task="transform",
        draft=replace(spec, source=broken.body, source_title=broken.title),
    )
    deltas, finished = await drain(OfflineWriter().stream(request))
    again = drafts.parse("".join(deltas), fallback_title="T")
    assert drafts.reask_reasons(platform, again) == [], platform
    assert finished.usage.provider == "offline" and finished.usage.estimated


def test_offline_writer_drops_banned_words_and_writes_email_headers() -> None:
    text = compose(
        DraftSpec(
            brief="A cheap trick for better sleep.",
            content_type="EMAIL",
            brand_voice={"banned_words": ["cheap"]},
        )
    )
    assert "cheap" not in text.lower()
    assert "\nSubject: " in text and "\nPreheader: " in text


def test_settings_pick_the_provider_from_the_keys_present() -> None:
    base = {"_env_file": None}
    assert Settings(**base).resolved_ai_provider == "offline"  # type: ignore[arg-type]
    assert Settings(**base, anthropic_api_key="k").resolved_ai_provider == "anthropic"  # type: ignore[arg-type]
    assert (
        Settings(**base, anthropic_api_key="k", openai_api_key="k").resolved_ai_provider  # type: ignore[arg-type]
        == "openai"
    )
    router = build_router(
        Settings(**base, ai_provider="openai", ai_fallback_provider="offline")  # type: ignore[arg-type]
    )
    assert [p.name for p in router.providers] == ["openai", "offline"]


def test_the_deadline_must_fit_in_the_job_attempt_limit() -> None:
    limits = {"job_lease_seconds": 60, "job_timeout_seconds": 60}  # either tree's name
    with pytest.raises(ValueError, match="AI_DEADLINE_SECONDS"):
        Settings(_env_file=None, ai_deadline_seconds=55, **limits)  # type: ignore[call-arg, arg-type]
    assert Settings(_env_file=None, **limits).ai_deadline == 48  # type: ignore[call-arg, arg-type]
