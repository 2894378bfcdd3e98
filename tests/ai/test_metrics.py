"""Text metrics and brand-voice checks."""

from __future__ import annotations

import pytest

from app.ai.metrics import analyze, analyze_async, voice_warnings

pytestmark = pytest.mark.no_db

SIMPLE = "The cat sat on the mat. The dog ran. We love it!"
HARD = (
    "Notwithstanding considerable organisational heterogeneity, interdisciplinary "
    "collaboration necessitates comprehensive institutional accommodation of "
    "epistemological disagreement."
)


def test_counts_readability_and_sentiment() -> None:
    metrics = analyze(SIMPLE)
    assert metrics.words == 12
    assert metrics.sentences == 3
    assert metrics.reading_time_seconds == 3
    simple_ease = metrics.flesch_reading_ease
    hard = analyze(HARD)
    assert simple_ease > 80 > hard.flesch_reading_ease
    assert hard.flesch_kincaid_grade > metrics.flesch_kincaid_grade + 8
    assert metrics.sentiment_label == "POSITIVE" and metrics.sentiment > 0.3
    assert analyze("This is a terrible, awful failure.").sentiment_label == "NEGATIVE"


def test_hashtags_questions_and_calls_to_action() -> None:
    text = "Ready for spring? Are you? Shop the sale today. #Spring #Sale #Spring"
    metrics = analyze(text)
    assert metrics.hashtags == ["#Spring", "#Sale"]
    assert metrics.questions == 2
    assert metrics.has_call_to_action
    assert not analyze("We had a nice day at the beach.").has_call_to_action


def test_empty_text_has_zero_metrics() -> None:
    metrics = analyze("")
    assert (metrics.words, metrics.sentences, metrics.flesch_reading_ease) == (0, 0, 0.0)
    assert metrics.sentiment_label == "NEUTRAL"


def test_brand_voice_banned_words_and_missing_keywords() -> None:
    voice = {"banned_words": ["cheap", "synergy"], "keywords": ["oat milk"], "tone": "friendly"}
    warnings = voice_warnings(
        "Cheap coffee, great taste. #OatMilk", brand_voice=voice, keywords=["vegan"]
    )
    codes = {(w.code, w.term) for w in warnings}
    assert ("BANNED_WORD", "cheap") in codes
    assert ("BANNED_WORD", "synergy") not in codes
    assert ("KEYWORD_MISSING", "vegan") in codes
    assert ("KEYWORD_MISSING", "oat milk") not in codes, "a hashtag counts as a mention"
    # Word boundaries: "cheapest" is not the banned "cheap".
    assert not voice_warnings("The cheapest flight", brand_voice={"banned_words": ["cheap"]})


def test_tone_warning_for_negative_text_in_a_friendly_voice() -> None:
    metrics = analyze("This is a horrible, sad disaster.", brand_voice={"tone": "Friendly"})
    assert [w.code for w in metrics.warnings] == ["TONE"]


async def test_long_text_is_analysed_off_the_loop() -> None:
    text = SIMPLE * 1000
    metrics = await analyze_async(text, keywords=["cat"])
    assert metrics.words == 12_000
    assert metrics.to_json()["warnings"] == []
