"""Text metrics and brand-voice checks."""

from __future__ import annotations

import asyncio

import pytest

from app.ai import metrics as text_metrics
from app.ai.metrics import (
    SENTIMENT_CHUNK,
    VoiceTerms,
    analyze,
    analyze_async,
    voice_key,
    voice_warnings,
)
from app.services.content.items import MAX_BODY

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


async def test_a_body_at_the_size_limit_leaves_the_event_loop_running() -> None:
    """The analysis of the largest body runs in a thread: the loop keeps turning meanwhile
    (run on the loop, the task would finish before the loop turned once)."""
    repeats = MAX_BODY // (len(SIMPLE) + 15)
    text = (SIMPLE + " Sign up? #tag ") * repeats
    assert MAX_BODY - 100 < len(text) <= MAX_BODY
    task = asyncio.create_task(analyze_async(text, brand_voice={"banned_words": ["mat"]}))
    turns = 0
    while not task.done():
        await asyncio.sleep(0)
        turns += 1
    metrics = task.result()
    assert turns > 10, turns
    assert metrics.words == repeats * 15  # 12, "Sign up", "tag"
    assert metrics.questions == repeats
    assert metrics.hashtags == ["#tag"] and metrics.hashtag_count == 1
    assert [w.term for w in metrics.warnings] == ["mat"]


def test_sentiment_of_a_long_text_is_scored_in_chunks_and_bounded() -> None:
    """VADER is quadratic on one long string, so long texts are scored in sentence-aligned
    chunks that cover the text exactly; short texts get VADER's own score."""
    short = "What a wonderful, happy day!"
    vader = text_metrics._vader().polarity_scores(short)["compound"]
    assert analyze(short).sentiment == round(vader, 3)
    long = ("I love this lovely place. " * 50) + ("This is a horrible, awful mess. " * 10)
    chunks = list(text_metrics._chunks(long))
    assert "".join(chunks) == long and len(chunks) > 1
    assert all(len(c) <= SENTIMENT_CHUNK for c in chunks)
    assert all(c.endswith(". ") for c in chunks[:-1]), "cut after a sentence"
    mostly_positive = analyze(long)
    assert mostly_positive.sentiment_label == "POSITIVE"
    assert analyze(long.replace("love", "hate").replace("lovely", "awful")).sentiment < 0


def test_word_lookups_agree_with_a_whole_word_search() -> None:
    """Brand-voice terms are found through the text's word set: the same answers as a
    case-insensitive whole-word regular expression."""
    text = "Cheapest deals! Oat-milk lattes, #OatMilk, e-mail us. ÉCLAIR day; don't wait."
    words = frozenset(w.lower() for w in text_metrics.TOKEN.findall(text))
    for term in (
        "cheap",
        "cheapest",
        "oat",
        "milk",
        "oat-milk",
        "e-mail",
        "éclair",
        "don't",
        "wait",
        "day;",
        "lattes",
        "latte",
        "OATMILK",
        "us",
    ):
        assert text_metrics._mentions(text, words, term) == text_metrics._contains(text, term), term


def test_the_voice_key_changes_exactly_with_the_checked_terms() -> None:
    voice = {"banned_words": ["cheap"], "keywords": ["oat"], "tone": "Friendly", "style_notes": "a"}
    key = voice_key(voice, ["latte"])
    assert key == voice_key({**voice, "style_notes": "b", "example_posts": ["x"]}, ["latte"])
    assert key == voice_key({**voice, "tone": " friendly "}, ["latte"])
    assert key != voice_key({**voice, "banned_words": ["cheap", "free"]}, ["latte"])
    assert key != voice_key(voice, ["latte", "vegan"])
    assert key != voice_key({**voice, "tone": "formal"}, ["latte"])
    assert VoiceTerms.of(voice, ["latte", "oat"]).keywords == ("latte", "oat")
